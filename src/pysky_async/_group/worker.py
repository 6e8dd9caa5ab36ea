"""A worker of a consumer group: membership, a fair share of the partitions, and the ingest when it leads.

Every ``heartbeat`` seconds the worker notes itself alive, renews its leases and computes its fair
share, ``ceil(partitions / live workers)``: above it, it hands partitions back (after its running
handlers finish and their events commit); below it, it claims unowned or expired ones. It does so at
once, not at the next heartbeat, when its reads of the log (which count the live members and the
unowned partitions) show a worker joined or left or a partition was freed: a hand-over takes a few
round trips. A dead worker's leases run out at most ``lease`` seconds (default: two heartbeats) after
its last renewal and are claimed at another worker's next heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass

from .._exceptions import StorageError, StreamError
from .._storage.store import Store
from .._streams.connection import Source
from .._streams.stats import StreamStats
from . import leases
from . import log as group_log
from .leader import IngestSettings, Leader
from .partition import Admit, Handle, PartitionSettings, PartitionWorker
from .registry import LogInfo, log_key, register
from .status import resume_cursor

logger = logging.getLogger("pysky_async.streams")

_REBALANCE_GAP = 0.25
"""Seconds at least between two balances (partitions handed back are claimed at the next one)."""
_FULL_POLL = 0.02
"""Seconds between checks for room while ``max_pending`` events are held (handlers and commits make room)."""


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """A worker's timings: heartbeat and lease durations (seconds)."""

    heartbeat: float = 5.0
    lease: float = 10.0
    log_interval: float = 30.0
    """Seconds between summary log lines (partitions held, leader or not, the stats)."""


class GroupWorker:
    """Runs worker ``name`` of ``group`` on ``source`` until ``stop()``.

    Args:
        partitions: the log's partitions (None: as the log has them, or ``DEFAULT_PARTITIONS`` for a new log).
        handle: runs the consumer's handler on one event with a partition's rev guard.
        admit: the consumer's filters.
    """

    def __init__(self, store: Store, source: Source, *, group: str, name: str, partitions: int | None,
                 handle: Handle, admit: Admit, stats: StreamStats, settings: GroupSettings | None = None,
                 ingest: IngestSettings | None = None, partition_settings: PartitionSettings | None = None) -> None:
        settings = settings or GroupSettings()
        if store.dialect != "postgresql":
            raise StreamError("a consumer group with several processes needs PostgreSQL")
        if settings.lease <= settings.heartbeat:
            raise StreamError(f"the lease ({settings.lease} s) must be longer than the heartbeat "
                              f"({settings.heartbeat} s), or leases expire between renewals")
        self.store = store
        self.source = source
        self.group = group
        self.name = name
        self.partitions = partitions
        self.settings = settings
        self.ingest = ingest or IngestSettings()
        self.partition_settings = partition_settings or PartitionSettings()
        self.stats = stats
        self._handle = handle
        self._admit = admit
        self.log: LogInfo | None = None
        self.leader: Leader | None = None
        self.owned: dict[int, PartitionWorker] = {}
        """The partitions this worker handles now."""
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._rebalance = asyncio.Event()
        """Set when a read of the log shows the members or the unowned partitions changed."""
        self._members = 0
        """Live members at the last balance."""

    @property
    def is_leader(self) -> bool:
        """Whether this worker ingests the source now."""
        return self.leader is not None and self.leader.is_leader

    async def stop(self) -> None:
        """Stop: the ingest commits what it read; each partition finishes its running handlers and commits
        (the events read but not started are left above its watermark); leases are released."""
        self._stopping.set()
        self._rebalance.set()
        if self.leader is not None:
            await self.leader.stop()

    async def run(self) -> None:
        """Join the group and work until ``stop()``."""
        log = self.log = await register(self.store, log_key(self.source), self.group, self.partitions)
        # a process of the same name that died may have held partitions: free them now
        await leases.leave(self.store, self.group, self.name)
        self.leader = Leader(self.store, log, self.source, self.name, self.ingest, stats=self.stats,
                             retry=self.settings.heartbeat)
        leading = asyncio.create_task(self.leader.run())
        reading = asyncio.create_task(self._read())
        logger.info("group %s: worker %s joined (%d partitions of %s)", self.group, self.name, log.partitions,
                    log.source)
        next_log = time.monotonic() + self.settings.log_interval
        try:
            while not self._stopping.is_set():
                if time.monotonic() >= next_log:
                    next_log = time.monotonic() + self.settings.log_interval
                    logger.info("group %s: worker %s holds partitions %s%s: %s", self.group, self.name,
                                sorted(self.owned), " and ingests" if self.is_leader else "", self.stats.summary())
                self._rebalance.clear()
                try:
                    await self._balance(log)
                    self.stats.committed_cursor = await resume_cursor(self.store, self.group)  # consumer.cursor
                except StorageError as exc:
                    logger.warning("group %s: worker %s: heartbeat failed, retrying: %s", self.group, self.name, exc)
                # the next balance: at the heartbeat, or as soon as a read saw the group change (not
                # more often than a few times a second while partitions move)
                await self._pause(min(_REBALANCE_GAP, self.settings.heartbeat))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._rebalance.wait(), self.settings.heartbeat - _REBALANCE_GAP)
                if leading.done():
                    leading.result()  # a bug in the ingest: raise it
        finally:
            await self.leader.stop()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            await asyncio.gather(*(self._retire(p) for p in list(self.owned)), *self._retiring,
                                 return_exceptions=True)
            with contextlib.suppress(StorageError):
                await leases.leave(self.store, self.group, self.name)
                self.stats.committed_cursor = await resume_cursor(self.store, self.group)  # after its last commits
            with contextlib.suppress(Exception):
                await leading
            logger.info("group %s: worker %s left", self.group, self.name)

    async def _balance(self, log: LogInfo) -> None:
        s = self.settings
        # first: the leases matter most (only those of this process: a dead one of the same name held others)
        held = await leases.renew(self.store, self.group, self.name, {n: w.epoch for n, w in self.owned.items()},
                                  s.lease)
        live = self._members = await leases.heartbeat(self.store, self.group, self.name, s.lease)
        for number, worker in list(self.owned.items()):
            finished = worker._task is not None and worker._task.done()
            if held.get(number) != worker.epoch or worker.lost or finished:
                if not worker.lost and not finished:
                    logger.warning("group %s: worker %s lost partition %d (its lease was claimed by another): "
                                   "dropping it without a commit", self.group, self.name, number)
                    worker.lost = True
                del self.owned[number]
                self._retiring.add(task := asyncio.create_task(self._drop(worker)))
                task.add_done_callback(self._retiring.discard)
        share = math.ceil(log.partitions / live)
        active = [n for n, w in self.owned.items() if not w._stopping.is_set()]
        if len(active) > share:
            for number in sorted(active)[share:]:
                task = asyncio.create_task(self._retire(number))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
        elif len(active) < share and not self._stopping.is_set():
            for claim in await leases.claim(self.store, self.group, self.name, share - len(active), s.lease):
                worker = PartitionWorker(self.store, self.group, self.name, log.id, self.source, claim,
                                         self.partition_settings, handle=self._handle, admit=self._admit,
                                         stats=self.stats)
                self.owned[claim.partition] = worker
                worker.start()
                logger.info("group %s: worker %s took partition %d (epoch %d) at log position %d", self.group,
                            self.name, claim.partition, claim.epoch, claim.position)

    async def _read(self) -> None:
        """Read the owned partitions' events from the log (one statement for all) and hand them on,
        holding at most ``max_pending`` events across the partitions."""
        assert self.log is not None
        s = self.partition_settings
        while not self._stopping.is_set():
            workers = {n: w for n, w in self.owned.items() if w.accepting}
            pending = sum(w.runner.pending for w in self.owned.values())
            room = s.max_pending - pending - len(workers)  # a read passes a mark to each partition too
            if room <= 0 and pending:
                # a commit makes room if many events wait for one; else the handlers are behind
                if sum(w.runner.passed for w in self.owned.values()) * 2 >= pending:
                    for worker in self.owned.values():
                        if worker.runner.passed:
                            worker.runner.commit_wanted.set()
                await self._pause(_FULL_POLL)
                continue
            # each partition gets its share of the room (at least one event)
            share = max(1, min(s.batch, room) // max(1, len(workers)))
            try:
                events, head = await group_log.read(self.store, self.log.id, {n: w.after for n, w in workers.items()},
                                                    share, group=self.group, lease=self.settings.lease)
            except StorageError as exc:
                logger.warning("group %s: worker %s: reading the log failed, retrying: %s", self.group, self.name, exc)
                await self._pause(max(s.poll, 1.0))
                continue
            self._notice(head)
            read = dict.fromkeys(workers, 0)
            for item in events:
                read[item.partition] += 1
                worker = workers[item.partition]
                if worker.accepting and item.position > worker.after:
                    await worker.add(item)
            for number, worker in workers.items():
                if read[number] < share and worker.accepting:  # nothing else of it up to the head
                    await worker.tick(head)
            if all(count < share for count in read.values()):
                await self._pause(s.poll)

    def _notice(self, head: group_log.Head) -> None:
        """Ask for a balance now if the members changed, or partitions are free while this worker
        holds fewer than its share."""
        assert self.log is not None
        if not head.live:
            return
        active = sum(1 for w in self.owned.values() if not w._stopping.is_set())
        short = head.claimable and active < math.ceil(self.log.partitions / head.live)
        if head.live != self._members or short:
            self._rebalance.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _drop(self, worker: PartitionWorker) -> None:
        with contextlib.suppress(Exception):
            await worker.stop()

    async def _retire(self, number: int) -> None:
        """Finish partition ``number`` (commit what was handled) and release its lease."""
        worker = self.owned.get(number)
        if worker is None:
            return
        try:
            await worker.stop()
        except Exception:  # a bug: say so, and give the partition up all the same
            logger.exception("group %s: worker %s: stopping partition %d failed", self.group, self.name, number)
        finally:
            self.owned.pop(number, None)
        if not worker.lost:
            with contextlib.suppress(StorageError):
                await leases.release(self.store, self.group, self.name, number, worker.epoch)
            logger.info("group %s: worker %s released partition %d at log position %d", self.group, self.name,
                        number, worker.position)
