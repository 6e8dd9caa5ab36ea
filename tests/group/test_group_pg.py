"""Consumer groups on a real PostgreSQL: leader election, fencing, rebalancing, trimming, status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import GroupStatus, StreamError, group_status
from pysky_async._group import DEFAULT_PARTITIONS, leases
from pysky_async._group.leader import IngestSettings, Leader
from pysky_async._group.log import Appended, Deposed, LogEvent, LogWriter
from pysky_async._group.partition import PartitionSettings, PartitionWorker
from pysky_async._group.registry import register
from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent
from pysky_async._streams.rev_guard import RevGuard
from pysky_async._streams.stats import StreamStats
from pysky_async._streams.watermark import Entry

from ..streams.firehose_server import FakeFirehose
from .frames import commit_frame, did_of, recording

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("effect_table")]

# short timings, not too short for a busy machine (an expired lease costs a rebalance)
FAST = {"heartbeat_interval": 0.5, "lease_duration": 3.0, "commit_interval": 0.1, "log_interval": 1.0}


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


async def owners_are(store: Store, group: str, expected: set[str]) -> bool:
    try:
        return {p.owner for p in (await group_status(store, group)).partitions} == expected
    except Exception:
        return False


async def test_two_workers_share_a_group_and_apply_every_event_once(store: Store) -> None:
    server = FakeFirehose(recording(3000, 97), gate=asyncio.Event())  # frames flow once both hold partitions
    await server.start()
    consumers = [StreamConsumer(FirehoseSource(server.url), effect_handler(f"w{i}"), store=store, name=f"w{i}",
                                group="indexer", partitions=8, start_cursor=0, **FAST)  # type: ignore[arg-type]
                 for i in range(2)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        await wait_until(lambda: owners_are(store, "indexer", {"w0", "w1"}))
        assert server.gate is not None
        server.gate.set()
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


async def test_a_deposed_leader_appends_nothing(store: Store) -> None:
    log = await register(store, "firehose:ws://fence.test", "fenced", 4)
    first, second = LogWriter(store, log, "a"), LogWriter(store, log, "b")
    await first.begin_term()
    await first.append([Appended(1, "did:plc:one", b"x")])
    await second.begin_term()  # b leads now (a lost its lock, say, but still runs)
    with pytest.raises(Deposed):
        await first.append([Appended(2, "did:plc:two", b"y")])
    await second.append([Appended(2, "did:plc:three", b"z")])
    rows = await store.execute_sql("SELECT position, cursor, data FROM bsky_group_event ORDER BY position")
    assert [(int(p), int(c), bytes(d)) for p, c, d in rows] == [(1, 1, b"x"), (2, 2, b"z")]
    stored = await store.execute_sql("SELECT upstream_cursor, last_position, term, leader FROM bsky_group_log")
    assert tuple(stored[0]) == (2, 2, 2, "b")


async def test_only_one_of_two_candidates_ingests(store: Store) -> None:
    server = FakeFirehose(recording(500, 50))
    await server.start()
    source = FirehoseSource(server.url)
    log = await register(store, source.key, "election", 4)
    leaders = [Leader(store, log, source, name, IngestSettings(start_cursor=0), stats=StreamStats(), retry=0.2)
               for name in ("a", "b")]
    tasks = [asyncio.create_task(leader.run()) for leader in leaders]
    try:
        await wait_until(lambda: _positions(store, 500))
        assert [leader.is_leader for leader in leaders].count(True) == 1
        winner = next(leader for leader in leaders if leader.is_leader)
        loser = next(leader for leader in leaders if not leader.is_leader)
        assert winner.appended == 500 and loser.appended == 0
        await winner.stop()  # the lock is free: the other takes over, at the stored cursor
        await wait_until(_is(lambda: loser.is_leader))
        assert (await store.execute_sql("SELECT term, leader FROM bsky_group_log"))[0] == (2, loser.name)
    finally:
        for leader in leaders:
            await leader.stop()
        await asyncio.gather(*tasks)
        await server.stop()
    seqs = [int(r[0]) for r in await store.execute_sql("SELECT cursor FROM bsky_group_event ORDER BY position")]
    assert seqs == list(range(1, 501))  # nothing twice after the change of leader


def _is(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()
    return wrapped


async def _positions(store: Store, last: int) -> bool:
    rows = await store.execute_sql(f"SELECT last_position >= {last} FROM bsky_group_log")
    return bool(rows and rows[0][0])


async def test_a_worker_that_lost_its_lease_commits_nothing(store: Store) -> None:
    log = await register(store, "firehose:ws://lease.test", "leased", 2)
    [claim] = await leases.claim(store, "leased", "a", 1, 30.0)
    done = asyncio.Event()

    async def handle(event: StreamEvent, entry: Entry, revs: RevGuard) -> None:
        async def write(session: AsyncSession) -> None:
            await session.execute(text("INSERT INTO effect (seq, did, worker) VALUES (:seq, :did, 'a')"),
                                  {"seq": event.cursor, "did": event.did})
        entry.callbacks = [write]
        done.set()

    worker = PartitionWorker(store, "leased", "a", log.id, FirehoseSource("ws://lease.test"), claim,
                             PartitionSettings(commit_interval=3600), handle=handle, admit=lambda e: e,
                             stats=StreamStats())
    worker.start()
    await worker.add(LogEvent(1, 1, commit_frame(1, "did:plc:one", "3l00000000001"), claim.partition))
    await done.wait()
    # the lease expires and b claims the partition (a was paused, say); then a tries to commit
    await store.execute_sql("UPDATE bsky_group_partition SET lease_expires = now() - interval '1 second'")
    [taken] = await leases.claim(store, "leased", "b", 1, 30.0)
    assert taken.partition == claim.partition and taken.epoch == claim.epoch + 1
    await worker.stop()
    assert worker.lost
    assert await store.execute_sql("SELECT * FROM effect") == []
    position = await store.execute_sql(f"SELECT position, owner FROM bsky_group_partition WHERE partition = "
                                       f"{claim.partition}")
    assert tuple(position[0]) == (0, "b")


async def test_workers_rebalance_when_one_joins_and_leaves(store: Store) -> None:
    server = FakeFirehose(recording(200, 40))
    await server.start()

    def consumer(name: str) -> StreamConsumer:
        return StreamConsumer(FirehoseSource(server.url), effect_handler(name), store=store, name=name,
                              group="balance", partitions=6, start_cursor=0, **FAST)  # type: ignore[arg-type]

    async def owners() -> dict[str | None, int]:
        try:
            status = await group_status(store, "balance")
        except StreamError:  # not registered yet
            return {}
        counts: dict[str | None, int] = {}
        for p in status.partitions:
            counts[p.owner] = counts.get(p.owner, 0) + 1
        return counts

    first, second = consumer("one"), consumer("two")
    tasks = [asyncio.create_task(first.run())]
    try:
        await wait_until(lambda: _owned(owners, {"one": 6}))
        tasks.append(asyncio.create_task(second.run()))
        await wait_until(lambda: _owned(owners, {"one": 3, "two": 3}))  # a fair share each
        await second.stop()
        await tasks.pop()
        await wait_until(lambda: _owned(owners, {"one": 6}))  # the leaver's partitions came back
        await wait_until(lambda: caught_up(store, "balance", 200))
    finally:
        await first.stop()
        await asyncio.gather(*tasks)
        await server.stop()
    rows = await store.execute_sql("SELECT seq FROM effect ORDER BY seq")
    assert [r[0] for r in rows] == list(range(1, 201))
    # every event was passed by the group: the ingest trimmed the log
    await asyncio.sleep(0)
    status = await group_status(store, "balance")
    assert status.resume_cursor == 200 and all(p.owner is None for p in status.partitions)


async def _owned(owners: Callable[[], Awaitable[dict[str | None, int]]], wanted: dict[str | None, int]) -> bool:
    return await owners() == wanted


async def test_the_log_is_trimmed_and_the_ingest_waits_for_slow_workers(store: Store) -> None:
    server = FakeFirehose(recording(6000, 300))
    await server.start()
    release = asyncio.Event()

    async def slow(event: StreamEvent, ctx: EventContext) -> None:
        await release.wait()

    consumer = StreamConsumer(FirehoseSource(server.url), slow, store=store, name="slow", group="slow", partitions=4,
                              start_cursor=0, max_backlog=1000, max_pending=100, **FAST)  # type: ignore[arg-type]
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(lambda: _positions(store, 1000))
        await asyncio.sleep(3)  # the ingest had time to read on, if nothing held it back
        status = await group_status(store, "slow")
        assert status.log_position < 1000 + 500  # max_backlog + one batch
        release.set()
        await wait_until(lambda: caught_up(store, "slow", 6000))
        await wait_until(lambda: _empty_log(store))  # trimmed once every group passed it
    finally:
        release.set()
        await consumer.stop()
        await task
        await server.stop()


async def _empty_log(store: Store) -> bool:
    return int((await store.execute_sql("SELECT count(*) FROM bsky_group_event"))[0][0]) == 0


async def test_a_log_keeps_its_number_of_partitions(store: Store) -> None:
    await register(store, "firehose:ws://p.test", "g1", 4)
    with pytest.raises(StreamError, match="has 4 partitions, not 8: pass partitions=4"):
        await register(store, "firehose:ws://p.test", "g2", 8)
    with pytest.raises(StreamError, match=r"reads firehose:ws://p\.test"):
        await register(store, "firehose:ws://q.test", "g1", 4)


async def test_a_worker_that_asks_for_no_count_takes_the_logs(store: Store) -> None:
    """Without ``partitions=`` a new log gets DEFAULT_PARTITIONS (24: even over 1, 2, 3, 4, 6, 8, 12
    workers) and a worker on an existing log takes its count (a log made with 16, the old default,
    keeps working instead of refusing the new default)."""
    assert (await register(store, "firehose:ws://new.test", "fresh", None)).partitions == DEFAULT_PARTITIONS == 24
    assert (await register(store, "firehose:ws://new.test", "another", None)).partitions == 24
    await register(store, "firehose:ws://old.test", "old", 16)
    assert (await register(store, "firehose:ws://old.test", "old", None)).partitions == 16

    server = FakeFirehose(recording(40, 7))
    await server.start()
    await register(store, FirehoseSource(server.url).key, "sized", 4)
    consumer = StreamConsumer(FirehoseSource(server.url), effect_handler("w0"), store=store, name="w0",
                              group="sized", start_cursor=0, **FAST)  # type: ignore[arg-type]
    assert consumer.partitions is None  # nothing asked for, not joined yet
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(lambda: caught_up(store, "sized", 40))
        assert consumer.partitions == 4
        assert len((await group_status(store, "sized")).partitions) == 4
    finally:
        await consumer.stop()
        await task
        await server.stop()


async def test_a_restarted_worker_frees_what_its_dead_namesake_held(store: Store) -> None:
    """A worker restarted under its name (a host name, a pod name) used to renew the leases its dead
    predecessor held without working on them: those partitions stalled for good."""
    server = FakeFirehose(recording(300, 30))
    await server.start()
    source = FirehoseSource(server.url)
    await register(store, source.key, "restart", 4)
    assert len(await leases.claim(store, "restart", "w", 2, 3600.0)) == 2  # held by a "w" that died
    consumer = StreamConsumer(source, effect_handler("w"), store=store, name="w", group="restart", partitions=4,
                              start_cursor=0, **FAST)  # type: ignore[arg-type]
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(lambda: caught_up(store, "restart", 300), timeout=60)
    finally:
        await consumer.stop()
        await task
        await server.stop()
    assert [r[0] for r in await store.execute_sql("SELECT seq FROM effect ORDER BY seq")] == list(range(1, 301))


async def test_consumer_cursor_of_a_group_worker_is_the_groups_resume_point(store: Store) -> None:
    """``consumer.cursor`` of a worker is the group's resume point (the lowest partition watermark), the
    same value on every worker, not the cursor of its own last commit: it used to be None in a group."""
    server = FakeFirehose(recording(300, 30))  # did_of(0)'s events are the seqs 30, 60, ...
    await server.start()
    release = asyncio.Event()
    blocked = did_of(0)

    def handler(name: str) -> Callable[[StreamEvent, EventContext], Awaitable[None]]:
        write = effect_handler(name)

        async def handle(event: StreamEvent, ctx: EventContext) -> None:
            if event.did == blocked:
                await release.wait()
            await write(event, ctx)
        return handle

    consumers = [StreamConsumer(FirehoseSource(server.url), handler(f"w{i}"), store=store, name=f"w{i}",
                                group="cursor", partitions=4, start_cursor=0, **FAST)  # type: ignore[arg-type]
                 for i in range(2)]
    assert [c.cursor for c in consumers] == [None, None]
    tasks = [asyncio.create_task(c.run()) for c in consumers]

    async def every_cursor_at_resume_point(below: int) -> bool:
        try:
            status = await group_status(store, "cursor")
        except StreamError:
            return False
        resume = status.resume_cursor
        return (resume is not None and resume < below and status.upstream_cursor == 300
                and all(c.cursor == resume for c in consumers))

    try:
        # the partition of the blocked repo holds the group back: every worker says so
        await wait_until(lambda: every_cursor_at_resume_point(30))
        release.set()
        await wait_until(lambda: caught_up(store, "cursor", 300))
        await wait_until(lambda: every_cursor_at_resume_point(301))
    finally:
        release.set()
        for c in consumers:
            await c.stop()
        await asyncio.gather(*tasks)
        await server.stop()
    assert [c.cursor for c in consumers] == [300, 300]  # still there after the stop
