"""A shared backfill against an injected fetch, on SQLite and PostgreSQL: two workers (two engines,
as two processes would have) share one job, each repo's effects once; a dead worker's claims are
taken over after they expire; a failure is retried by the job, then final."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import InvalidInput, InvalidResponse, VerificationError
from pysky_async._crawl.enumeration import CrawlEnumeration, EnumerationState, ListedPage
from pysky_async._crawl.jobs import CrawlJobs, JobCounts
from pysky_async._crawl.shared_backfill import SharedBackfill
from pysky_async._storage.store import Store
from pysky_async._streams import CommitEvent, EventContext, StreamEvent
from pysky_async._streams.consumer import Handler

from ..sync.test_backfill_unit import Repo, repo

pytestmark = pytest.mark.anyio
DIDS = [f"did:plc:r{n:03d}" for n in range(40)]
NEW = "did:plc:r999"
REPOS = {did: repo(did, f"3kaaaaaaa{n:03d}2", 3) for n, did in enumerate([*DIDS, NEW])}


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


class Listing:
    """``listRepos`` of DIDS in pages of 10 (cursors ``c10``, ``c20``, ...), as ``SharedBackfill``'s ``pages``:
    records the cursor each listing started at and each page served; ``fail_at``: that page's request fails."""

    def __init__(self, fail_at: str | None = None, extra: int = 0) -> None:
        self.fail_at = fail_at
        self.dids = DIDS + [NEW][:extra]
        self.started: list[str | None] = []
        self.served: list[str | None] = []

    async def pages(self, cursor: str | None) -> AsyncIterator[ListedPage]:
        self.started.append(cursor)
        start = 0 if cursor is None else int(cursor[1:])
        for at in range(start, len(self.dids), 10):
            asked = None if at == 0 else f"c{at}"
            if asked is not None and asked == self.fail_at:
                raise InvalidResponse("com.atproto.sync.listRepos answered without a list of repos")
            await asyncio.sleep(0.05)  # a request: the other worker arrives while this one lists
            self.served.append(asked)
            following = f"c{at + 10}" if at + 10 < len(self.dids) else None
            yield ListedPage(self.dids[at:at + 10], following, last=following is None)


def listed_worker(store: Store, fetch: Fetch, listing: Listing, **kwargs: object) -> SharedBackfill:
    return SharedBackfill(effect_handler(), store=store, name="crawl", fetch=fetch, pages=listing.pages,
                          concurrency=3, poll=0.1, **kwargs)  # type: ignore[arg-type]


async def listing_state(store: Store) -> EnumerationState | None:
    async with store.transaction() as session:
        return await CrawlEnumeration(session, "crawl").state()


async def test_two_workers_list_the_repos_once_and_a_restart_does_not_list_again(store: Store,
                                                                                 database_url: str) -> None:
    """Every worker used to run the whole listRepos enumeration, then skip the rows already in the job."""
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    listing = Listing()  # one PDS: the requests of both workers
    other = Store(database_url)
    try:
        meeting = Meeting(2)
        fetch_a, fetch_b = Fetch(meeting=meeting), Fetch(meeting=meeting)
        a, b = await asyncio.gather(listed_worker(store, fetch_a, listing).run(),
                                    listed_worker(other, fetch_b, listing).run())
    finally:
        await other.aclose()
    assert listing.started == [None] and listing.served == [None, "c10", "c20", "c30"]  # one listing, 4 pages
    assert a.done + b.done == len(DIDS) and a.done > 0 and b.done > 0
    assert sorted(fetch_a.calls + fetch_b.calls) == DIDS
    assert await effects(store) == [(did, 3) for did in DIDS]
    state = await listing_state(store)
    assert state is not None and state.finished and state.listed == len(DIDS) and state.claimant is None
    fetch = Fetch()
    stats = await listed_worker(store, fetch, listing).run()  # a restart of the finished job
    assert listing.started == [None] and fetch.calls == [] and stats.already_done == len(DIDS)
    grown = Listing(extra=1)  # a repo more on the PDS since: relist=True lists again, does only the new one
    stats = await listed_worker(store, fetch, grown, relist=True).run()
    assert grown.started == [None] and fetch.calls == [NEW] and stats.done == 1
    state = await listing_state(store)
    assert state is not None and state.finished and state.listed == len(DIDS) + 1


async def test_a_listing_whose_lister_died_is_resumed_at_its_cursor(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    async with store.transaction() as session:  # a worker listed two pages, then died (its lease runs out)
        enumeration = CrawlEnumeration(session, "crawl")
        assert await enumeration.take("dead-worker", 1.5) is not None
        assert await enumeration.advance("dead-worker", ListedPage(DIDS[:10], "c10"), 1.5)
        assert await enumeration.advance("dead-worker", ListedPage(DIDS[10:20], "c20"), 1.5)
        assert await enumeration.take("another", 60.0) is None  # its lease still runs
    listing, fetch = Listing(), Fetch()
    stats = await listed_worker(store, fetch, listing, claim_ttl=30.0).run()
    assert listing.started == ["c20"] and listing.served == ["c20", "c30"]  # resumed, not listed again
    assert stats.done == len(DIDS) and sorted(fetch.calls) == DIDS
    assert await effects(store) == [(did, 3) for did in DIDS]
    state = await listing_state(store)
    assert state is not None and state.finished and state.listed == len(DIDS)


async def test_a_failed_listing_is_raised_and_the_next_worker_resumes_it(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    failing, failed_fetch = Listing(fail_at="c20"), Fetch()
    with pytest.raises(InvalidResponse, match="listRepos"):
        await listed_worker(store, failed_fetch, failing).run()
    state = await listing_state(store)
    assert state is not None
    assert (state.cursor, state.listed, state.claimant, state.finished) == ("c20", 20, None, False)
    listing, fetch = Listing(), Fetch()
    await listed_worker(store, fetch, listing).run()
    assert listing.started == ["c20"]  # the next worker resumed the listing at its cursor
    assert sorted(failed_fetch.calls + fetch.calls) == DIDS  # the repos the failed worker began were committed
    assert await effects(store) == [(did, 3) for did in DIDS]


async def test_a_plain_listing_is_listed_once_too(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")

    async def dids() -> AsyncIterator[str]:
        for did in DIDS:
            yield did

    async def never() -> AsyncIterator[str]:
        raise AssertionError("listed again")
        yield ""

    first = SharedBackfill(effect_handler(), store=store, name="crawl", fetch=Fetch(), listing=dids(), concurrency=3)
    assert (await first.run()).done == len(DIDS)
    again = SharedBackfill(effect_handler(), store=store, name="crawl", fetch=Fetch(), listing=never(), concurrency=3)
    assert (await again.run()).already_done == len(DIDS)
    assert await effects(store) == [(did, 3) for did in DIDS]
