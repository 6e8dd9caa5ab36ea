"""Listing a crawl job's DIDs once (``bsky_crawl_enumeration``), shared by its workers.

One worker at a time lists (a lease: ``claimant`` until ``claim_expires``, renewed with each page).
Each page's DIDs join the job in the transaction that stores the listing's cursor after that
page, so a worker that dies mid-listing leaves a cursor, and the next worker to take the expired
lease resumes there. ``finished_at`` is set in the transaction of the last page: a job listed once
is not listed again, by its other workers or by a restart. The other workers meanwhile claim the
DIDs already listed, and end only once the listing finished and no DID is left.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .._exceptions import InvalidInput
from .._storage.models import CrawlEnumerationRow, utcnow
from .._storage.store import Store
from .jobs import CrawlJobs

logger = logging.getLogger("pysky_async.sync")
CHUNK = 1000
"""DIDs per transaction when a listing has no cursor (an iterable of DIDs)."""


@dataclass(frozen=True, slots=True)
class ListedPage:
    """One page of a listing: its DIDs, the cursor that lists the next page (None: none or unknown)
    and whether it is the last."""

    dids: list[str]
    cursor: str | None
    last: bool = False


Pages = Callable[[str | None], AsyncIterator[ListedPage]]
"""``pages(cursor)``: the listing's pages from ``cursor`` on (None: from the start)."""


@dataclass(frozen=True, slots=True)
class EnumerationState:
    """How far a job's listing went (see the module docstring)."""

    cursor: str | None
    listed: int
    claimant: str | None
    claim_expires: dt.datetime | None
    finished: bool

    def free(self, now: dt.datetime) -> bool:
        """Unfinished and nobody lists it now (never taken, released, or its lister's lease expired)."""
        return not self.finished and (self.claimant is None or self.claim_expires is None
                                      or self.claim_expires < now)


class CrawlEnumeration:
    """The listing row of one job. Never commits: the caller's unit of work does."""

    def __init__(self, db: AsyncSession, job: str) -> None:
        self.db = db
        self.job = job

    async def state(self) -> EnumerationState | None:
        """The listing's state (None: nobody began listing this job)."""
        row = (await self.db.execute(select(CrawlEnumerationRow).where(CrawlEnumerationRow.job == self.job)
                                     .execution_options(populate_existing=True))).scalar_one_or_none()
        if row is None:
            return None
        return EnumerationState(row.cursor, row.listed, row.claimant, row.claim_expires, row.finished_at is not None)

    async def take(self, worker: str, ttl: float, *, now: dt.datetime | None = None) -> EnumerationState | None:
        """Become the job's lister for ``ttl`` seconds, unless it is finished or another worker's lease
        runs; returns the state to resume from (None: not taken)."""
        now = now or utcnow()
        insert = postgresql.insert if self.db.get_bind().dialect.name == "postgresql" else sqlite.insert
        await self.db.execute(insert(CrawlEnumerationRow).values(job=self.job, listed=0, updated_at=now)
                              .on_conflict_do_nothing(index_elements=["job"]))
        row = (await self.db.execute(
            update(CrawlEnumerationRow)
            .where(CrawlEnumerationRow.job == self.job, CrawlEnumerationRow.finished_at.is_(None),
                   (CrawlEnumerationRow.claimant.is_(None)) | (CrawlEnumerationRow.claimant == worker)
                   | (CrawlEnumerationRow.claim_expires < now))
            .values(claimant=worker, claim_expires=now + dt.timedelta(seconds=ttl), updated_at=now)
            .returning(CrawlEnumerationRow.cursor, CrawlEnumerationRow.listed)
            .execution_options(synchronize_session=False))).first()
        if row is None:
            return None
        return EnumerationState(row[0], int(row[1]), worker, now + dt.timedelta(seconds=ttl), False)

    async def advance(self, worker: str, page: ListedPage, ttl: float, *, finished: bool = False) -> bool:
        """Add ``page``'s DIDs to the job and store its cursor (a page without one keeps the stored one);
        ``finished``: the listing is complete. False (nothing added): ``worker`` no longer holds the lease."""
        now = utcnow()
        values: dict[str, object] = {"listed": CrawlEnumerationRow.listed + len(page.dids),
                                     "claim_expires": now + dt.timedelta(seconds=ttl), "updated_at": now}
        if page.cursor is not None:
            values["cursor"] = page.cursor
        if finished:
            values.update(finished_at=now, claimant=None, claim_expires=None)
        result = await self.db.execute(
            update(CrawlEnumerationRow)
            .where(CrawlEnumerationRow.job == self.job, CrawlEnumerationRow.claimant == worker,
                   CrawlEnumerationRow.finished_at.is_(None))
            .values(**values).execution_options(synchronize_session=False))
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        await CrawlJobs(self.db, self.job).add(page.dids)
        return True

    async def extend(self, worker: str, ttl: float) -> None:
        """Push ``worker``'s lease on the listing ``ttl`` seconds ahead (if it holds it)."""
        now = utcnow()
        await self.db.execute(
            update(CrawlEnumerationRow)
            .where(CrawlEnumerationRow.job == self.job, CrawlEnumerationRow.claimant == worker)
            .values(claim_expires=now + dt.timedelta(seconds=ttl)).execution_options(synchronize_session=False))

    async def restart(self) -> None:
        """Forget that the listing finished, and its cursor: the next lister lists from the start."""
        await self.db.execute(
            update(CrawlEnumerationRow).where(CrawlEnumerationRow.job == self.job)
            .values(cursor=None, listed=0, claimant=None, claim_expires=None, finished_at=None, updated_at=utcnow())
            .execution_options(synchronize_session=False))

    async def release(self, worker: str) -> None:
        """Give the listing up (its cursor stays: the next lister resumes there)."""
        await self.db.execute(
            update(CrawlEnumerationRow)
            .where(CrawlEnumerationRow.job == self.job, CrawlEnumerationRow.claimant == worker)
            .values(claimant=None, claim_expires=None, updated_at=utcnow())
            .execution_options(synchronize_session=False))


def chunked(listing: AsyncIterable[str]) -> Pages:
    """``Pages`` of a listing that has no cursor (an async iterable of DIDs): chunks of ``CHUNK``; a
    listing taken over starts again at its beginning (the DIDs already in the job keep their state)."""
    used = False

    async def pages(cursor: str | None) -> AsyncIterator[ListedPage]:
        nonlocal used
        if used:  # an iterator runs once: listing it again would look like an empty rest
            raise InvalidInput("this worker's listing of the job was used up and cannot start again: run a new "
                               "worker (or pass pages= for a listing that resumes at a cursor)")
        used = True
        chunk: list[str] = []
        async for did in listing:
            chunk.append(did)
            if len(chunk) >= CHUNK:
                yield ListedPage(chunk, None)
                chunk = []
        yield ListedPage(chunk, None, last=True)
    return pages


async def relist(store: Store, job: str) -> bool:
    """Forget that ``job``'s listing finished, so that its next lister lists it again from the start (the
    DIDs listed keep their state); returns whether it had finished."""
    async with store.transaction() as session:
        listing = CrawlEnumeration(session, job)
        state = await listing.state()
        if state is None or not state.finished:
            return False
        await listing.restart()
        return True


async def enumerate_job(store: Store, job: str, worker: str, pages: Pages, *, ttl: float) -> bool:
    """List the DIDs of ``job`` into it as ``worker``, resuming at the stored cursor, unless the listing
    is finished or another worker's lease on it runs. Returns whether this call finished it.

    If the listing fails, the lease is given up (the cursor stays) and the error raised."""
    async with store.transaction() as session:
        state = await CrawlEnumeration(session, job).take(worker, ttl)
    if state is None:
        return False
    logger.info("crawl job %s: worker %s lists its DIDs%s", job, worker,
                f", resuming after {state.listed} at cursor {state.cursor}" if state.listed else "")
    finished = False
    try:
        async for page in pages(state.cursor):
            async with store.transaction() as session:
                if not await CrawlEnumeration(session, job).advance(worker, page, ttl, finished=page.last):
                    logger.warning("crawl job %s: worker %s lost the listing to another worker", job, worker)
                    return False
            if page.last:
                finished = True
                break
        if not finished:  # the pages ended without saying so
            async with store.transaction() as session:
                finished = await CrawlEnumeration(session, job).advance(worker, ListedPage([], None), ttl,
                                                                          finished=True)
    finally:
        if not finished:
            async with store.transaction() as session:
                await CrawlEnumeration(session, job).release(worker)
    return finished
