"""Where a stream consumer keeps its cursor: the ``StreamCursorStore`` protocol, the SQL store on
``bsky_stream_cursor`` (durable, with on-commit work in the cursor's transaction) and an in-memory one.

The consumer's runner decides *which* cursor may be saved (the watermark); the store only saves it,
as ``@atproto/sync`` hands its runner's cursor to a ``setCursor`` hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._storage.store import Store
from .._storage.stream_cursors import StreamCursorRepository
from .row_inserts import run_work
from .watermark import OnCommit


class StreamCursorStore(Protocol):
    """One cursor per consumer name and source key (``FirehoseSource.key``, ``"jetstream"``)."""

    durable: bool
    """Whether ``save`` runs on-commit work with the cursor in one transaction (``ctx.on_commit``)."""

    async def load(self, consumer: str, source: str) -> int | None:
        """The saved cursor, or None if none was saved."""
        ...

    async def save(self, consumer: str, source: str, cursor: int, work: Sequence[OnCommit]) -> None:
        """Save ``cursor``, running each ``work(session)`` first in the same transaction: all of
        it commits or none of it (an exception from ``work`` propagates, nothing is saved)."""
        ...

    async def delete(self, consumer: str, source: str) -> None:
        """Forget the saved cursor (``reset_cursor``): the next load returns None."""
        ...


class SqlStreamCursorStore:
    """Cursors in the ``bsky_stream_cursor`` table of ``store`` (SQLite or PostgreSQL)."""

    durable = True

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self, consumer: str, source: str) -> int | None:
        """The stored cursor of ``consumer`` on ``source``."""
        async with self.store.transaction() as session:
            return await StreamCursorRepository(session).get(consumer, source)

    async def save(self, consumer: str, source: str, cursor: int, work: Sequence[OnCommit]) -> None:
        """Run ``work`` and store ``cursor`` in one transaction."""
        async with self.store.transaction() as session:
            await run_work(session, work)
            await StreamCursorRepository(session).save(consumer, source, cursor)

    async def delete(self, consumer: str, source: str) -> None:
        """Delete the stored cursor of ``consumer`` on ``source`` (nothing happens if there is none)."""
        async with self.store.transaction() as session:
            await StreamCursorRepository(session).delete(consumer, source)

    def __repr__(self) -> str:
        return f"SqlStreamCursorStore({self.store!r})"


class MemoryStreamCursorStore:
    """Cursors in a dict: kept while the process lives (a consumer re-run in it resumes), lost after.
    It cannot run on-commit work (there is no transaction)."""

    durable = False

    def __init__(self) -> None:
        self.cursors: dict[tuple[str, str], int] = {}

    async def load(self, consumer: str, source: str) -> int | None:
        """The last cursor saved for ``consumer`` on ``source`` in this process."""
        return self.cursors.get((consumer, source))

    async def save(self, consumer: str, source: str, cursor: int, work: Sequence[OnCommit]) -> None:
        """Keep ``cursor`` (``work`` must be empty: there is no database transaction to run it in)."""
        if work:
            raise ValueError("an in-memory cursor store cannot run on-commit work")
        self.cursors[consumer, source] = cursor

    async def delete(self, consumer: str, source: str) -> None:
        """Forget the cursor of ``consumer`` on ``source``."""
        self.cursors.pop((consumer, source), None)
