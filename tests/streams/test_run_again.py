"""A stopped ``StreamConsumer`` runs again and resumes at its cursor; a second ``run()`` while one is
running is refused. Against a loopback ``subscribeRepos`` server, with an in-memory cursor and a
durable one (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pysky_async import StreamError
from pysky_async._storage.store import Store
from pysky_async._streams import FirehoseSource, StreamConsumer

from .firehose_server import FakeFirehose, identity_frame
from .test_server_errors import Recorder
from .workload import run_until, wait_for

pytestmark = pytest.mark.anyio


async def check_runs_twice(consumer: StreamConsumer, handler: Recorder, server: FakeFirehose) -> None:
    await run_until(consumer, lambda: len(handler.cursors) >= 5)
    first = list(handler.cursors)
    assert first == list(range(1, len(first) + 1))
    assert consumer.cursor == first[-1]
    server.frames += [identity_frame(seq) for seq in range(21, 31)]
    await run_until(consumer, lambda: len(handler.cursors) >= 30)  # the second run goes on where the first stopped
    assert handler.cursors == list(range(1, 31))
    assert server.cursors[-1] == str(first[-1])
    assert consumer.cursor == 30


@pytest.fixture
async def server() -> AsyncIterator[FakeFirehose]:
    firehose = FakeFirehose([identity_frame(seq) for seq in range(1, 21)])
    await firehose.start()
    yield firehose
    await firehose.stop()


async def test_a_stopped_consumer_runs_again_from_its_cursor(server: FakeFirehose) -> None:
    handler = Recorder()
    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0, commit_every=1)
    await check_runs_twice(consumer, handler, server)


async def test_a_stopped_durable_consumer_runs_again_from_its_cursor(server: FakeFirehose, store: Store) -> None:
    handler = Recorder()
    consumer = StreamConsumer(FirehoseSource(server.url), handler, store=store, name="again", start_cursor=0,
                              commit_every=1)
    await check_runs_twice(consumer, handler, server)
    assert await consumer.load_cursor() == 30


async def test_a_second_run_while_running_is_refused(server: FakeFirehose) -> None:
    handler = Recorder()
    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: len(handler.cursors) >= 1)
        with pytest.raises(StreamError, match="already running"):
            await consumer.run()
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 60)
    assert handler.cursors == list(range(1, 21))  # the refused run did not disturb the first
