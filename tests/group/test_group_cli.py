"""``pysky-async stream --group`` against the real reference PDS's firehose and one real PostgreSQL.

Three worker processes of one group (8 partitions) write to three files while a writer creates,
updates and deletes records on four accounts; one worker is SIGKILLed in the middle of the writes
and restarted. Every operation of the run is in exactly one file, exactly once (the group's output
guarantee: a line is written in its event's commit, see ``_streams/committed_file.py``), and each
file keeps every repo's events in firehose order. ``pysky-async group status`` then shows the
partitions, their owners and the leader.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pysky_async._cli import main
from pysky_async._group.status import GroupStatus, PartitionStatus
from pysky_async._streams.group_cli import as_json, table

from ..realnet.pds import Account, PdsServer
from ..streams.conftest import new_accounts
from ..streams.workload import NOTE, OTHER, write_all

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("w0", "w1", "w2")
SMALL = {"singles": 8, "batches": 1, "batch_size": 10}
"""Per account: 8 single creates, 10 batched, 1 update, 1 delete (11 commits)."""
LARGE = {"singles": 16, "batches": 2, "batch_size": 20}


async def write(pds: PdsServer, accounts: list[Account], prefix: str,
                size: dict[str, int]) -> Counter[tuple[str, str, str]]:
    """Run ``write_all`` (see workload.py); return (did, action, path) of every operation it made."""
    await write_all(pds, accounts, prefix=prefix, **size)
    singles = size["singles"]
    ops: Counter[tuple[str, str, str]] = Counter()
    for account in accounts:
        for n in range(singles):
            ops[account.did, "create", f"{NOTE if n % 4 else OTHER}/{prefix}{n:05d}"] += 1
        for b in range(size["batches"]):
            for i in range(size["batch_size"]):
                ops[account.did, "create", f"{NOTE}/{prefix}b{b:03d}x{i:04d}"] += 1
        for n in range(1, singles, 4)[: singles // 8]:
            ops[account.did, "update", f"{NOTE}/{prefix}{n:05d}"] += 1
        for n in range(2, singles, 4)[: singles // 8]:
            ops[account.did, "delete", f"{NOTE}/{prefix}{n:05d}"] += 1
    return ops


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG"))}


def cli(database_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pysky_async", "--database-url", database_url, *args]


class Workers:
    """The worker processes of group ``g``, one output file each."""

    def __init__(self, pds: PdsServer, database_url: str, accounts: list[Account], tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.args = ["stream", "--source", "firehose", "--service", pds.listen_url,
                     *[x for a in accounts for x in ("--did", a.did)], "--collection", NOTE, "--collection", OTHER,
                     "--group", "g", "--partitions", "8", "--lease", "3", "--start-cursor", "0"]
        self.database_url = database_url
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.stopped: list[subprocess.Popen[str]] = []

    def out(self, name: str) -> Path:
        return self.tmp_path / f"{name}.jsonl"

    def start(self, name: str) -> None:
        log = open(self.tmp_path / f"{name}.log", "a", encoding="utf-8")  # the child's stdout and stderr
        self.procs[name] = subprocess.Popen(
            cli(self.database_url, *self.args, "--out", str(self.out(name)), "--consumer", name),
            cwd=ROOT, env=env(), stdout=log, stderr=log, text=True)
        log.close()

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            assert proc.wait(timeout=90) == 0, (self.tmp_path / f"{name}.log").read_text()[-3000:]
        self.procs.clear()

    def kill_all(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait(timeout=30)

    def lines(self) -> dict[str, list[dict[str, object]]]:
        return {name: [json.loads(line) for line in self.out(name).read_text().splitlines()]
                if self.out(name).exists() else [] for name in WORKERS}

    def count(self) -> int:
        return sum(len(v) for v in self.lines().values())

    def log(self) -> str:
        return "\n".join(f"--- {name}\n" + (self.tmp_path / f"{name}.log").read_text()[-2000:] for name in WORKERS
                         if (self.tmp_path / f"{name}.log").exists())


@pytest.mark.parametrize("value", ["0", "-3", "1025", "sixteen"])
def test_partitions_out_of_range_are_refused_with_the_range(value: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["stream", "--out", str(tmp_path / "x.jsonl"), "--consumer", "w", "--group", "g",
              "--partitions", value])
    assert exit_.value.code == 2
    assert "a whole number from 1 to 1024" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--partitions", "8"], "--partitions needs --group"),
    (["--group", "g", "--reset-cursor"], "--reset-cursor does not apply to a group"),
])
def test_group_flags_used_wrong_say_what_to_do(args: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--database-url", f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3", "stream", "--out",
                   str(tmp_path / "x.jsonl"), "--consumer", "w", *args])
    assert status == 1
    assert capsys.readouterr().err.startswith(f"error: {message}")
    assert not (tmp_path / "x.jsonl").exists()


def test_status_of_an_unknown_group_is_an_error_that_names_it(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3", "group", "status", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no consumer group 'nope'") and f"Database read: sqlite+aiosqlite:///{tmp_path}" in err


def test_status_table_and_json() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    status = GroupStatus("g", "firehose:ws://pds", "w0", 4100, 90, 7, (
        PartitionStatus(0, "w0", now + dt.timedelta(seconds=12), 88, 4090, 2),
        PartitionStatus(1, None, None, 83, None, 5)), ("w0", "w1"))
    text = table(status, now)
    lines = text.splitlines()
    assert lines[0] == "group g on firehose:ws://pds"
    assert "leader          w0" in text and "upstream cursor 4100 (log position 90)" in text
    assert "members         w0, w1" in text
    header = next(i for i, line in enumerate(lines) if line.startswith("partition"))
    assert lines[header].split() == ["partition", "owner", "lease", "watermark", "cursor", "lag"]
    assert lines[header + 2].split() == ["0", "w0", "12", "s", "88", "4090", "2"]
    assert lines[header + 3].split() == ["1", "-", "-", "83", "-", "5"]
    as_dict = as_json(status)
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["partitions"][0] == {"partition": 0, "owner": "w0", "lease_expires": "2026-01-01T00:00:12+00:00",
                                        "position": 88, "cursor": 4090, "lag": 2}
    assert as_dict["leader"] == "w0" and as_dict["lag"] == 7 and as_dict["members"] == ["w0", "w1"]


async def test_on_sqlite_a_group_runs_alone_with_one_partition_and_says_so(pds: PdsServer, tmp_path: Path) -> None:
    accounts = new_accounts(pds, 2)
    expected = await write(pds, accounts, "q", SMALL)
    url = f"sqlite+aiosqlite:///{tmp_path}/group.sqlite3"
    args = ["stream", "--source", "firehose", "--service", pds.listen_url,
            *[x for a in accounts for x in ("--did", a.did)], "--collection", NOTE, "--collection", OTHER,
            "--group", "g", "--partitions", "8", "--start-cursor", "0", "--out", str(tmp_path / "w0.jsonl"),
            "--consumer", "w0", "--limit", str(sum(expected.values()))]
    done = await asyncio.to_thread(subprocess.run, cli(url, *args), cwd=ROOT, env=env(), capture_output=True,
                                   text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "is not PostgreSQL: group 'g' runs in this one process with one partition" in done.stderr
    lines = [json.loads(line) for line in (tmp_path / "w0.jsonl").read_text().splitlines()]
    assert Counter((str(x["did"]), str(x["action"]), str(x["path"])) for x in lines) == expected
    status = await asyncio.to_thread(subprocess.run, cli(url, "group", "status", "g", "--json"), cwd=ROOT,
                                     env=env(), capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert [p["partition"] for p in json.loads(status.stdout)["partitions"]] == [0]


async def until(predicate: object, what: str, workers: Workers, timeout: float = 120) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s\n{workers.log()}"
        exited = [name for name, proc in workers.procs.items() if proc.poll() is not None]
        assert not exited, f"{what}: {exited} exited\n{workers.log()}"
        await asyncio.sleep(0.2)


async def test_three_workers_one_killed_every_record_once_in_repo_order(
        pds: PdsServer, pg_database_url: str, tmp_path: Path) -> None:
    accounts = new_accounts(pds, 4)
    workers = Workers(pds, pg_database_url, accounts, tmp_path)
    await asyncio.to_thread(subprocess.run, cli(pg_database_url, "db", "upgrade"), cwd=ROOT, env=env(), check=True,
                            timeout=120)
    expected: Counter[tuple[str, str, str]] = Counter()
    try:
        for name in WORKERS:
            workers.start(name)
        expected += await write(pds, accounts, "a", SMALL)
        await until(lambda: workers.count() >= sum(expected.values()), "phase a in the files", workers)

        # phase b: w1 dies while it is writing lines of it; the others and the restarted w1 finish it
        before = len(workers.lines()["w1"])
        writing = asyncio.ensure_future(write(pds, accounts, "b", LARGE))
        await until(lambda: len(workers.lines()["w1"]) > before or writing.done(), "w1 handling phase b", workers)
        workers.kill("w1")
        expected += await writing
        workers.start("w1")
        expected += await write(pds, accounts, "c", SMALL)
        await until(lambda: workers.count() >= sum(expected.values()), "every phase in the files", workers)

        status = await asyncio.to_thread(subprocess.run, cli(pg_database_url, "group", "status", "g", "--json"),
                                         cwd=ROOT, env=env(), capture_output=True, text=True, timeout=120)
        table = await asyncio.to_thread(subprocess.run, cli(pg_database_url, "group", "status", "g"), cwd=ROOT,
                                        env=env(), capture_output=True, text=True, timeout=120)
        workers.stop_all()
    finally:
        workers.kill_all()

    files = workers.lines()
    got = Counter((str(line["did"]), str(line["action"]), str(line["path"])) for lines in files.values()
                  for line in lines)
    assert got == expected  # every operation of the run, each exactly once across the three files
    for lines in files.values():  # per repo, each file is in firehose order
        last: dict[str, int] = {}
        for line in lines:
            did, cursor = str(line["did"]), int(str(line["cursor"]))
            assert cursor >= last.get(did, 0)
            last[did] = cursor

    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["group"] == "g" and report["leader"] in WORKERS
    assert [p["partition"] for p in report["partitions"]] == list(range(8))
    assert {p["owner"] for p in report["partitions"]} <= {*WORKERS, None}
    assert len({p["owner"] for p in report["partitions"]} - {None}) >= 2  # the work is shared
    assert table.returncode == 0, table.stderr
    assert "partition" in table.stdout and "owner" in table.stdout and "leader" in table.stdout
