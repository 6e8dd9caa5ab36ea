"""The repository of handled notifications and each named consumer's watermark."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import NotificationHandledRow, NotificationMarkRow, utcnow


class NotificationRepository:
    """What a named notification consumer of one account has handled. Never commits: the caller's
    unit of work does."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _insert(self) -> type[postgresql.Insert] | type[sqlite.Insert]:
        return postgresql.Insert if self.db.get_bind().dialect.name == "postgresql" else sqlite.Insert

    async def watermark(self, did: str, consumer: str) -> dt.datetime | None:
        """Every notification listed at or before this time was handled (None: a first run)."""
        result = await self.db.execute(select(NotificationMarkRow.watermark).where(
            NotificationMarkRow.did == did, NotificationMarkRow.consumer == consumer))
        return result.scalar_one_or_none()

    async def handled(self, did: str, consumer: str, uris: Collection[str]) -> set[str]:
        """Those of ``uris`` already handled."""
        found: set[str] = set()
        listed = list(uris)
        for start in range(0, len(listed), 500):  # keep the IN list short
            result = await self.db.execute(select(NotificationHandledRow.uri).where(
                NotificationHandledRow.did == did, NotificationHandledRow.consumer == consumer,
                NotificationHandledRow.uri.in_(listed[start:start + 500])))
            found.update(result.scalars())
        return found

    async def add(self, did: str, consumer: str, uri: str, reason: str, indexed_at: dt.datetime) -> None:
        """Record ``uri`` as handled (a second call is a no-op)."""
        statement = self._insert()(NotificationHandledRow).values(
            did=did, consumer=consumer, uri=uri, reason=reason, indexed_at=indexed_at, handled_at=utcnow())
        await self.db.execute(statement.on_conflict_do_nothing(index_elements=["did", "consumer", "uri"]))

    async def advance(self, did: str, consumer: str, watermark: dt.datetime, forget_before: dt.datetime) -> None:
        """Store the watermark; forget handled notifications listed before ``forget_before``
        (behind the look-back window: never listed again)."""
        statement = self._insert()(NotificationMarkRow).values(did=did, consumer=consumer, watermark=watermark,
                                                               updated_at=utcnow())
        await self.db.execute(statement.on_conflict_do_update(
            index_elements=["did", "consumer"],
            set_={"watermark": statement.excluded.watermark, "updated_at": statement.excluded.updated_at}))
        await self.db.execute(delete(NotificationHandledRow).where(
            NotificationHandledRow.did == did, NotificationHandledRow.consumer == consumer,
            NotificationHandledRow.indexed_at < forget_before))

    async def forget(self, did: str, consumer: str) -> None:
        """Forget the consumer: its next run is a first run."""
        for model in (NotificationHandledRow, NotificationMarkRow):
            await self.db.execute(delete(model).where(model.did == did, model.consumer == consumer))
