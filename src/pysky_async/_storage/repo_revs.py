"""The repository of per-consumer repo revs (``bsky_repo_rev``): the newest ``rev`` whose effects a
named consumer committed for each repo, and each repo's backfill state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import RepoRevRow, utcnow

DONE = "done"
FAILED = "failed"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class RepoRev:
    """One repo as a consumer saw it: the newest applied ``rev`` and its ``backfill`` state."""

    did: str
    rev: str | None
    backfill: str | None
    reason: str | None


class RepoRevRepository:
    """Per-(consumer, repo) revs. Never commits: the caller's unit of work does."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _insert(self) -> type[postgresql.Insert] | type[sqlite.Insert]:
        return postgresql.Insert if self._postgresql else sqlite.Insert

    @property
    def _postgresql(self) -> bool:
        return self.db.get_bind().dialect.name == "postgresql"

    async def get_many(self, consumer: str, dids: Iterable[str]) -> dict[str, RepoRev]:
        """The stored rows of ``dids`` (repos never seen are missing)."""
        wanted = list(dids)
        found: dict[str, RepoRev] = {}
        if self._postgresql:  # one array parameter: one prepared statement for any number of DIDs
            result = await self.db.execute(_GET_MANY, {"consumer": consumer, "dids": wanted})
            return {did: RepoRev(did, rev, backfill, reason) for did, rev, backfill, reason in result.all()}
        for start in range(0, len(wanted), _CHUNK):
            result = await self.db.execute(
                select(RepoRevRow.did, RepoRevRow.rev, RepoRevRow.backfill, RepoRevRow.reason)
                .where(RepoRevRow.consumer == consumer, RepoRevRow.did.in_(wanted[start:start + _CHUNK])))
            for did, rev, backfill, reason in result.all():
                found[did] = RepoRev(did, rev, backfill, reason)
        return found

    async def revs(self, consumer: str, dids: Iterable[str]) -> dict[str, str]:
        """The stored rev of each of ``dids`` that has one."""
        return {did: row.rev for did, row in (await self.get_many(consumer, dids)).items() if row.rev is not None}

    async def advance(self, consumer: str, revs: Mapping[str, str]) -> None:
        """Store each repo's newest applied rev (an upsert; the backfill state is kept)."""
        if not revs:
            return
        now = utcnow()
        rows = [{"consumer": consumer, "did": did, "rev": rev, "updated_at": now} for did, rev in revs.items()]
        statement = self._insert()(RepoRevRow)
        statement = statement.on_conflict_do_update(
            index_elements=["consumer", "did"],
            set_={"rev": statement.excluded.rev, "updated_at": statement.excluded.updated_at})
        await self.db.execute(statement, rows)

    async def advance_returning_stored(self, consumer: str, revs: Mapping[str, str]) -> dict[str, str] | None:
        """Advance each repo's rev to the one in ``revs`` where that is newer, and return the revs stored
        before (repos never seen are missing), in one statement; None: not on this database (PostgreSQL
        only), use ``revs`` and ``advance``."""
        if not self._postgresql:
            return None
        if not revs:
            return {}
        result = await self.db.execute(_ADVANCE_RETURNING_STORED, {"consumer": consumer, "dids": list(revs),
                                                                   "revs": list(revs.values())})
        return {did: rev for did, rev in result.all() if rev is not None}

    async def mark_backfilled(self, consumer: str, did: str, rev: str) -> None:
        """``did`` was backfilled at ``rev`` (its effects commit in this same transaction)."""
        await self._set_backfill(consumer, did, rev=rev, backfill=DONE, reason=None)

    async def mark_backfilled_many(self, consumer: str, revs: Mapping[str, str]) -> None:
        """Each repo of ``revs`` was backfilled at its rev: ``mark_backfilled`` in one statement."""
        if not revs:
            return
        now = utcnow()
        rows = [{"consumer": consumer, "did": did, "rev": rev, "backfill": DONE, "reason": None, "updated_at": now}
                for did, rev in revs.items()]
        statement = self._insert()(RepoRevRow)
        statement = statement.on_conflict_do_update(
            index_elements=["consumer", "did"],
            set_={"rev": statement.excluded.rev, "backfill": statement.excluded.backfill,
                  "reason": statement.excluded.reason, "updated_at": statement.excluded.updated_at})
        await self.db.execute(statement, rows)

    async def mark_failed(self, consumer: str, did: str, reason: str) -> None:
        """``did`` could not be backfilled (``reason``: why); a later run tries it again."""
        await self._set_backfill(consumer, did, rev=None, backfill=FAILED, reason=reason[:512])

    async def _set_backfill(self, consumer: str, did: str, *, rev: str | None, backfill: str,
                            reason: str | None) -> None:
        values = {"consumer": consumer, "did": did, "rev": rev, "backfill": backfill, "reason": reason,
                  "updated_at": utcnow()}
        statement = self._insert()(RepoRevRow).values(**values)
        update = {"backfill": statement.excluded.backfill, "reason": statement.excluded.reason,
                  "updated_at": statement.excluded.updated_at}
        if rev is not None:
            update["rev"] = statement.excluded.rev
        statement = statement.on_conflict_do_update(index_elements=["consumer", "did"], set_=update)
        await self.db.execute(statement)

    async def backfilled(self, consumer: str) -> dict[str, RepoRev]:
        """Every repo ``consumer`` backfilled or failed to, by DID."""
        result = await self.db.execute(
            select(RepoRevRow.did, RepoRevRow.rev, RepoRevRow.backfill, RepoRevRow.reason)
            .where(RepoRevRow.consumer == consumer, RepoRevRow.backfill.is_not(None)))
        return {did: RepoRev(did, rev, backfill, reason) for did, rev, backfill, reason in result.all()}


# one primary-key probe per DID (the LIMIT keeps the planner from turning the lookups into a join):
# "did = ANY(:dids)" or a plain join was planned as a scan of the whole table, which grows with the
# repos seen (~3-5 ms per call at 5,000 repos, for a handful of DIDs)
_PROBE = ("CROSS JOIN LATERAL (SELECT r.did, r.rev, r.backfill, r.reason FROM bsky_repo_rev r "
          "WHERE r.consumer = :consumer AND r.did = w.did LIMIT 1) s")
_GET_MANY = text(
    f"SELECT s.did, s.rev, s.backfill, s.reason FROM unnest(CAST(:dids AS varchar[])) AS w(did) {_PROBE}")
# every part of the statement sees one snapshot: "stored" reads the revs as they were before "advanced"
_ADVANCE_RETURNING_STORED = text(
    "WITH incoming AS (SELECT did, rev FROM unnest(CAST(:dids AS varchar[]), CAST(:revs AS varchar[])) "
    "AS t(did, rev)), "
    f"stored AS (SELECT s.did, s.rev FROM incoming AS w {_PROBE}), "
    "advanced AS (INSERT INTO bsky_repo_rev (consumer, did, rev, updated_at) "
    "SELECT CAST(:consumer AS varchar), did, rev, CURRENT_TIMESTAMP FROM incoming "
    "ON CONFLICT (consumer, did) DO UPDATE SET rev = excluded.rev, updated_at = excluded.updated_at "
    "WHERE bsky_repo_rev.rev IS NULL OR bsky_repo_rev.rev < excluded.rev) "
    "SELECT did, rev FROM stored")
