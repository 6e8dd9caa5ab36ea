"""The repository of stream consumer cursors (one 64-bit cursor per consumer and source)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import StreamCursorRow, utcnow


class StreamCursorRepository:
    """Durable stream cursors. Never commits: the caller's unit of work does."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, consumer: str, source: str) -> int | None:
        """The stored cursor, or None if this consumer never committed one for this source."""
        result = await self.db.execute(
            select(StreamCursorRow.cursor).where(StreamCursorRow.consumer == consumer,
                                                 StreamCursorRow.source == source))
        value = result.scalar_one_or_none()
        return None if value is None else int(value)

    async def save(self, consumer: str, source: str, cursor: int) -> None:
        """Store ``cursor`` (an upsert: one row per consumer and source)."""
        dialect = postgresql if self.db.get_bind().dialect.name == "postgresql" else sqlite
        values = {"consumer": consumer, "source": source, "cursor": cursor, "updated_at": utcnow()}
        statement = dialect.insert(StreamCursorRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["consumer", "source"],
            set_={"cursor": statement.excluded.cursor, "updated_at": statement.excluded.updated_at})
        await self.db.execute(statement)

    async def delete(self, consumer: str, source: str) -> bool:
        """Forget the stored cursor (the next run starts as a first run); False if there was none."""
        result = await self.db.execute(
            delete(StreamCursorRow).where(StreamCursorRow.consumer == consumer, StreamCursorRow.source == source))
        return bool(getattr(result, "rowcount", 0))
