"""Consumer groups on a real PostgreSQL: leader election, fencing, rebalancing, trimming, status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import GroupStatus, group_status
from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

from ..streams.firehose_server import FakeFirehose
from .frames import recording

pytestmark = pytest.mark.anyio

FAST = {"heartbeat_interval": 0.3, "lease_duration": 1.0, "commit_interval": 0.1}


@pytest.fixture
async def store(pg_database_url: str) -> AsyncIterator[Store]:
    store = Store(pg_database_url, auto_migrate=True)
    await store.ensure_ready()
    await store.execute_sql("CREATE TABLE effect (seq bigint PRIMARY KEY, did text NOT NULL, worker text NOT NULL)")
    try:
        yield store
    finally:
        await store.aclose()


def effect_handler(worker: str) -> Callable[[StreamEvent, EventContext], Awaitable[None]]:
    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        async def write(session: AsyncSession) -> None:
            await session.execute(text("INSERT INTO effect (seq, did, worker) VALUES (:seq, :did, :worker)"),
                                  {"seq": event.cursor, "did": event.did, "worker": worker})
        ctx.on_commit(write)
    return handler


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)


async def caught_up(store: Store, group: str, last: int) -> bool:
    try:
        status = await group_status(store, group)
    except Exception:
        return False
    return status.upstream_cursor == last and status.lag == 0 and all(p.cursor == last for p in status.partitions)


async def test_two_workers_share_a_group_and_apply_every_event_once(store: Store) -> None:
    server = FakeFirehose(recording(3000, 97))
    await server.start()
    consumers = [StreamConsumer(FirehoseSource(server.url), effect_handler(f"w{i}"), store=store, name=f"w{i}",
                                group="indexer", partitions=8, start_cursor=0, **FAST)  # type: ignore[arg-type]
                 for i in range(2)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        await wait_until(lambda: caught_up(store, "indexer", 3000))
        status: GroupStatus = await group_status(store, "indexer")
        owners = {p.owner for p in status.partitions}
    finally:
        for c in consumers:
            await c.stop()
        await asyncio.gather(*tasks)
        await server.stop()
    rows = await store.execute_sql("SELECT seq, worker FROM effect ORDER BY seq")
    assert [r[0] for r in rows] == list(range(1, 3001))
    assert {r[1] for r in rows} == {"w0", "w1"}  # both did work
    assert owners == {"w0", "w1"}
    assert status.leader in {"w0", "w1"}
    assert len(status.partitions) == 8 and status.resume_cursor == 3000
