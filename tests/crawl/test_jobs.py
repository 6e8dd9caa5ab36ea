"""The crawl job table on SQLite and PostgreSQL: batch claims, no row twice, expiry and takeover,
done in the work's transaction, failures retried then final."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from pysky_async._crawl.jobs import CrawlJobs, JobCounts
from pysky_async._storage.store import Store

pytestmark = pytest.mark.anyio
DIDS = [f"did:plc:{n:04d}" for n in range(20)]
T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)


async def test_claims_in_batches_never_give_a_row_twice(store: Store) -> None:
    async with store.transaction() as session:
        await CrawlJobs(session, "j").add(DIDS)
        await CrawlJobs(session, "j").add(DIDS[:5])  # added again: no duplicates, states kept
        await CrawlJobs(session, "other").add(DIDS[:3])
    claimed: list[str] = []
    for worker in ("a", "b", "a", "b", "a"):
        async with store.transaction() as session:
            claimed += await CrawlJobs(session, "j").claim(worker, 6, 60)
    assert sorted(claimed) == DIDS  # 6 + 6 + 6 + 2 + 0
    async with store.transaction() as session:
        assert await CrawlJobs(session, "j").counts() == JobCounts(claimed=20)
        assert await CrawlJobs(session, "other").counts() == JobCounts(pending=3)


async def test_concurrent_claimers_split_the_rows(store: Store, database_url: str) -> None:
    async with store.transaction() as session:
        await CrawlJobs(session, "j").add(DIDS)
    other = Store(database_url)  # a second engine: another process's connections
    try:
        async def claimer(s: Store, worker: str) -> list[str]:
            got: list[str] = []
            while True:
                async with s.transaction() as session:
                    batch = await CrawlJobs(session, "j").claim(worker, 3, 60)
                if not batch:
                    return got
                got += batch

        a, b = await asyncio.gather(claimer(store, "a"), claimer(other, "b"))
    finally:
        await other.aclose()
    assert sorted(a + b) == DIDS and not set(a) & set(b)


async def test_an_expired_claim_is_taken_over_and_a_heartbeat_keeps_it(store: Store) -> None:
    async with store.transaction() as session:
        jobs = CrawlJobs(session, "j")
        await jobs.add(DIDS[:4])
        assert await jobs.claim("dead", 2, 30, now=T0) == DIDS[:2]
        assert await jobs.claim("alive", 2, 30, now=T0) == DIDS[2:4]
        # alive's heartbeat at T0+20 s pushes its claims to T0+50 s; dead's expire at T0+30 s
        assert await jobs.extend("alive", 30, now=T0 + dt.timedelta(seconds=20)) == 2
        assert await jobs.claim("late", 10, 30, now=T0 + dt.timedelta(seconds=29)) == []
        assert await jobs.next_expiry() == T0 + dt.timedelta(seconds=30)
        taken = await jobs.claim("late", 10, 30, now=T0 + dt.timedelta(seconds=31))
        assert taken == DIDS[:2]
        rows = await store_rows(session)
    assert {did: (claimant, attempts) for did, claimant, attempts in rows} == {
        DIDS[0]: ("late", 2), DIDS[1]: ("late", 2), DIDS[2]: ("alive", 1), DIDS[3]: ("alive", 1)}


async def store_rows(session: object) -> list[tuple[str, str | None, int]]:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from pysky_async._storage.models import CrawlJobRow

    assert isinstance(session, AsyncSession)
    result = await session.execute(select(CrawlJobRow.did, CrawlJobRow.claimant, CrawlJobRow.attempts)
                                   .order_by(CrawlJobRow.did))
    return [(d, c, a) for d, c, a in result.all()]


async def test_done_rows_are_never_claimed_again_and_remember_who(store: Store) -> None:
    async with store.transaction() as session:
        jobs = CrawlJobs(session, "j")
        await jobs.add(DIDS[:3])
        await jobs.claim("a", 3, 1, now=T0)
        assert await jobs.lock(DIDS[:2]) == {DIDS[0]: "claimed", DIDS[1]: "claimed"}
        await jobs.mark_done(DIDS[:2], by="host-a:out.jsonl")
        # long after every claim expired, only the unfinished one comes back
        assert await jobs.claim("b", 10, 1, now=T0 + dt.timedelta(hours=1)) == [DIDS[2]]
        assert await jobs.done_by("host-a:out.jsonl") == set(DIDS[:2])
        assert await jobs.counts() == JobCounts(claimed=1, done=2)


async def test_a_failure_is_retried_until_its_attempts_are_spent(store: Store) -> None:
    async with store.transaction() as session:
        jobs = CrawlJobs(session, "j")
        await jobs.add(DIDS[:1])
        for attempt in (1, 2, 3):
            assert await jobs.claim("a", 1, 60) == DIDS[:1]
            final = await jobs.mark_failed(DIDS[0], f"HTTP 500 #{attempt}", max_attempts=3)
            assert final is (attempt == 3)
        assert await jobs.claim("a", 1, 60) == []
        assert await jobs.counts() == JobCounts(failed=1)
        assert await jobs.retry_failed() == 1  # a new run
        assert await jobs.claim("a", 1, 60) == DIDS[:1]


async def test_a_clean_stop_releases_its_claims(store: Store) -> None:
    async with store.transaction() as session:
        jobs = CrawlJobs(session, "j")
        await jobs.add(DIDS[:4])
        await jobs.claim("a", 4, 600)
        assert await jobs.release("a") == 4
        assert await jobs.claim("b", 10, 600) == DIDS[:4]
