"""The repository of per-repo sync state (``bsky_repo_sync_state``): verified chain heads, resync queue."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import RepoSyncStateRow, utcnow

ACTIVE = "active"
DESYNCHRONIZED = "desynchronized"


@dataclass(frozen=True, slots=True)
class RepoSyncState:
    """One repo's row: its last verified ``rev`` and MST root (``data_cid``), and its status."""

    did: str
    rev: str | None
    data_cid: str | None
    status: str
    reason: str | None


class RepoSyncStateRepository:
    """Per-repo sync state. Never commits: the caller's unit of work does."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, did: str) -> RepoSyncState | None:
        """The stored state of ``did`` (None: never seen)."""
        row = await self.db.get(RepoSyncStateRow, did)
        return None if row is None else RepoSyncState(row.did, row.rev, row.data_cid, row.status, row.reason)

    async def save(self, did: str, *, rev: str | None, data_cid: str | None, status: str,
                   reason: str | None = None) -> None:
        """Store the state of ``did`` (an upsert)."""
        dialect = postgresql if self.db.get_bind().dialect.name == "postgresql" else sqlite
        values = {"did": did, "rev": rev, "data_cid": data_cid, "status": status,
                  "reason": None if reason is None else reason[:512], "updated_at": utcnow()}
        statement = dialect.insert(RepoSyncStateRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["did"], set_={k: statement.excluded[k] for k in values if k != "did"})
        await self.db.execute(statement)

    async def mark_desynchronized(self, did: str, *, rev: str | None, data_cid: str | None, reason: str) -> None:
        """Queue ``did`` for a resync from ``getRepo``: its chain broke (``reason`` says how)."""
        await self.save(did, rev=rev, data_cid=data_cid, status=DESYNCHRONIZED, reason=reason)

    async def desynchronized(self, limit: int = 1000) -> list[RepoSyncState]:
        """The repos waiting for a resync, oldest first."""
        result = await self.db.execute(
            select(RepoSyncStateRow).where(RepoSyncStateRow.status == DESYNCHRONIZED)
            .order_by(RepoSyncStateRow.updated_at).limit(limit))
        return [RepoSyncState(r.did, r.rev, r.data_cid, r.status, r.reason) for r in result.scalars()]
