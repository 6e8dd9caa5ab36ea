"""One leased partition: read from the log in order, run through a ``Runner``, committed under the lease.

Each commit locks the partition's lease row and checks owner and epoch; the handler's on-commit
work (with the ``rev`` guard, keyed by the group) and the watermark commit in that transaction.
A worker that lost the lease commits nothing and drops the partition. Each acquisition gets a
fresh ``RevGuard``: an event admitted but never committed must run again when the partition returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from .._exceptions import FrameDecodeError, StorageError
from .._storage.store import Store
from .._streams.connection import Source
from .._streams.events import StreamEvent
from .._streams.rev_guard import RevGuard, apply
from .._streams.runner import Runner
from .._streams.stats import StreamStats
from .._streams.watermark import Entry
from . import leases
from .leases import Claim
from .log import Head, LogEvent

logger = logging.getLogger("pysky_async.streams")

Handle = Callable[[StreamEvent, Entry, RevGuard], Awaitable[None]]
"""Runs the consumer's handler on one event (filters applied), with the partition's rev guard."""
Admit = Callable[[StreamEvent], "StreamEvent | None"]
"""The consumer's filters: the event to hand on, or None (filtered out)."""


@dataclass(frozen=True, slots=True)
class PartitionSettings:
    """How a partition is read and committed."""

    batch: int = 500
    poll: float = 0.1
    concurrency: int = 32
    max_pending: int = 2000
    commit_every: int = 500
    commit_interval: float = 1.0


class LeaseLost(Exception):
    """The partition's lease is another worker's now (internal)."""


class PartitionWorker:
    """Handles partition ``claim.partition`` of ``group`` for worker ``name`` until stopped or the lease is lost."""

    def __init__(self, store: Store, group: str, name: str, log_id: int, source: Source, claim: Claim,
                 settings: PartitionSettings, *, handle: Handle, admit: Admit, stats: StreamStats) -> None:
        self.store = store
        self.group = group
        self.name = name
        self.log_id = log_id
        self.source = source
        self.claim = claim
        self.partition = claim.partition
        self.epoch = claim.epoch
        self.settings = settings
        self.stats = stats
        self._handle = handle
        self._admit = admit
        self.revs = RevGuard(store, group)
        self.runner = Runner(self._work, concurrency=settings.concurrency, max_pending=settings.max_pending,
                             commit_every=settings.commit_every, gate=self.revs.gate)
        self.position = claim.position
        """The committed watermark (log position)."""
        self.cursor = claim.cursor
        self.after = claim.position
        """The position read up to (handed to the runner)."""
        self.lost = False
        self._cursors: deque[tuple[int, int | None]] = deque()
        self._stopping = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin handling (in a task); events may be added from now on."""
        self.runner.start(self.position)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop reading, finish the events running now, commit (unless the lease was lost) and return.

        Events read but not started stay above the watermark: the partition's next owner (maybe this
        worker again) reads and runs them, so a hand-over waits for the running handlers only."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _work(self, event: StreamEvent, entry: Entry) -> None:
        await self._handle(event, entry, self.revs)

    @property
    def accepting(self) -> bool:
        """Whether the worker's reader may hand this partition more events."""
        return not self._stopping.is_set() and not self.lost

    async def add(self, item: LogEvent) -> None:
        """Admit one event of this partition read from the log (waits while ``max_pending`` are pending)."""
        runner = self.runner
        if runner.pending >= runner.max_pending and not await self._wait_for_space():
            return
        self.stats.events += 1
        self._cursors.append((item.position, item.cursor))
        try:
            event: StreamEvent | None = self.source.decode(item.data)
        except FrameDecodeError as exc:
            self.stats.bad_frames += 1
            logger.warning("group %s partition %d: undecodable event at log position %d skipped: %s",
                           self.group, self.partition, item.position, exc)
            event = None
        wanted = self._admit(event) if event is not None else None
        if wanted is None:
            self.stats.filtered += 1
        runner.add(item.position, wanted)
        self.after = item.position

    async def tick(self, head: Head) -> None:
        """The partition holds no other event up to ``head``: its watermark may pass it."""
        if head.position <= self.after:
            return
        if self.runner.pending >= self.runner.max_pending and not await self._wait_for_space():
            return
        self._cursors.append((head.position, head.cursor))
        self.runner.add(head.position, None)
        self.after = head.position

    async def _wait_for_space(self) -> bool:
        space = asyncio.create_task(self.runner.wait_for_space())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({space, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (space, stopping):
            task.cancel()
        return not self._stopping.is_set() and not self.lost

    async def _run(self) -> None:
        runner = self.runner
        committer = asyncio.create_task(self._committer())
        try:
            await self._stopping.wait()
        finally:
            if not self.lost:
                await runner.halt()
            else:
                await runner.cancel()
            self._closing = True
            runner.commit_wanted.set()
            with contextlib.suppress(LeaseLost):
                await committer
                if not self.lost:
                    try:
                        await self._commit()
                    except StorageError as exc:
                        logger.warning("group %s partition %d: the last commit failed (%s): its events are handled "
                                       "again by the partition's next owner", self.group, self.partition, exc)

    async def _committer(self) -> None:
        commit_wanted = self.runner.commit_wanted
        while not self._closing and not self.lost:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(commit_wanted.wait(), self.settings.commit_interval)
            commit_wanted.clear()
            try:
                await self._commit()
            except StorageError as exc:
                logger.warning("group %s partition %d: commit failed, retrying: %s", self.group, self.partition, exc)
            except LeaseLost:
                self._stopping.set()
                return

    async def _commit(self) -> None:
        runner = self.runner
        position, passed, callbacks = runner.take()
        if passed == 0 or position is None:
            return
        cursor = self.cursor
        for at, upstream in self._cursors:
            if at > position:
                break
            if upstream is not None:
                cursor = upstream
        skipped = 0

        async def guarded(session: AsyncSession) -> None:
            nonlocal skipped
            # the lease row is locked by this update until the commit: no claim can pass it
            if not await leases.advance(session, self.group, self.partition, self.name, self.epoch, position, cursor):
                self.lost = True
                logger.warning("group %s: worker %s lost partition %d (another worker claimed it; our epoch was %d): "
                               "its %d uncommitted events are left to the new owner, nothing of them was committed "
                               "here", self.group, self.name, self.partition, self.epoch, runner.pending)
                raise LeaseLost(self.partition)
            skipped = await apply(session, self.group, callbacks)

        try:
            async with self.store.transaction() as session:
                await guarded(session)
        except LeaseLost:
            raise
        except StorageError:
            runner.give_back(passed, callbacks)
            raise
        except Exception as exc:
            runner.give_back(passed, callbacks)
            logger.error("group %s partition %d: on_commit work failed (%r): the watermark stays at %d and the "
                         "work runs again with the next commit", self.group, self.partition, exc, self.position)
            return
        while self._cursors and self._cursors[0][0] <= position:
            self._cursors.popleft()
        self.position, self.cursor = position, cursor
        self.stats.stale_revs += skipped
        self.stats.commits += 1
        runner.committed(passed)
