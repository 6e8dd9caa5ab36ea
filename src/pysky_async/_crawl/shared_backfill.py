"""``SharedBackfill``: a backfill whose repos are rows of a crawl job, shared by workers on any machines.

The repos are listed into the job table once (``enumeration.py``): explicit DIDs by every worker
(rows already there keep their state); a listing (``listRepos``) by one worker at a time, page by
page with its cursor stored, resumed by another worker if its lister dies, and never again once
finished. Workers claim repos in batches (while the listing goes on, those listed so far),
extend their claims while they work, and mark each repo done in the transaction of its effects,
after locking the repo's row: if a worker's claim expired and another one took the repo over,
whichever commits second sees the repo done and applies nothing. A worker ends when the listing
finished and no repo of the job is pending or claimed; while other workers still hold claims (or
list) it waits, and takes over those that expire (their worker died).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .._exceptions import InvalidInput
from .._storage.models import utcnow
from .._storage.repo_revs import DONE, RepoRevRepository
from .._sync.backfill import Backfill, BackfillStats
from .enumeration import CrawlEnumeration, Pages, chunked, enumerate_job, relist
from .jobs import CrawlJobs

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger("pysky_async.sync")


def worker_id() -> str:
    """A name for this process among the job's workers: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SharedBackfill(Backfill):
    """A ``Backfill`` run as one worker of the crawl job named after it (see the module docstring).

    Args (beyond ``Backfill``'s):
        claim_ttl: seconds a claim lasts without a heartbeat (a dead worker's repos are taken
            over this long after it died); the heartbeat renews it every third of that.
        max_attempts: claims of one repo before a failure is final (a worker dying counts as one).
        label: who did a repo, stored with it (``done_by``): e.g. the output this worker writes to.
        poll: seconds between looks at the job while other workers hold its last repos.
        pages: the listing page by page with its cursor (``bsky.sync.backfill`` passes ``listRepos``'),
            so a listing taken over resumes where it stopped; without it, ``listing`` is listed in
            chunks and a listing taken over starts again.
        relist: list the repos again at this worker's start even if the job's listing finished (new
            repos join the job; those done stay done).
    """

    def __init__(self, *args: Any, claim_ttl: float = 60.0, max_attempts: int = 3, label: str | None = None,
                 poll: float = 2.0, pages: Pages | None = None, relist: bool = False, **kwargs: Any) -> None:
        if pages is not None and kwargs.get("dids") is None:
            kwargs.setdefault("listing", _dids_of(pages))  # the same repos, for Backfill's own checks
        super().__init__(*args, **kwargs)
        if self.live is not None:
            raise InvalidInput("a shared backfill runs without a live consumer beside it: run the live "
                               "consumer as a consumer group, or backfill on one machine (shared=False)")
        if claim_ttl <= 0 or max_attempts < 1:
            raise InvalidInput("claim_ttl must be positive and max_attempts at least 1")
        self.worker = worker_id()
        self.label = label or self.worker
        self.claim_ttl = claim_ttl
        self.max_attempts = max_attempts
        self.poll = poll
        self._local: collections.deque[str] = collections.deque()
        self._claiming = asyncio.Lock()
        self._stopping = False
        self._pages: Pages | None = pages or (chunked(self._listing) if self._listing is not None else None)
        self._enumerating: asyncio.Task[bool] | None = None
        self._failure: BaseException | None = None
        self._relist = relist

    def _jobs(self, session: AsyncSession) -> CrawlJobs:
        return CrawlJobs(session, self.name)

    async def run(self) -> BackfillStats:
        """Join the job, work until none of its repos is left, return this worker's stats."""
        planned = await self.prepare() if self._pages is None else []
        if self._relist and self._pages is not None:
            await relist(self.store, self.name)
        async with self.store.transaction() as session:
            jobs = self._jobs(session)
            await jobs.add(planned)
            retried = await jobs.retry_failed()
            counts = await jobs.counts()
            listing = None if self._pages is None else await CrawlEnumeration(session, self.name).state()
        self.stats.repos = counts.total
        self.stats.already_done = counts.done
        listed = ("" if self._pages is None else "; listed before" if listing is not None and listing.finished
                  else "; listing")
        logger.info("backfill %s: worker %s joins: %d repos, %d done, %d claimed by others, %d to go%s%s",
                    self.name, self.worker, counts.total, counts.done, counts.claimed, counts.pending,
                    f" ({retried} failed before, retried)" if retried else "", listed)
        if self._pages is not None and (listing is None or not listing.finished):
            self._list()
        heartbeat = asyncio.create_task(self._heartbeat())
        reporter = asyncio.create_task(self._report())
        try:
            await asyncio.gather(*(self._work() for _ in range(self.concurrency)))
        finally:
            heartbeat.cancel()
            reporter.cancel()
            self._local.clear()
            if self._enumerating is not None:
                self._enumerating.cancel()  # a listing not finished is given up, its cursor stays
                await asyncio.wait({self._enumerating})
            async with self.store.transaction() as session:
                await self._jobs(session).release(self.worker)
        if self._failure is not None:
            raise self._failure
        logger.info("backfill %s: worker %s finished: %s", self.name, self.worker, self.stats.summary())
        return self.stats

    def _list(self) -> None:
        """List the job's repos in a task of this worker (if no other worker lists them now)."""
        assert self._pages is not None
        task = self._enumerating = asyncio.create_task(
            enumerate_job(self.store, self.name, self.worker, self._pages, ttl=self.claim_ttl))

        def done(task: asyncio.Task[bool]) -> None:
            if not task.cancelled() and task.exception() is not None:
                self._failure = task.exception()  # run() raises it once the repos in progress committed
                self._stopping = True

        task.add_done_callback(done)

    def stop(self) -> None:
        """Claim no more repos; ``run()`` returns once those in progress committed (the rest are released)."""
        self._stopping = True

    async def _work(self) -> None:
        while (did := await self._next()) is not None:
            await self._one(did)
            if did in self.stats.failed:
                async with self.store.transaction() as session:
                    final = await self._jobs(session).mark_failed(did, self.stats.failed[did],
                                                                  max_attempts=self.max_attempts)
                if not final:  # pending again: this worker or another tries it later
                    del self.stats.failed[did]

    async def _next(self) -> str | None:
        while not self._stopping:
            if self._local:
                return self._local.popleft()
            async with self._claiming:
                if self._local:
                    continue
                async with self.store.transaction() as session:
                    jobs = self._jobs(session)
                    claimed = await jobs.claim(self.worker, self.concurrency, self.claim_ttl)
                    if claimed:
                        done = [did for did, row in (await RepoRevRepository(session).get_many(self.name, claimed))
                                .items() if row.backfill == DONE]
                        if done:  # backfilled under this name before the job existed
                            await jobs.mark_done(done, by=self.label)
                            self.stats.already_done += len(done)
                        skip = set(done)
                        self._local.extend(did for did in claimed if did not in skip)
                        continue
                    counts = await jobs.counts()
                    expiry = await jobs.next_expiry()
                    listing = None if self._pages is None else await CrawlEnumeration(session, self.name).state()
                self.stats.repos = counts.total
                if self._pages is not None and (listing is None or not listing.finished):
                    lister = self._enumerating
                    if (lister is None or lister.done()) and (listing is None or listing.free(utcnow())):
                        self._list()  # its lister died (or gave up): resume the listing here
                elif counts.open == 0:
                    return None
                # other workers (or this one's other tasks) hold the last repos: wait for them or their expiry
                now = dt.datetime.now(dt.timezone.utc)
                wait = self.poll if expiry is None else min(self.poll, max(0.05, (expiry - now).total_seconds()))
                await asyncio.sleep(wait)
        return None

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.claim_ttl / 3)
            try:
                async with self.store.transaction() as session:
                    await self._jobs(session).extend(self.worker, self.claim_ttl)
                    if self._enumerating is not None and not self._enumerating.done():
                        await CrawlEnumeration(session, self.name).extend(self.worker, self.claim_ttl)
            except Exception:  # the next beat tries again; claims that expire meanwhile are taken over
                logger.warning("backfill %s: worker %s could not renew its claims", self.name, self.worker,
                               exc_info=True)

    async def _before_commit(self, session: AsyncSession, dids: list[str]) -> None:
        await self._jobs(session).lock(dids)

    async def _after_commit(self, session: AsyncSession, dids: list[str]) -> None:
        await self._jobs(session).mark_done(dids, by=self.label)


async def _dids_of(pages: Pages) -> AsyncIterator[str]:
    async for page in pages(None):
        for did in page.dids:
            yield did
