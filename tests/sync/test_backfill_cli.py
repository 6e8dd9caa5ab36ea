"""``pysky-async backfill`` on the real reference PDS: lines, resume, a repo that fails verification."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from ..realnet.fixtures import _start_pds
from ..realnet.pds import Account, PdsServer
from ..streams.conftest import new_accounts
from ..streams.loopback import start_app
from .test_backfill_realnet import POST, seed

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def pysky_cli(pds: PdsServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pysky_async *args`` (this checkout's source) on ``pds``'s PLC, the user's own settings
    left out, SQLite in ``tmp_path``."""
    import asyncio
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG"))}
    env.update(PYSKY_PLC_DIRECTORY=pds.plc_url, BSKY_SQLITE_FILENAME=str(tmp_path / "cli.sqlite3"),
               PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    command = [sys.executable, "-m", "pysky_async", *args]
    return await asyncio.to_thread(subprocess.run, command, cwd=ROOT, env=env, capture_output=True, text=True,
                                   timeout=600)


async def backfill_cli(pds: PdsServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await pysky_cli(pds, tmp_path, "backfill", *args)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def own_pds() -> Iterator[PdsServer]:
    server = _start_pds()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def swapping(pds: PdsServer) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A proxy in front of the PDS that answers getRepo of one DID with another repo's CAR."""
    swap: dict[str, str] = {}

    async def forward(request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.path.endswith("com.atproto.sync.getRepo") and params.get("did") in swap:
            params["did"] = swap[params["did"]]
        async with httpx.AsyncClient(base_url=pds.listen_url, timeout=60) as http:
            r = await http.get(request.path, params=params)
        return web.Response(body=r.content, status=r.status_code, content_type=r.headers.get("content-type",
                                                                                               "").split(";")[0])

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    runner, port = await start_app(app)
    yield f"http://127.0.0.1:{port}", swap
    await runner.cleanup()


async def test_backfill_writes_each_record_once_resumes_and_names_a_repo_that_fails(
        pds: PdsServer, tmp_path: Path, swapping: tuple[str, dict[str, str]]) -> None:
    accounts: list[Account] = new_accounts(pds, 3)
    await seed(pds, accounts, 5)
    dids = [a.did for a in accounts]
    out = tmp_path / "repos.jsonl"
    service, swap = swapping
    swap[dids[2]] = dids[0]  # the third repo's getRepo answers with the first repo's CAR
    args = ["--service", service, *[x for d in dids for x in ("--did", d)], "--collection", POST,
            "--out", str(out), "--consumer", "repos"]
    first = await backfill_cli(pds, tmp_path, *args)
    assert first.returncode == 1, first.stderr
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 3 repos failed") and dids[2] in last and "VerificationError" in last
    written = lines(out)
    assert len(written) == 10 and {w["did"] for w in written} == set(dids[:2])
    line = written[0]
    assert set(line) == {"did", "path", "cid", "record", "rev", "live"} and line["live"] is False
    assert str(line["path"]).startswith(f"{POST}/seed") and str(line["cid"]).startswith("bafyrei")
    assert isinstance(line["record"], dict) and line["record"]["$type"] == POST

    swap.clear()  # the rerun resumes: the two repos done are skipped, the failed one is retried
    second = await backfill_cli(pds, tmp_path, *args)
    assert second.returncode == 0, second.stderr
    assert "2 before" in second.stdout and "1 now" in second.stdout
    written = lines(out)
    assert len(written) == 15 and len({(w["did"], w["path"]) for w in written}) == 15  # each record once
    assert "repos" in second.stderr  # progress went to stderr


async def test_backfill_without_dids_enumerates_list_repos(own_pds: PdsServer, tmp_path: Path) -> None:
    accounts = new_accounts(own_pds, 3)
    await seed(own_pds, accounts, 4)
    out = tmp_path / "all.jsonl"
    done = await backfill_cli(own_pds, tmp_path, "--service", own_pds.listen_url, "--out", str(out),
                              "--consumer", "all", "--collection", "app.bsky.feed.*")
    assert done.returncode == 0, done.stderr
    assert {(w["did"], w["path"]) for w in lines(out)} == {
        (a.did, f"{POST}/seed{i:04d}") for a in accounts for i in range(4)}
    bad = await backfill_cli(own_pds, tmp_path, "--service", own_pds.listen_url, "--out", str(out),
                             "--consumer", "all", "--collection", "not a collection")
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: --collection")
