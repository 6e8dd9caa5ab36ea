"""The crawl job table (``bsky_crawl_job``): per-DID work shared by workers on any machines.

A job is a name and one row per DID. Workers claim pending rows in batches (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so concurrent claimers never wait on each other nor get the same
row; SQLite: the same single ``UPDATE ... RETURNING`` statement, atomic on its one writer) for
``ttl`` seconds, extend their claims while they work (``extend``), and mark a row done in the
same transaction as the work's own effects (``lock`` first, so a worker that took over an
expired claim and the original one cannot both commit). A claim that expired (its worker died)
is taken by the next claimer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .._storage.models import CrawlJobRow, utcnow

PENDING = "pending"
CLAIMED = "claimed"
DONE = "done"
FAILED = "failed"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class JobCounts:
    """How many DIDs of a job are in each state (``claimed`` includes expired claims)."""

    pending: int = 0
    claimed: int = 0
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.claimed + self.done + self.failed

    @property
    def open(self) -> int:
        """DIDs not finished yet (pending or claimed)."""
        return self.pending + self.claimed


class CrawlJobs:
    """The rows of one job. Never commits: the caller's unit of work does."""

    def __init__(self, db: AsyncSession, job: str) -> None:
        self.db = db
        self.job = job

    def _postgres(self) -> bool:
        return self.db.get_bind().dialect.name == "postgresql"

    async def add(self, dids: Iterable[str]) -> None:
        """Add ``dids`` as pending (those already in the job keep their state)."""
        insert = postgresql.insert if self._postgres() else sqlite.insert
        now = utcnow()
        wanted = list(dict.fromkeys(dids))
        for start in range(0, len(wanted), _CHUNK):
            rows = [{"job": self.job, "did": did, "state": PENDING, "attempts": 0, "updated_at": now}
                    for did in wanted[start:start + _CHUNK]]
            await self.db.execute(insert(CrawlJobRow).on_conflict_do_nothing(index_elements=["job", "did"]), rows)

    async def dids(self) -> list[str]:
        """Every DID of the job, in order."""
        return list((await self.db.execute(select(CrawlJobRow.did).where(CrawlJobRow.job == self.job)
                                           .order_by(CrawlJobRow.did))).scalars())

    async def claim(self, worker: str, limit: int, ttl: float, *, now: dt.datetime | None = None) -> list[str]:
        """Claim up to ``limit`` pending DIDs (or DIDs whose claim expired) for ``ttl`` seconds."""
        now = now or utcnow()
        claimable = and_(CrawlJobRow.job == self.job,
                         or_(CrawlJobRow.state == PENDING,
                             and_(CrawlJobRow.state == CLAIMED, CrawlJobRow.claim_expires < now)))
        chosen = select(CrawlJobRow.did).where(claimable).order_by(CrawlJobRow.did).limit(limit)
        if self._postgres():  # materialized: the LIMIT and the locks are taken once, not per outer row
            cte = chosen.with_for_update(skip_locked=True).cte("chosen").prefix_with("MATERIALIZED")
        else:
            cte = chosen.cte("chosen")
        statement = (update(CrawlJobRow)
                     .where(CrawlJobRow.job == self.job, CrawlJobRow.did == cte.c.did)
                     .values(state=CLAIMED, claimant=worker, claim_expires=now + dt.timedelta(seconds=ttl),
                             attempts=CrawlJobRow.attempts + 1, updated_at=now)
                     .returning(CrawlJobRow.did)
                     .execution_options(synchronize_session=False))
        return sorted((await self.db.execute(statement)).scalars())

    async def extend(self, worker: str, ttl: float, *, now: dt.datetime | None = None) -> int:
        """Push the expiry of ``worker``'s claims ``ttl`` seconds ahead (its heartbeat); returns how many."""
        now = now or utcnow()
        result = await self.db.execute(
            update(CrawlJobRow).where(CrawlJobRow.job == self.job, CrawlJobRow.state == CLAIMED,
                                      CrawlJobRow.claimant == worker)
            .values(claim_expires=now + dt.timedelta(seconds=ttl)).execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def lock(self, dids: Iterable[str]) -> dict[str, str]:
        """Lock the rows of ``dids`` until this transaction ends (PostgreSQL: ``FOR UPDATE``; SQLite
        has one writer anyway); returns each one's state, so a row done meanwhile is seen."""
        states: dict[str, str] = {}
        wanted = sorted(set(dids))
        for start in range(0, len(wanted), _CHUNK):
            query = select(CrawlJobRow.did, CrawlJobRow.state).where(
                CrawlJobRow.job == self.job, CrawlJobRow.did.in_(wanted[start:start + _CHUNK]))
            if self._postgres():
                query = query.with_for_update()
            states.update((did, state) for did, state in (await self.db.execute(query)).all())
        return states

    async def mark_done(self, dids: Iterable[str], by: str) -> None:
        """``dids`` are done (by the worker labelled ``by``), in the transaction of their effects."""
        wanted = list(dids)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            await self.db.execute(
                update(CrawlJobRow).where(CrawlJobRow.job == self.job, CrawlJobRow.did.in_(chunk))
                .values(state=DONE, claimant=None, claim_expires=None, done_by=by, last_error=None,
                        updated_at=utcnow()).execution_options(synchronize_session=False))

    async def mark_failed(self, did: str, error: str, *, max_attempts: int) -> bool:
        """``did`` failed (``error``: why): pending again while attempts are left, else failed.
        Returns True if it failed for good."""
        row = await self.db.get(CrawlJobRow, (self.job, did))
        if row is None or row.state == DONE:
            return False
        final = row.attempts >= max_attempts
        row.state = FAILED if final else PENDING
        row.claimant = None
        row.claim_expires = None
        row.last_error = error[:512]
        row.updated_at = utcnow()
        await self.db.flush()
        return final

    async def release(self, worker: str) -> int:
        """Give ``worker``'s unfinished claims back (a clean stop); returns how many."""
        result = await self.db.execute(
            update(CrawlJobRow).where(CrawlJobRow.job == self.job, CrawlJobRow.state == CLAIMED,
                                      CrawlJobRow.claimant == worker)
            .values(state=PENDING, claimant=None, claim_expires=None, attempts=CrawlJobRow.attempts - 1,
                    updated_at=utcnow()).execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def retry_failed(self) -> int:
        """Make the failed DIDs pending again with fresh attempts (a new run retries them)."""
        result = await self.db.execute(
            update(CrawlJobRow).where(CrawlJobRow.job == self.job, CrawlJobRow.state == FAILED)
            .values(state=PENDING, attempts=0, updated_at=utcnow()).execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def counts(self) -> JobCounts:
        """How many DIDs are in each state."""
        result = await self.db.execute(select(CrawlJobRow.state, func.count()).where(CrawlJobRow.job == self.job)
                                       .group_by(CrawlJobRow.state))
        found = {state: int(n) for state, n in result.all()}
        return JobCounts(found.get(PENDING, 0), found.get(CLAIMED, 0), found.get(DONE, 0), found.get(FAILED, 0))

    async def next_expiry(self) -> dt.datetime | None:
        """When the earliest claim of the job expires (None: nothing claimed)."""
        result = await self.db.execute(select(func.min(CrawlJobRow.claim_expires)).where(
            CrawlJobRow.job == self.job, CrawlJobRow.state == CLAIMED))
        return result.scalar()

    async def done_by(self, by: str) -> set[str]:
        """The DIDs the worker labelled ``by`` finished."""
        result = await self.db.execute(select(CrawlJobRow.did).where(
            CrawlJobRow.job == self.job, CrawlJobRow.state == DONE, CrawlJobRow.done_by == by))
        return set(result.scalars())

    async def failures(self) -> dict[str, str]:
        """The DIDs that failed for good, with why."""
        result = await self.db.execute(select(CrawlJobRow.did, CrawlJobRow.last_error).where(
            CrawlJobRow.job == self.job, CrawlJobRow.state == FAILED))
        return {did: error or "" for did, error in result.all()}
