"""Effects exactly once, by ``rev``: a COMMIT that succeeded but lost its reply runs nothing twice;
a replayed or backfilled-over commit is skipped; a held repo's events wait, other repos flow."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import StorageError
from pysky_async._storage.repo_revs import RepoRevRepository
from pysky_async._storage.store import Store
from pysky_async._streams import (
    CommitEvent,
    EventContext,
    FirehoseSource,
    StreamConsumer,
    StreamEvent,
)
from pysky_async._streams.watermark import Entry

from ..realnet.pds import PdsServer
from .conftest import Written
from .workload import wait_for

pytestmark = pytest.mark.anyio


class LostReplyStore(Store):
    """A store whose first transaction that ran on-commit work commits, then raises (the reply lost)."""

    armed = True
    wrote = False
    lost = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        self.wrote = False
        async with super().transaction() as session:
            yield session
        if self.armed and self.wrote:
            self.armed = False
            self.lost += 1
            raise StorageError("the connection dropped after COMMIT: its reply was lost")


async def test_a_commit_that_lost_its_reply_runs_its_work_once(pds: PdsServer, written: Written,
                                                                database_url: str) -> None:
    store = LostReplyStore(database_url, auto_migrate=True)
    await store.ensure_ready()
    await store.execute_sql("CREATE TABLE effect_log (seq BIGINT)")  # no unique key: duplicates show

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if isinstance(event, CommitEvent):
            async def effect(session: AsyncSession, seq: int | None = event.cursor) -> None:
                store.wrote = True
                await session.execute(text("INSERT INTO effect_log (seq) VALUES (:seq)"), {"seq": seq})

            ctx.on_commit(effect)

    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, store=store, name="lost-reply",
                              dids=written.dids, start_cursor=0, commit_every=50, commit_interval=0.2)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: (consumer.cursor or 0) >= written.reading.last_seq, timeout=120)
    finally:
        await consumer.stop()
        await task
    try:
        assert store.lost == 1  # the fault happened: a committed batch was retried
        rows = Counter(r[0] for r in await store.execute_sql("SELECT seq FROM effect_log"))
        commits = {s for s in written.seqs if s in written.reading.ops}
        assert set(rows) == commits
        assert {seq: n for seq, n in rows.items() if n > 1} == {}  # each effect exactly once
        assert consumer.stats.stale_revs > 0  # the retried batch's work was skipped by rev
    finally:
        await store.aclose()


def commit(did: str, cursor: int, rev: str) -> CommitEvent:
    return CommitEvent(cursor, did, "2026-12-01T00:00:00Z", rev=rev)


async def test_replays_and_commits_at_or_below_an_applied_rev_are_skipped(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect_log (did VARCHAR(64), rev VARCHAR(32))")
    async with store.transaction() as session:
        await RepoRevRepository(session).mark_backfilled("guard", "did:plc:b", "3kaaaaaaaaab2")
    seen: list[tuple[str, str]] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        assert isinstance(event, CommitEvent)
        seen.append((event.did, event.rev))

        async def effect(session: AsyncSession, did: str = event.did, rev: str = event.rev) -> None:
            await session.execute(text("INSERT INTO effect_log VALUES (:did, :rev)"), {"did": did, "rev": rev})

        ctx.on_commit(effect)

    consumer = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), handler, store=store, name="guard")
    consumer.runner.start(0)
    events = [commit("did:plc:a", 1, "3kaaaaaaaaaa2"), commit("did:plc:b", 2, "3kaaaaaaaaaa9"),  # b: below
              commit("did:plc:b", 3, "3kaaaaaaaaab2"), commit("did:plc:b", 4, "3kaaaaaaaaab3"),  # b: equal, above
              commit("did:plc:a", 5, "3kaaaaaaaaaa2"), commit("did:plc:a", 6, "3kaaaaaaaaaa3")]  # a: replay, above
    for each in events:
        consumer.runner.add(each.cursor, each)
    await consumer.runner.drain()
    await consumer._commit()
    assert sorted(seen) == [("did:plc:a", "3kaaaaaaaaaa2"), ("did:plc:a", "3kaaaaaaaaaa3"),
                            ("did:plc:b", "3kaaaaaaaaab3")]  # per DID in order; the stale ones never ran
    assert consumer.stats.stale_revs == 3
    rows = await store.execute_sql("SELECT did, rev FROM effect_log ORDER BY did, rev")
    assert [tuple(r) for r in rows] == [("did:plc:a", "3kaaaaaaaaaa2"), ("did:plc:a", "3kaaaaaaaaaa3"),
                                        ("did:plc:b", "3kaaaaaaaaab3")]
    async with store.transaction() as session:
        stored = await RepoRevRepository(session).get_many("guard", ["did:plc:a", "did:plc:b"])
    assert {d: (r.rev, r.backfill) for d, r in stored.items()} == {
        "did:plc:a": ("3kaaaaaaaaaa3", None), "did:plc:b": ("3kaaaaaaaaab3", "done")}
    assert consumer.cursor == 6

    # a fresh consumer (a restart) loads the stored revs: a replay of the whole batch runs nothing
    again: list[str] = []

    async def second(event: StreamEvent, ctx: EventContext) -> None:
        again.append(event.did)

    restarted = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), second, store=store, name="guard")
    restarted.runner.start(0)
    for each in events:
        restarted.runner.add(each.cursor, each)
    await restarted.runner.drain()
    assert again == [] and restarted.stats.stale_revs == len(events)


async def test_a_held_repo_waits_and_other_repos_flow() -> None:
    order: list[str] = []

    async def work(event: StreamEvent, entry: Entry) -> None:
        order.append(f"{event.did}@{event.cursor}")

    consumer = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), lambda e, c: asyncio.sleep(0),
                              concurrency=1)
    from pysky_async._streams import Runner

    guard = consumer.revs
    runner = Runner(work, concurrency=1, max_pending=10, commit_every=100, gate=guard.gate)
    runner.start(0)
    guard.hold("did:held")
    runner.add(1, commit("did:held", 1, "3kaaaaaaaaaa2"))
    runner.add(2, commit("did:free", 2, "3kaaaaaaaaaa2"))
    runner.add(3, commit("did:held", 3, "3kaaaaaaaaaa3"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert order == ["did:free@2"] and runner.running == 0  # the held repo takes no concurrency slot
    guard.release("did:held")
    await runner.drain()
    assert order == ["did:free@2", "did:held@1", "did:held@3"]


async def test_a_sync_event_at_an_applied_rev_is_skipped_and_a_newer_one_passes() -> None:
    from pysky_async._streams import SyncEvent

    seen: list[str] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        seen.append(type(event).__name__)

    consumer = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), handler)  # in memory: in-flight revs only
    consumer.runner.start(0)
    # the reference PDS follows an account's first #commit with a #sync at the same rev
    consumer.runner.add(1, commit("did:plc:a", 1, "3kaaaaaaaaaa2"))
    consumer.runner.add(2, SyncEvent(2, "did:plc:a", "2026-12-01T00:00:00Z", rev="3kaaaaaaaaaa2"))
    consumer.runner.add(3, SyncEvent(3, "did:plc:a", "2026-12-01T00:00:00Z", rev="3kaaaaaaaaaa4"))
    await consumer.runner.drain()
    assert seen == ["CommitEvent", "SyncEvent"] and consumer.stats.stale_revs == 1


async def test_on_jetstream_the_ops_of_one_commit_share_its_rev_and_all_pass() -> None:
    from pysky_async._streams import JetstreamSource

    seen: list[int] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        seen.append(event.cursor or 0)

    consumer = StreamConsumer(JetstreamSource(["wss://js.example"]), handler)
    consumer.runner.start(0)
    for cursor, rev in [(1, "3kaaaaaaaaaa3"), (2, "3kaaaaaaaaaa3"), (3, "3kaaaaaaaaaa2"), (4, "3kaaaaaaaaaa4")]:
        consumer.runner.add(cursor, commit("did:plc:a", cursor, rev))  # 1 and 2: two ops of one commit
    await consumer.runner.drain()
    assert seen == [1, 2, 4] and consumer.stats.stale_revs == 1


async def test_rows_inserted_on_commit_go_as_one_statement_and_skip_with_their_rev(store: Store) -> None:
    from sqlalchemy import Column, MetaData, String, Table, event

    effect = Table("effect_rows", MetaData(), Column("did", String(64)), Column("rev", String(32)))
    await store.execute_sql("CREATE TABLE effect_rows (did VARCHAR(64), rev VARCHAR(32))")
    inserts: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EFFECT_ROWS"):
            inserts.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        assert isinstance(event, CommitEvent)
        ctx.insert_on_commit(effect, {"did": event.did, "rev": event.rev})

    consumer = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), handler, store=store, name="rows")
    consumer.runner.start(0)
    events = [commit(f"did:plc:{n % 7}", n, f"3kaaaaaaa{n:04d}") for n in range(1, 301)]
    events.insert(150, commit("did:plc:3", 301, "3kaaaaaaa0003"))  # a replay of did:plc:3's first commit
    for each in events:
        consumer.runner.add(each.cursor, each)
    await consumer.runner.drain()
    await consumer._commit()
    rows = await store.execute_sql("SELECT did, rev FROM effect_rows ORDER BY rev")
    assert [tuple(r) for r in rows] == [(f"did:plc:{n % 7}", f"3kaaaaaaa{n:04d}") for n in range(1, 301)]
    assert len(inserts) == 1, f"{len(inserts)} INSERT statements for one commit"
    assert consumer.stats.stale_revs == 1
