"""An append-only output file whose length commits with a stream's cursor: each line exactly once.

A group worker of ``pysky-async stream`` writes its lines inside the event's ``on_commit`` work and
stores the file's length in the same transaction (a row of ``bsky_stream_cursor``, keyed by the
worker and the file's path). Every transaction first truncates the file to the committed length, so
lines of a transaction that rolled back (a lost lease) or of a process killed before its commit are
dropped before anything else is written; a restart does the same before it reads. The row is locked
(``FOR UPDATE`` on PostgreSQL) while a transaction writes, so the partitions of one worker append
one transaction at a time.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .._exceptions import UsageError
from .._storage.models import StreamCursorRow
from .._storage.store import Store
from .._storage.stream_cursors import StreamCursorRepository

_MARK = "pysky_committed_file"
"""The key in ``session.info`` naming the transaction that already truncated the file."""


class CommittedFile:
    """Lines appended in ``on_commit`` work, kept only if their transaction commits.

    Args:
        path: the JSON Lines file (created if missing; an existing file is kept up to its
            committed length, or whole on the first run of this ``owner``).
        owner: the name its committed length is stored under (e.g. ``group/worker``).
    """

    def __init__(self, path: str, owner: str) -> None:
        self.path = os.path.abspath(path)
        self.owner = owner
        self.lines = 0
        self._out: BinaryIO | None = None

    @property
    def _key(self) -> tuple[str, str]:
        return self.owner, f"file:{self.path}"

    async def open(self, store: Store) -> None:
        """Open the file: cut it to its committed length (first run: record its current length)."""
        self._out = open(self.path, "a+b")  # noqa: ASYNC230 (closed in close())
        async with store.transaction() as session:
            committed = await StreamCursorRepository(session).get(*self._key)
            if committed is None:
                committed = self._out.seek(0, os.SEEK_END)
                await StreamCursorRepository(session).save(*self._key, committed)
            self._truncate(committed)

    async def append(self, session: AsyncSession, lines: list[str]) -> None:
        """Append ``lines`` inside the transaction of ``session``; the length commits with it."""
        out = self._require_open()
        transaction = session.sync_session.get_transaction()
        if transaction is None or session.info.get(_MARK) is not transaction:
            row = await session.execute(
                select(StreamCursorRow.cursor).where(StreamCursorRow.consumer == self._key[0],
                                                     StreamCursorRow.source == self._key[1]).with_for_update())
            self._truncate(int(row.scalar_one()))
            session.info[_MARK] = transaction
        out.write("".join(line + "\n" for line in lines).encode())
        out.flush()  # in the OS before the commit: a killed process loses nothing that committed
        await StreamCursorRepository(session).save(*self._key, out.tell())
        self.lines += len(lines)

    async def close(self, store: Store) -> None:
        """Drop lines of a last transaction that did not commit, and close the file."""
        if self._out is None:
            return
        try:
            async with store.transaction() as session:
                committed = await StreamCursorRepository(session).get(*self._key)
            if committed is not None:
                self._truncate(committed)
        finally:
            self._out.close()
            self._out = None

    def _truncate(self, length: int) -> None:
        out = self._require_open()
        out.flush()
        out.truncate(length)
        out.seek(length)

    def _require_open(self) -> BinaryIO:
        if self._out is None:
            raise UsageError("CommittedFile.append() before open(): open it on the store first")
        return self._out
