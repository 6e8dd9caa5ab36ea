"""The stream runner: order and back-pressure, without knowing where the cursor is kept.

Events of one DID run one at a time, in order; events of different DIDs run concurrently (at
most ``concurrency`` at once); at most ``max_pending`` events are admitted and not yet committed,
and ``wait_for_space`` holds the reader at that bound. The watermark (``@atproto/sync``'s
"last consecutive" cursor) says which cursor a commit may save.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from .events import StreamEvent
from .watermark import Entry, OnCommit, Watermark

Work = Callable[[StreamEvent, Entry], Awaitable[None]]
"""What runs for each event (it must not raise: the consumer's wrapper logs and counts failures)."""
Gate = Callable[[str], "asyncio.Event | None"]
"""For a DID, the event to wait for before its next event may run (None: run now)."""


class Runner:
    """Runs ``work`` over admitted events: per DID serially, across DIDs concurrently, bounded.

    Args:
        work: ``await work(event, entry)`` for each event that was not filtered out.
        concurrency: ``work`` calls running at once.
        max_pending: events admitted and not yet committed, at most.
        commit_every: ``commit_wanted`` is set once this many events passed the watermark.
        gate: a DID's events wait (without taking a ``concurrency`` slot) while ``gate(did)``
            gives an event that is not set: a repo being backfilled holds its live events.
    """

    def __init__(self, work: Work, *, concurrency: int, max_pending: int, commit_every: int,
                 gate: Gate | None = None) -> None:
        self._work = work
        self._gate = gate
        self.concurrency = concurrency
        self.max_pending = max_pending
        self.commit_every = commit_every
        self.peak_pending = 0
        """The most events ever pending at once (never above ``max_pending``)."""
        self.commit_wanted = asyncio.Event()
        """Set when a commit should run now (enough events passed, or the reader waits for space)."""
        self._watermark = Watermark()
        self._pending = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._running = 0
        self._queues: dict[str, deque[tuple[StreamEvent, Entry]]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._space = asyncio.Event()
        self._waiting_for_space = False
        self._halted = False

    @property
    def pending(self) -> int:
        """Events admitted and not yet committed (queued, running or waiting for the watermark)."""
        return self._pending

    @property
    def passed(self) -> int:
        """Events below the watermark and not yet taken by a commit."""
        return self._watermark.passed

    @property
    def running(self) -> int:
        """``work`` calls running now."""
        return self._running

    def start(self, cursor: int | None) -> None:
        """Begin a run from ``cursor`` (the watermark starts there)."""
        self._watermark = Watermark(cursor)

    # ---------------------------------------------------------------- admission
    async def wait_for_space(self) -> None:
        """Return once fewer than ``max_pending`` events are pending (asking for a commit meanwhile)."""
        while self._pending >= self.max_pending:
            self._waiting_for_space = True
            self.commit_wanted.set()
            self._space.clear()
            await self._space.wait()
        self._waiting_for_space = False

    def add(self, cursor: int | None, event: StreamEvent | None) -> None:
        """Admit an event at ``cursor`` and queue ``event`` behind its DID's earlier events
        (None: nothing to run, e.g. filtered out; it passes the watermark at once)."""
        self._pending += 1
        if self._pending > self.peak_pending:
            self.peak_pending = self._pending
        entry = self._watermark.add(cursor)
        if event is None:
            self._finish(entry)
            return
        queue = self._queues.get(event.did)
        if queue is None:
            queue = self._queues[event.did] = deque()
            task = asyncio.create_task(self._drain_did(event.did, queue))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        queue.append((event, entry))

    async def _drain_did(self, did: str, queue: deque[tuple[StreamEvent, Entry]]) -> None:
        try:
            while queue:
                event, entry = queue[0]
                if self._gate is not None:
                    while (hold := self._gate(did)) is not None:
                        await hold.wait()
                async with self._slots:
                    if self._halted:
                        break
                    self._running += 1
                    try:
                        await self._work(event, entry)
                    finally:
                        self._running -= 1
                queue.popleft()
                self._finish(entry)
        finally:
            if self._queues.get(did) is queue:
                del self._queues[did]

    def _finish(self, entry: Entry) -> None:
        self._watermark.finish(entry)
        if self._waiting_for_space or self._watermark.passed >= self.commit_every:
            self.commit_wanted.set()

    # ---------------------------------------------------------------- ending a run
    async def drain(self) -> None:
        """Wait until every queued event ran."""
        while self._workers:
            await asyncio.gather(*self._workers)

    async def halt(self) -> None:
        """Start no other queued event and wait for the running ones (the queued ones stay below the
        watermark: whoever resumes from it runs them)."""
        self._halted = True
        while self._workers:
            await asyncio.gather(*self._workers)

    async def cancel(self) -> None:
        """Cancel the running and queued work (their events stay below the watermark)."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    # ---------------------------------------------------------------- committing
    def take(self) -> tuple[int | None, int, list[OnCommit]]:
        """The cursor a commit may save now, the events it covers and their on-commit work."""
        return self._watermark.take()

    def give_back(self, passed: int, work: list[OnCommit]) -> None:
        """Undo a ``take()`` whose commit failed (the work runs again with the next commit)."""
        self._watermark.give_back(passed, work)

    def committed(self, passed: int) -> None:
        """``passed`` events were committed: they leave the pending count (the reader may go on)."""
        self._pending -= passed
        self._space.set()
