"""``pysky-async stream``: JSON Lines out, a progress line, and a rerun resumes where it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..realnet.pds import PdsServer
from .conftest import Written
from .workload import OTHER

ROOT = Path(__file__).resolve().parents[2]


def stream(pds: PdsServer, written: Written, tmp_path: Path, limit: int,
           first: bool = True) -> subprocess.CompletedProcess[str]:
    dids = [arg for did in sorted(written.dids) for arg in ("--did", did)]
    start = ["--start-cursor", "0"] if first else []  # on a stored cursor, only with --reset-cursor
    return subprocess.run(
        [sys.executable, "-m", "pysky_async", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
         "stream", "--source", "firehose", "--service", pds.listen_url, "--collection", OTHER, *dids,
         "--out", str(tmp_path / "out.jsonl"), "--consumer", "cli", *start, "--limit", str(limit)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)


def lines(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def test_stream_command_writes_jsonl_and_resumes(pds: PdsServer, written: Written, tmp_path: Path) -> None:
    expected = {f"{OTHER}/s{n:05d}" for n in range(0, 60, 4)}  # 15 per account
    first = stream(pds, written, tmp_path, limit=20)
    assert "events/s" in first.stderr and "lag" in first.stderr
    after_first = len(lines(tmp_path))
    assert 20 <= after_first < 4 * len(expected)
    stream(pds, written, tmp_path, limit=4 * len(expected) - after_first, first=False)
    out = lines(tmp_path)
    assert len(out) == 4 * len(expected)  # the rerun started after the first run's cursor: no repeats
    assert {(line["did"], line["path"]) for line in out} == {(d, p) for d in written.dids for p in expected}
    assert all(line["action"] == "create" and isinstance(line["record"], dict) for line in out)
