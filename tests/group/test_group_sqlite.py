"""A consumer group on SQLite: one process, one partition (with a WARNING when more were asked for),
the same handler, ``on_commit`` and ``group_status``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import StreamError, group_status
from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent, Streams

from ..streams.firehose_server import FakeFirehose
from .frames import recording

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], bool]) -> None:
    for _ in range(2400):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


async def test_a_group_on_sqlite_runs_as_one_partition_and_says_so(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    server = FakeFirehose(recording(300, 20))
    await server.start()
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/group.sqlite3")
    await store.execute_sql("CREATE TABLE effect (seq INTEGER PRIMARY KEY, did TEXT NOT NULL)")

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        async def write(session: AsyncSession) -> None:
            await session.execute(text("INSERT INTO effect (seq, did) VALUES (:seq, :did)"),
                                  {"seq": event.cursor, "did": event.did})
        ctx.on_commit(write)

    def consumer() -> StreamConsumer:
        return StreamConsumer(FirehoseSource(server.url), handler, store=store, group="indexer", partitions=8,
                              start_cursor=0, commit_interval=0.1)

    try:
        with caplog.at_level(logging.WARNING, logger="pysky_async.streams"):
            first = consumer()
        warnings = [r.getMessage() for r in caplog.records if "consumer group indexer" in r.getMessage()]
        assert len(warnings) == 1 and "one process with one partition" in warnings[0] and "8 partitions" in warnings[0]
        assert first.partitions == 1 and first.name  # the worker's default name: host and pid
        task = asyncio.create_task(first.run())
        await until(lambda: first.cursor == 300)
        await first.stop()
        await task
        status = await group_status(store, "indexer")
        assert [(p.partition, p.cursor) for p in status.partitions] == [(0, 300)]
        assert status.resume_cursor == 300 and status.source == FirehoseSource(server.url).key
        # a second worker (a restart) resumes at the group's cursor: nothing is handled twice
        second = consumer()
        task = asyncio.create_task(second.run())
        await asyncio.sleep(0.5)
        await second.stop()
        await task
        rows = await store.execute_sql("SELECT seq FROM effect ORDER BY seq")
        assert [r[0] for r in rows] == list(range(1, 301))
        with pytest.raises(StreamError, match="no consumer group 'other'"):
            await group_status(store, "other")
    finally:
        await store.aclose()
        await server.stop()


def test_group_options_are_checked() -> None:
    source = FirehoseSource("ws://localhost:1")

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        pass

    with pytest.raises(StreamError, match="needs store="):
        StreamConsumer(source, handler, group="g")
    with pytest.raises(StreamError, match="partitions= needs group="):
        StreamConsumer(source, handler, partitions=4)


async def test_bsky_streams_builds_group_workers(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/factory.sqlite3")

    async def resolve(did: str) -> dict[str, object]:
        raise AssertionError("not called")

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        pass

    try:
        streams = Streams(store, resolve)
        firehose = streams.firehose(handler, service="ws://localhost:1", name="w1", group="indexer", partitions=1)
        jetstream = streams.jetstream(handler, instances=["ws://localhost:1"], group="js")
        assert (firehose.group, firehose.name, firehose.partitions, firehose.store) == ("indexer", "w1", 1, store)
        assert jetstream.group == "js" and jetstream.store is store and jetstream.name  # a default worker name
    finally:
        await store.aclose()
