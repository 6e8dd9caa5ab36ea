"""Partitions move promptly on a real PostgreSQL: a worker that joins or leaves is seen at the next
read of the log, not the next heartbeat; a hand-over waits for the running handlers only (the events
read but not started are left to the new owner); ``max_pending`` bounds a worker's events across all
of its partitions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import StreamError, group_status
from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

from ..streams.firehose_server import FakeFirehose
from .frames import recording
from .test_group_pg import caught_up, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("effect_table")]

# heartbeats far apart: whatever moves before one is due moved because a read of the log saw the change
SLOW_HEARTBEAT = {"heartbeat_interval": 60.0, "lease_duration": 120.0, "commit_interval": 0.1, "log_interval": 60.0}


def handler_of(worker: str, delay: float = 0.0) -> Callable[[StreamEvent, EventContext], Awaitable[None]]:
    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if delay:
            await asyncio.sleep(delay)

        async def write(session: AsyncSession) -> None:
            await session.execute(text("INSERT INTO effect (seq, did, worker) VALUES (:seq, :did, :worker)"),
                                  {"seq": event.cursor, "did": event.did, "worker": worker})
        ctx.on_commit(write)
    return handler


async def owner_counts(store: Store, group: str) -> dict[str | None, int]:
    try:
        status = await group_status(store, group)
    except StreamError:  # not registered yet
        return {}
    counts: dict[str | None, int] = {}
    for p in status.partitions:
        counts[p.owner] = counts.get(p.owner, 0) + 1
    return counts


def owned(store: Store, group: str, wanted: dict[str | None, int]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await owner_counts(store, group) == wanted
    return check


async def test_partitions_move_to_a_joiner_and_back_from_a_leaver_before_any_heartbeat(store: Store) -> None:
    server = FakeFirehose(recording(300, 40))
    await server.start()

    def consumer(name: str) -> StreamConsumer:
        return StreamConsumer(FirehoseSource(server.url), handler_of(name), store=store, name=name,
                              group="prompt", partitions=6, start_cursor=0, **SLOW_HEARTBEAT)  # type: ignore[arg-type]

    first, second = consumer("one"), consumer("two")
    tasks = [asyncio.create_task(first.run())]
    try:
        await wait_until(owned(store, "prompt", {"one": 6}))
        tasks.append(asyncio.create_task(second.run()))
        # "one"'s next heartbeat is a minute away: only its reads can tell it that "two" joined
        await wait_until(owned(store, "prompt", {"one": 3, "two": 3}), timeout=30)
        await second.stop()
        await tasks.pop()
        await wait_until(owned(store, "prompt", {"one": 6}), timeout=30)  # freed by the leaver, claimed at once
        await wait_until(lambda: caught_up(store, "prompt", 300))
    finally:
        for c in (first, second):
            await c.stop()
        await asyncio.gather(*tasks)
        await server.stop()
    rows = await store.execute_sql("SELECT seq FROM effect ORDER BY seq")
    assert [r[0] for r in rows] == list(range(1, 301))


async def test_a_hand_over_leaves_the_events_not_started_to_the_new_owner(store: Store) -> None:
    """The first worker reads all 2,000 events before the second joins, and handles them slowly: a
    hand-over that ran every event read (as it once did) would leave the second worker nothing."""
    server = FakeFirehose(recording(2000, 97))
    await server.start()
    first = StreamConsumer(FirehoseSource(server.url), handler_of("one", delay=0.05), store=store, name="one",
                           group="handover", partitions=4, concurrency=1, max_pending=5000, start_cursor=0,
                           **SLOW_HEARTBEAT)  # type: ignore[arg-type]
    second = StreamConsumer(FirehoseSource(server.url), handler_of("two"), store=store, name="two",
                            group="handover", partitions=4, start_cursor=0, **SLOW_HEARTBEAT)  # type: ignore[arg-type]
    tasks = [asyncio.create_task(first.run())]
    try:
        async def all_read() -> bool:
            return first.stats.events == 2000
        await wait_until(all_read)
        handled_before = first.stats.handled
        tasks.append(asyncio.create_task(second.run()))
        await wait_until(owned(store, "handover", {"one": 2, "two": 2}), timeout=30)
        await wait_until(lambda: caught_up(store, "handover", 2000))
    finally:
        for c in (first, second):
            await c.stop()
        await asyncio.gather(*tasks)
        await server.stop()
    rows = await store.execute_sql("SELECT seq, worker FROM effect ORDER BY seq")
    assert [r[0] for r in rows] == list(range(1, 2001))  # every event once
    by_second = sum(1 for r in rows if r[1] == "two")
    assert handled_before < 1000  # the first worker was still busy when the second joined
    assert by_second > 500  # the second handled the handed-over partitions' waiting events


async def test_max_pending_bounds_a_worker_across_its_partitions(store: Store) -> None:
    server = FakeFirehose(recording(1500, 97))
    await server.start()
    consumer = StreamConsumer(FirehoseSource(server.url), handler_of("one", delay=0.005), store=store, name="one",
                              group="bounded", partitions=8, max_pending=100, start_cursor=0,
                              **SLOW_HEARTBEAT)  # type: ignore[arg-type]
    task = asyncio.create_task(consumer.run())
    peak = 0
    try:
        while not await caught_up(store, "bounded", 1500):
            worker = consumer._group_worker
            if worker is not None:
                peak = max(peak, sum(p.runner.pending for p in worker.owned.values()))
            await asyncio.sleep(0.005)
    finally:
        await consumer.stop()
        await task
        await server.stop()
    rows = await store.execute_sql("SELECT count(*) FROM effect")
    assert rows[0][0] == 1500
    assert 0 < peak <= 100
