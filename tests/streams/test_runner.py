"""The runner (order, back-pressure) and the cursor stores, each on its own without a stream server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import StreamError
from pysky_async._storage.store import Store
from pysky_async._streams import (
    CommitEvent,
    EventContext,
    FirehoseSource,
    MemoryStreamCursorStore,
    Runner,
    SqlStreamCursorStore,
    StreamConsumer,
    StreamEvent,
)
from pysky_async._streams.watermark import Entry

pytestmark = pytest.mark.anyio


def event(did: str, cursor: int) -> CommitEvent:
    return CommitEvent(cursor, did, "2026-12-01T00:00:00Z", rev=str(cursor))


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


class Work:
    """Records what runs; each call waits until its cursor is released."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.release: dict[int, asyncio.Event] = {}

    async def __call__(self, event: StreamEvent, entry: Entry) -> None:
        assert event.cursor is not None
        self.started.append(event.cursor)
        await self.release.setdefault(event.cursor, asyncio.Event()).wait()

    def finish(self, *cursors: int) -> None:
        for cursor in cursors:
            self.release.setdefault(cursor, asyncio.Event()).set()


async def test_one_did_in_order_different_dids_concurrently_within_the_bound() -> None:
    work = Work()
    runner = Runner(work, concurrency=2, max_pending=100, commit_every=100)
    runner.start(0)
    for cursor, did in enumerate(["did:a", "did:a", "did:b", "did:c"], 1):
        runner.add(cursor, event(did, cursor))
    await settle()
    assert work.started == [1, 3]  # did:a's second waits for its first; did:c for a free slot
    assert runner.running == 2
    work.finish(3)
    await settle()
    assert work.started == [1, 3, 4]
    assert runner.take()[:2] == (0, 0)  # 1 is still running: the watermark has not moved
    work.finish(1, 2, 4)
    await runner.drain()
    assert work.started == [1, 3, 4, 2]
    assert runner.take()[:2] == (4, 4)


async def test_the_reader_waits_at_max_pending_until_a_commit() -> None:
    work = Work()
    runner = Runner(work, concurrency=8, max_pending=3, commit_every=100)
    runner.start(None)
    work.finish(1, 2, 3, 4)
    for cursor in (1, 2, 3):
        runner.add(cursor, event(f"did:{cursor}", cursor))
    waiting = asyncio.ensure_future(runner.wait_for_space())
    await settle()
    assert not waiting.done() and runner.pending == runner.peak_pending == 3
    assert runner.commit_wanted.is_set()  # a reader waiting for space asks for a commit
    watermark, passed, _ = runner.take()
    runner.committed(passed)
    await waiting
    assert (watermark, passed, runner.pending) == (3, 3, 0)


async def test_a_filtered_event_passes_the_watermark_without_running() -> None:
    work = Work()
    runner = Runner(work, concurrency=1, max_pending=10, commit_every=2)
    runner.start(None)
    runner.add(1, None)
    assert not runner.commit_wanted.is_set()
    runner.add(2, None)
    assert runner.commit_wanted.is_set()  # commit_every events passed
    assert runner.take()[:2] == (2, 2) and work.started == []


async def test_sql_cursor_store_runs_work_and_the_cursor_in_one_transaction(store: Store) -> None:
    cursors = SqlStreamCursorStore(store)
    assert await cursors.load("c", "firehose:ws://x") is None
    await store.execute_sql("CREATE TABLE effects (n BIGINT)")

    async def effect(session: AsyncSession) -> None:
        await session.execute(text("INSERT INTO effects VALUES (1)"))

    async def failing(session: AsyncSession) -> None:
        raise RuntimeError("no")

    await cursors.save("c", "firehose:ws://x", 2**40, [effect])
    with pytest.raises(RuntimeError):
        await cursors.save("c", "firehose:ws://x", 2**41, [effect, failing])
    assert await cursors.load("c", "firehose:ws://x") == 2**40  # 64 bits; the failed save left nothing
    assert await cursors.load("c", "jetstream") is None
    assert await store.execute_sql("SELECT count(*) FROM effects") == [(1,)]


async def test_memory_cursor_store() -> None:
    cursors = MemoryStreamCursorStore()
    await cursors.save("c", "jetstream", 5, [])
    assert (await cursors.load("c", "jetstream"), await cursors.load("d", "jetstream")) == (5, None)

    async def effect(session: Any) -> None: ...

    with pytest.raises(ValueError, match="on-commit"):
        await cursors.save("c", "jetstream", 6, [effect])


async def handler(event: StreamEvent, ctx: EventContext) -> None: ...


def test_a_consumer_takes_a_cursor_store() -> None:
    source = FirehoseSource("http://127.0.0.1:1")
    memory = MemoryStreamCursorStore()
    assert StreamConsumer(source, handler, cursor_store=memory).cursor_store is memory
    assert isinstance(StreamConsumer(source, handler).cursor_store, MemoryStreamCursorStore)
    with pytest.raises(StreamError, match="name="):
        StreamConsumer(source, handler, cursor_store=SqlStreamCursorStore(Store("sqlite+aiosqlite:///:memory:")))
    with pytest.raises(StreamError, match="not both"):
        StreamConsumer(source, handler, cursor_store=memory, store=Store("sqlite+aiosqlite:///:memory:"), name="x")
