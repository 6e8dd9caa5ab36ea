"""A shared backfill against an injected fetch, on SQLite and PostgreSQL: two workers (two engines,
as two processes would have) share one job, each repo's effects once; a dead worker's claims are
taken over after they expire; a failure is retried by the job, then final."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import InvalidInput, VerificationError
from pysky_async._crawl.jobs import CrawlJobs, JobCounts
from pysky_async._crawl.shared_backfill import SharedBackfill
from pysky_async._storage.store import Store
from pysky_async._streams import CommitEvent, EventContext, StreamEvent
from pysky_async._streams.consumer import Handler

from ..sync.test_backfill_unit import Repo, repo

pytestmark = pytest.mark.anyio
DIDS = [f"did:plc:r{n:03d}" for n in range(40)]
REPOS = {did: repo(did, f"3kaaaaaaa{n:03d}2", 3) for n, did in enumerate(DIDS)}


def effect_handler() -> Handler:
    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        assert isinstance(event, CommitEvent)
        (op,) = event.ops

        async def effect(session: AsyncSession, did: str = event.did, rkey: str = op.rkey) -> None:
            await session.execute(text("INSERT INTO effect VALUES (:d, :r)"), {"d": did, "r": rkey})

        ctx.on_commit(effect)

    return handler


class Meeting:
    """Holds each fetcher's first fetch until all ``parties`` have one (so that every worker claimed
    work before any finishes: on a busy machine one worker could otherwise do the whole job)."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived: set[int] = set()
        self.everyone = asyncio.Event()

    async def arrive(self, who: int) -> None:
        self.arrived.add(who)
        if len(self.arrived) == self.parties:
            self.everyone.set()
        await self.everyone.wait()


class Fetch:
    def __init__(self, bad: frozenset[str] = frozenset(), meeting: Meeting | None = None) -> None:
        self.bad = bad
        self.meeting = meeting
        self.calls: list[str] = []

    async def __call__(self, did: str, host: str | None) -> Repo:
        self.calls.append(did)
        if self.meeting is not None:
            await self.meeting.arrive(id(self))
        await asyncio.sleep(0.001)
        if did in self.bad:
            raise VerificationError(f"the commit of {did} is not signed by its #atproto key", reason="signature")
        return REPOS[did]


def worker(store: Store, fetch: Fetch, **kwargs: object) -> SharedBackfill:
    return SharedBackfill(effect_handler(), store=store, name="crawl", fetch=fetch, dids=DIDS, concurrency=3,
                          **kwargs)  # type: ignore[arg-type]


async def effects(store: Store) -> list[tuple[str, int]]:
    return [(d, n) for d, n in await store.execute_sql("SELECT did, count(*) FROM effect GROUP BY did ORDER BY did")]


async def test_two_workers_share_the_job_and_apply_each_repo_once(store: Store, database_url: str) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    other = Store(database_url)
    try:
        meeting = Meeting(2)
        fetch_a, fetch_b = Fetch(meeting=meeting), Fetch(meeting=meeting)
        a, b = await asyncio.gather(worker(store, fetch_a).run(), worker(other, fetch_b).run())
    finally:
        await other.aclose()
    assert a.done + b.done == len(DIDS) and a.done > 0 and b.done > 0
    assert sorted(fetch_a.calls + fetch_b.calls) == DIDS  # each repo fetched once
    assert await effects(store) == [(did, 3) for did in DIDS]
    async with store.transaction() as session:
        assert await CrawlJobs(session, "crawl").counts() == JobCounts(done=len(DIDS))


async def test_a_dead_workers_claims_are_taken_over_after_they_expire(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    async with store.transaction() as session:
        jobs = CrawlJobs(session, "crawl")
        await jobs.add(DIDS)
        dead = await jobs.claim("dead-worker", 5, 1.5)  # never renewed, never finished
    fetch = Fetch()
    stats = await worker(store, fetch, claim_ttl=30.0, poll=0.2).run()
    assert stats.done == len(DIDS)
    assert sorted(fetch.calls) == DIDS and fetch.calls[-5:] == dead  # the dead worker's repos came last
    assert await effects(store) == [(did, 3) for did in DIDS]


async def test_a_repo_done_before_is_not_done_again(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    first = worker(store, Fetch())
    first._dids = DIDS[:10]
    assert (await first.run()).done == 10
    fetch = Fetch()
    stats = await worker(store, fetch).run()
    assert (stats.done, stats.already_done) == (30, 10) and sorted(fetch.calls) == DIDS[10:]
    assert await effects(store) == [(did, 3) for did in DIDS]


async def test_a_failing_repo_is_retried_then_failed_and_a_new_run_retries_it(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    bad = DIDS[7]
    fetch = Fetch(bad=frozenset({bad}))
    stats = await worker(store, fetch, max_attempts=2).run()
    assert list(stats.failed) == [bad] and fetch.calls.count(bad) == 2
    async with store.transaction() as session:
        assert await CrawlJobs(session, "crawl").counts() == JobCounts(done=len(DIDS) - 1, failed=1)
    again = Fetch()
    stats = await worker(store, again).run()
    assert again.calls == [bad] and stats.done == 1 and not stats.failed


async def test_a_shared_backfill_refuses_a_live_consumer_beside_it(store: Store) -> None:
    from pysky_async._streams import FirehoseSource, StreamConsumer

    live = StreamConsumer(FirehoseSource("https://pds.example"), effect_handler(), store=store, name="crawl")
    with pytest.raises(InvalidInput, match="consumer group"):
        worker(store, Fetch(), live=live)
