"""The durable cursor: restarts resume from it, on_commit work is exactly-once, SIGKILL loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async._storage.store import Store
from pysky_async._storage.stream_cursors import StreamCursorRepository
from pysky_async._streams import CommitEvent, EventContext, FirehoseSource, StreamConsumer, StreamEvent

from ..realnet.pds import PdsServer
from .conftest import Written
from .workload import wait_for

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def stored_cursor(store: Store, name: str, source: FirehoseSource) -> int | None:
    async with store.transaction() as session:
        return await StreamCursorRepository(session).get(name, source.key)


async def test_restart_resumes_after_the_cursor_and_on_commit_work_happens_once(
        pds: PdsServer, written: Written, database_url: str) -> None:
    store = Store(database_url, auto_migrate=True)
    await store.ensure_ready()
    await store.execute_sql("CREATE TABLE stream_effect (seq BIGINT PRIMARY KEY)")
    source = FirehoseSource(pds.listen_url)
    runs: list[list[int]] = [[], []]

    def consumer(run: int) -> StreamConsumer:
        async def handler(event: StreamEvent, ctx: EventContext) -> None:
            assert event.cursor is not None
            await asyncio.sleep(0.001)
            runs[run].append(event.cursor)
            if isinstance(event, CommitEvent):
                async def effect(session: AsyncSession, seq: int = event.cursor) -> None:
                    await session.execute(text("INSERT INTO stream_effect (seq) VALUES (:seq)"), {"seq": seq})

                ctx.on_commit(effect)

        return StreamConsumer(source, handler, store=store, name="resume", dids=written.dids, start_cursor=0,
                              concurrency=8, max_pending=30, commit_every=25)

    first = consumer(0)
    task = asyncio.create_task(first.run())
    await wait_for(lambda: len(runs[0]) >= len(written.seqs) // 3)
    await first.stop()  # drains what was read and commits
    await task
    cursor = await stored_cursor(store, "resume", source)
    assert cursor == first.cursor and cursor is not None
    assert sorted(s for s in runs[0] if s in written.seqs) == sorted(s for s in written.seqs if s <= cursor)

    second = consumer(1)
    task = asyncio.create_task(second.run())
    await wait_for(lambda: (second.cursor or 0) >= written.reading.last_seq)
    await second.stop()
    await task
    try:
        assert runs[1] and min(runs[1]) > cursor  # resumed after the cursor, not from start_cursor=0
        assert set(runs[0]) | set(runs[1]) == written.seqs
        rows = await store.execute_sql("SELECT seq FROM stream_effect")
        commits = {s for s in written.seqs if s in written.reading.ops}
        assert sorted(r[0] for r in rows) == sorted(commits)  # each exactly once (seq is the primary key)
    finally:
        await store.aclose()


def start_worker(pds: PdsServer, database_url: str, out: Path, written: Written) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.streams.worker", pds.listen_url, database_url, str(out),
                             ",".join(sorted(written.dids))], cwd=ROOT, stdin=subprocess.DEVNULL)


async def test_sigkill_mid_stream_then_restart_loses_nothing(pds: PdsServer, written: Written,
                                                            tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/killed.sqlite3"
    out = tmp_path / "handled.txt"
    source = FirehoseSource(pds.listen_url)

    def lines() -> list[int]:
        return [int(x) for x in out.read_text().split()] if out.exists() else []

    worker = start_worker(pds, database_url, out, written)
    try:
        await wait_for(lambda: len(lines()) >= len(written.seqs) // 3, timeout=120)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        worker.kill()
    store = Store(database_url, auto_migrate=True)
    try:
        at_kill = await stored_cursor(store, "killed", source)
        before = Counter(lines())
        assert at_kill is not None and len(before) < len(written.seqs)  # killed mid-stream, after a commit
        worker = start_worker(pds, database_url, out, written)
        try:
            await wait_for(lambda: set(lines()) >= written.seqs, timeout=120)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        seen = Counter(lines())
        assert set(seen) == written.seqs  # nothing lost
        duplicates = {seq for seq, n in seen.items() if n > 1}
        assert all(seq > at_kill for seq in duplicates)  # only events after the committed cursor ran twice
        assert all(seen[seq] == 1 for seq in written.seqs if seq <= at_kill)
    finally:
        await store.aclose()


async def test_failing_on_commit_work_holds_the_cursor_and_runs_again(pds: PdsServer, written: Written,
                                                                     tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/retry.sqlite3", auto_migrate=True)
    await store.ensure_ready()
    await store.execute_sql("CREATE TABLE stream_effect (seq BIGINT PRIMARY KEY)")
    failures = [1]

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        async def effect(session: AsyncSession, seq: int | None = event.cursor) -> None:
            await session.execute(text("INSERT INTO stream_effect (seq) VALUES (:seq)"), {"seq": seq})
            if failures and seq == max(written.seqs):
                failures.pop()
                raise ValueError("the effect failed once")

        ctx.on_commit(effect)

    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, store=store, name="retry", dids=written.dids,
                              start_cursor=0, commit_interval=0.2)
    task = asyncio.create_task(consumer.run())
    await wait_for(lambda: (consumer.cursor or 0) >= written.reading.last_seq)
    await consumer.stop()
    await task
    try:
        assert not failures  # it did fail once, rolled back with its batch, and ran again
        rows = await store.execute_sql("SELECT seq FROM stream_effect")
        assert sorted(r[0] for r in rows) == sorted(written.seqs)
    finally:
        await store.aclose()
