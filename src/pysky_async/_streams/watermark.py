"""The watermark: events finish out of order; the cursor only passes a fully handled prefix.

The model of ``@atproto/sync``'s memory runner ("last consecutive" cursor): entries are kept in
arrival order and popped once they and everything before them are done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

OnCommit = Callable[[AsyncSession], Awaitable[Any]]


class Entry:
    """One admitted event: its cursor, whether its handlers finished, its on-commit work."""

    __slots__ = ("callbacks", "cursor", "done")

    def __init__(self, cursor: int | None) -> None:
        self.cursor = cursor
        self.done = False
        self.callbacks: list[OnCommit] | None = None


class Watermark:
    """Admitted events in order; ``cursor`` is the newest cursor of the done prefix."""

    def __init__(self, cursor: int | None = None) -> None:
        self._entries: deque[Entry] = deque()
        self.cursor = cursor
        self.callbacks: list[OnCommit] = []
        """On-commit work of events below the watermark, not yet committed."""
        self.passed = 0
        """Events below the watermark since the last ``take()``."""

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, cursor: int | None) -> Entry:
        entry = Entry(cursor)
        self._entries.append(entry)
        return entry

    def finish(self, entry: Entry) -> None:
        """Mark ``entry`` done and move the watermark over the done prefix."""
        entry.done = True
        entries = self._entries
        while entries and entries[0].done:
            first = entries.popleft()
            self.passed += 1
            if first.cursor is not None and (self.cursor is None or first.cursor > self.cursor):
                self.cursor = first.cursor
            if first.callbacks:
                self.callbacks.extend(first.callbacks)

    def take(self) -> tuple[int | None, int, list[OnCommit]]:
        """The watermark, the events passed and their on-commit work, since the last take."""
        passed, callbacks = self.passed, self.callbacks
        self.passed, self.callbacks = 0, []
        return self.cursor, passed, callbacks

    def give_back(self, passed: int, callbacks: list[OnCommit]) -> None:
        """Undo a ``take()`` whose commit failed (the work runs again in the next commit)."""
        self.passed += passed
        self.callbacks[:0] = callbacks
