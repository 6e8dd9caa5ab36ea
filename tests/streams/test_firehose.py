"""The firehose consumer against the real reference PDS: typed events, filters, per-DID order, cursor."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

import pytest

from pysky_async._storage.store import Store
from pysky_async._storage.stream_cursors import StreamCursorRepository
from pysky_async._streams import (
    AccountEvent,
    CommitEvent,
    EventContext,
    FirehoseSource,
    IdentityEvent,
    StreamConsumer,
    StreamEvent,
)

from ..realnet.pds import PdsServer
from .conftest import Written, new_accounts
from .workload import NOTE, OTHER, read_firehose, wait_for, write_all

pytestmark = pytest.mark.anyio


async def test_live_consumer_handles_every_event_in_per_did_order_at_concurrency_32(
        pds: PdsServer, database_url: str) -> None:
    accounts = new_accounts(pds, 4)
    dids = {a.did for a in accounts}
    handled: dict[str, list[int]] = defaultdict(list)
    ops: dict[int, int] = {}
    running = peak = 0

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(random.random() * 0.004)  # finish out of order across DIDs
        handled[event.did].append(event.cursor or 0)
        if isinstance(event, CommitEvent):
            ops[event.cursor or 0] = len(event.ops)
        running -= 1

    store = Store(database_url, auto_migrate=True)
    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, store=store, name="live", dids=dids,
                              start_cursor=0, concurrency=32, commit_every=50)
    started = time.monotonic()
    task = asyncio.create_task(consumer.run())
    try:
        await write_all(pds, accounts, singles=60, batches=4, batch_size=100)
        reading = await read_firehose(pds)
        expected = reading.of(dids)
        await wait_for(lambda: {s for seqs in handled.values() for s in seqs} >= expected)
        await wait_for(lambda: consumer.cursor == reading.last_seq)
    finally:
        await consumer.stop()
        await task
    try:
        assert len(expected) > 4 * 60
        for did in dids:
            assert handled[did] == reading.seqs[did]  # all of them, in the server's order
        assert set(handled) == dids  # the DID filter ran before the handler
        assert sum(ops.values()) == sum(reading.ops.get(s, 0) for s in expected) >= 4 * 460
        assert peak > 1  # handlers of different DIDs overlapped
        assert consumer.stats.bad_frames == 0
        # the cursor was committed in batches: every 50 events or 1 s, not per event
        assert 1 < consumer.stats.commits <= consumer.stats.events / 50 + (time.monotonic() - started) + 2
        lag = consumer.stats.lag
        assert lag is not None and 0 <= lag < 600
        async with store.transaction() as session:
            stored = await StreamCursorRepository(session).get("live", consumer.source.key)
        assert stored == consumer.cursor == reading.last_seq
    finally:
        await store.aclose()


async def test_typed_events_and_collection_filter(pds: PdsServer, written: Written) -> None:
    events: list[StreamEvent] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        events.append(event)

    did = written.accounts[0].did
    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, dids=[did], collections=[OTHER],
                              start_cursor=0)
    task = asyncio.create_task(consumer.run())
    await wait_for(lambda: consumer.stats.committed_cursor is not None
                   and consumer.stats.committed_cursor >= max(written.reading.seqs[did]))
    await consumer.stop()
    await task
    commits = [e for e in events if isinstance(e, CommitEvent)]
    # 60 singles: every 4th went to OTHER; identity/account events pass a collection filter
    assert len(commits) == 15
    assert all(len(e.ops) == 1 and e.ops[0].collection == OTHER for e in commits)
    op = commits[0].ops[0]
    assert (op.action, op.rkey, op.record) == ("create", "s00000", {"$type": OTHER, "n": 0})
    assert op.cid and op.cid.startswith("bafyrei")
    assert any(isinstance(e, IdentityEvent) and e.handle == written.accounts[0].handle for e in events)
    assert any(isinstance(e, AccountEvent) and e.active for e in events)
    assert all(e.did == did for e in events)
    assert consumer.stats.filtered > 0


async def test_updates_and_deletes_are_typed(pds: PdsServer, written: Written) -> None:
    actions: dict[str, int] = defaultdict(int)

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        assert isinstance(event, CommitEvent)
        for op in event.ops:
            actions[op.action] += 1
            assert (op.record is None) == (op.action == "delete")

    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, dids=written.dids, collections=[NOTE],
                              start_cursor=0)
    task = asyncio.create_task(consumer.run())
    await wait_for(lambda: (consumer.cursor or 0) >= written.reading.last_seq)
    await consumer.stop()
    await task
    assert actions == {"create": 4 * (45 + 400), "update": 4 * 7, "delete": 4 * 7}
