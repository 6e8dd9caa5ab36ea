"""The stream consumer: a feed, filters, a runner (order, back-pressure) and a cursor store.

It reads events from its ``Feed``, filters them, hands them to its ``Runner`` and commits the
runner's watermark to its ``StreamCursorStore`` every ``commit_every`` events or
``commit_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from .._exceptions import StorageError, StreamError
from .._storage.store import Store
from .collection_filter import check_collections
from .connection import Feed, Source
from .cursor_store import MemoryStreamCursorStore, SqlStreamCursorStore, StreamCursorStore
from .events import CommitEvent, StreamEvent, SyncEvent
from .firehose import FirehoseSource
from .rev_guard import RevGuard, RevStep, apply
from .row_inserts import RowInsert
from .runner import Runner
from .stats import StreamStats
from .verify import SignatureVerifier
from .watermark import Entry, OnCommit

if TYPE_CHECKING:
    from .._group.worker import GroupWorker

logger = logging.getLogger("pysky_async.streams")


class EventContext:
    """Handed to a handler with each event."""

    __slots__ = ("_durable", "_entry", "_key")

    def __init__(self, entry: Entry, durable: bool, key: tuple[str, str, bool] | None = None) -> None:
        self._entry = entry
        self._durable = durable
        self._key = key

    def on_commit(self, work: OnCommit) -> None:
        """Run ``work(session)`` inside the transaction that commits the cursor past this event.

        Database effects written there happen exactly once: they commit together with the
        cursor and the repo's ``rev``, or none of them does and the event is handled again after a
        restart; work of an event whose ``rev`` is already applied (a replay) is skipped.
        """
        if not self._durable:
            raise StreamError("on_commit needs a durable consumer: give it a name (bsky.streams.firehose(..., "
                              "name=...)), or pass store= and name= to StreamConsumer")
        callbacks = self._entry.callbacks
        if callbacks is None:
            callbacks = self._entry.callbacks = [] if self._key is None else [RevStep(*self._key)]
        step = callbacks[0] if self._key is not None else None
        if isinstance(step, RevStep):
            step.work.append(work)
        else:
            callbacks.append(work)


    def insert_on_commit(self, table: Any, row: Mapping[str, Any]) -> None:
        """Insert ``row`` into ``table`` (a SQLAlchemy ``Table`` or mapped class) in the transaction
        that commits the cursor past this event: ``on_commit`` for the common case of one row per
        event, sent as one multi-row ``INSERT`` per table and commit instead of a statement each."""
        self.on_commit(RowInsert(table, row))

Handler = Callable[[StreamEvent, EventContext], Awaitable[None]]


class _Filters:
    def __init__(self, collections: Iterable[str] | None, dids: Iterable[str] | None) -> None:
        wanted = check_collections(collections)
        self.exact = frozenset(c for c in wanted if not c.endswith(".*"))
        self.prefixes = tuple(c[:-1] for c in wanted if c.endswith(".*"))
        self.any_collection = not wanted
        self.dids = frozenset(dids) if dids else None

    def collection(self, name: str) -> bool:
        return name in self.exact or name.startswith(self.prefixes)

    def apply(self, event: StreamEvent) -> StreamEvent | None:
        if self.dids is not None and event.did and event.did not in self.dids:
            return None
        if self.any_collection or not isinstance(event, CommitEvent):
            return event
        ops = tuple(op for op in event.ops if self.collection(op.collection))
        if not ops:
            return None
        return event if len(ops) == len(event.ops) else replace(event, ops=ops)


class StreamConsumer:
    """Runs ``handler`` over a stream: concurrently across DIDs, in order within one DID.

    ``bsky.streams.firehose(handler, ...)`` and ``bsky.streams.jetstream(handler, ...)`` build one
    on a client's database; this constructor is the long form.

    At most ``max_pending`` events are read but not yet committed; when that many are pending
    the consumer stops reading the socket (back-pressure) instead of buffering. With ``store``
    and ``name`` the cursor is durable: it is committed every ``commit_every`` handled events or
    ``commit_interval`` seconds, and only up to the last event whose handlers finished, as are
    all events before it (at-least-once). A restart resumes there; a first run starts at
    ``start_cursor`` (None: the live tail). A ``#commit`` or ``#sync`` whose ``rev`` is not above
    the repo's newest admitted or applied one is skipped (``stats.stale_revs``; ``revs``), and
    the stored rev advances with the event's ``on_commit`` work.

    Args:
        source: ``FirehoseSource`` or ``JetstreamSource``.
        handler: ``async def handler(event, ctx)``; an exception is logged and counted, and the
            event counts as handled.
        store / name: the database and the name the cursor is kept under (both or neither).
        cursor_store: where the cursor is kept instead (a ``StreamCursorStore``; ``store`` must
            then be None); default: the database with ``store``, else the process's memory.
        collections / dids: only these reach the handler (NSIDs, or ``"app.bsky.feed.*"``
            prefixes; other operations of a commit are removed from it). A collection that is
            neither raises ``InvalidInput``.
        concurrency: handlers running at once.
        verifier: a ``SignatureVerifier``: commit signatures are checked before the handler.
        reset_cursor: forget the saved cursor when ``run()`` starts, so that it starts at
            ``start_cursor`` as a first run does (the reset is saved at once: a crash before the
            first commit does not bring the old cursor back). ``await consumer.reset_cursor()``
            does the same before a run.
        group: run as a worker of this consumer group (needs ``store``; ``name`` is then this
            worker's name, default ``"<host>-<pid>"``). On PostgreSQL the group's workers, in any
            number of processes, share ``partitions`` partitions of the source (by a hash of the
            DID, so per-repo order holds), and whichever wins the ingest lock reads the source into
            a log in the database. The handler, ``EventContext`` and ``on_commit`` work unchanged;
            effects, the repo's ``rev`` and the partition's watermark commit together, and the
            group's resume point is its lowest partition watermark (``group_status``). On SQLite
            a group is one process with one partition (a WARNING says so if ``partitions`` > 1).
        partitions: the number of partitions of the source's log, fixed when the log is first
            created; by default the log's own, and 24 for a new log on PostgreSQL (24 splits evenly
            over 1, 2, 3, 4, 6, 8 or 12 workers: a worker holding more partitions than the others
            bounds the group).
        heartbeat_interval / lease_duration: a group worker's heartbeat and partition lease
            (seconds; default 5 and 10): a dead worker's leases run out within two heartbeats of
            its last renewal, and another worker claims them at its next heartbeat; partitions move
            to a worker that joins, or from one that leaves, within a second or so. ``concurrency``
            applies per partition, ``max_pending`` to all of a worker's partitions together.
        max_backlog: the ingest stops reading the source while the log holds more events than
            this above the group's (or any group's on the same source) slowest watermark.

    Raises (from ``run()``):
        StreamServerError: the server refused the cursor (``FutureCursor``): reset it.
    """

    def __init__(self, source: Source, handler: Handler, *, store: Store | None = None, name: str | None = None,
                 cursor_store: StreamCursorStore | None = None,
                 collections: Iterable[str] | None = None, dids: Iterable[str] | None = None,
                 start_cursor: int | None = None, concurrency: int = 32, max_pending: int = 2000,
                 commit_every: int = 500, commit_interval: float = 1.0, log_interval: float = 30.0,
                 silence_timeout: float = 60.0, backoff_max: float = 30.0,
                 max_frame_bytes: int = 5 * 1024 * 1024, verifier: SignatureVerifier | None = None,
                 reset_cursor: bool = False, group: str | None = None, partitions: int | None = None,
                 heartbeat_interval: float = 5.0, lease_duration: float = 10.0,
                 max_backlog: int = 100_000) -> None:
        if group is not None:
            if store is None:
                raise StreamError("a consumer group needs store= (its workers share the database's log and leases)")
            if not group:
                raise StreamError("group= must be a non-empty name")
            if name is None:
                name = f"{socket.gethostname()}-{os.getpid()}"
            if partitions is not None and partitions < 1:
                raise StreamError(f"partitions must be at least 1, not {partitions}")
            if store.dialect != "postgresql":
                if partitions is not None and partitions > 1:
                    logger.warning("consumer group %s on %s: a group runs as one process with one partition on "
                                   "this database, not %d partitions (several processes need PostgreSQL)",
                                   group, store.dialect, partitions)
                partitions = 1
        elif partitions is not None:
            raise StreamError("partitions= needs group=: partitions are how a consumer group shares a stream")
        self.group = group
        """The consumer group this consumer is a worker of (None: a consumer on its own)."""
        self._partitions = partitions
        self.heartbeat_interval = heartbeat_interval
        self.lease_duration = lease_duration
        self.max_backlog = max_backlog
        self._group_worker: GroupWorker | None = None
        if cursor_store is not None:
            if store is not None:
                raise StreamError("pass store= or cursor_store=, not both")
            if cursor_store.durable and name is None:
                raise StreamError("a durable cursor store needs name=, the name the cursor is kept under")
        elif (store is None) != (name is None):
            raise StreamError("a durable cursor needs both store= and name= (or neither, for an in-memory cursor)")
        if concurrency < 1 or max_pending < 1:
            raise StreamError("concurrency and max_pending must be at least 1")
        if verifier is not None:
            if not isinstance(source, FirehoseSource):
                raise StreamError("signature checks need the firehose: Jetstream events carry no signatures")
            source.keep_commit = True
        self.verifier = verifier
        self.source = source
        self.handler = handler
        self.store = store
        self.name = name
        self.cursor_store: StreamCursorStore = cursor_store or (
            SqlStreamCursorStore(store) if store is not None else MemoryStreamCursorStore())
        self.start_cursor = start_cursor
        self.commit_interval = commit_interval
        self.log_interval = log_interval
        self.stats = StreamStats()
        sql_store = store if store is not None else getattr(cursor_store, "store", None)
        # the firehose has one event per commit; Jetstream one per op, all at the commit's rev
        self._strict_revs = isinstance(source, FirehoseSource)
        self._key = group if group is not None else name
        self.revs = RevGuard(sql_store if isinstance(sql_store, Store) and self.cursor_store.durable else None,
                             self._key or "")
        """The rev guard: a repo's commit whose ``rev`` is not above its newest applied one is skipped."""
        self._runner = Runner(self._handle, concurrency=concurrency, max_pending=max_pending,
                              commit_every=commit_every, gate=self.revs.gate)
        self._filters = _Filters(collections, dids)
        self._reset = reset_cursor
        self._running = False
        self._active = False
        self.silence_timeout = silence_timeout
        self.backoff_max = backoff_max
        self.max_frame_bytes = max_frame_bytes
        self._feed: Feed | None = None
        self._stopping = False
        self._closing = False

    # ---------------------------------------------------------------- public state
    @property
    def runner(self) -> Runner:
        """The runner: per-DID order, concurrency and the ``max_pending`` bound."""
        return self._runner

    @property
    def pending(self) -> int:
        """Events read and not yet committed (queued, running or waiting for the watermark)."""
        return self._runner.pending

    @property
    def running(self) -> int:
        """Handlers running now."""
        return self._runner.running

    @property
    def peak_pending(self) -> int:
        """The most events ever pending at once (never above ``max_pending``)."""
        return self._runner.peak_pending

    @property
    def concurrency(self) -> int:
        """Handlers running at once, at most."""
        return self._runner.concurrency

    @property
    def max_pending(self) -> int:
        """Events read and not yet committed, at most."""
        return self._runner.max_pending

    @property
    def commit_every(self) -> int:
        """A commit runs once this many events passed the watermark (or every ``commit_interval`` s)."""
        return self._runner.commit_every

    @property
    def partitions(self) -> int | None:
        """The partitions of the group's log (1 on SQLite); as asked until the worker joins the group,
        then the log's (None: a consumer on its own, or a worker that asked for none and has not joined)."""
        worker = self._group_worker
        if worker is not None and worker.log is not None:
            return worker.log.partitions
        return self._partitions

    @property
    def cursor(self) -> int | None:
        """The last committed cursor. A group worker on PostgreSQL: the group's resume point (its lowest
        partition watermark's upstream cursor, as ``group_status`` shows), refreshed at each heartbeat
        and when the worker stops; None until its first heartbeat or while a partition handled nothing."""
        return self.stats.committed_cursor

    async def update_filters(self, *, collections: Iterable[str] | None = None,
                             dids: Iterable[str] | None = None) -> None:
        """Replace the collection and DID filters for the events read from now on (on a live
        Jetstream connection the server's filters change too, with ``options_update``)."""
        collections, dids = check_collections(collections), list(dids or ())
        self._filters = _Filters(collections, dids)
        ws = self._feed.ws if self._feed is not None else None
        await self.source.update_filters(ws, collections=collections, dids=dids)

    # ---------------------------------------------------------------- running
    async def load_cursor(self) -> int | None:
        """The saved cursor of this consumer and source in its cursor store (None if none was saved)."""
        return await self.cursor_store.load(self._key or "", self.source.key)

    async def reset_cursor(self) -> None:
        """Forget the saved cursor of this consumer and source: the next ``run()`` starts at
        ``start_cursor`` (None: the live tail). Refused while the consumer runs."""
        if self._running:
            raise StreamError(f"stream consumer {self.name!r} is running: stop it before resetting its cursor")
        delete = getattr(self.cursor_store, "delete", None)  # a store written before delete() joined the protocol
        if delete is None:
            raise StreamError(f"{type(self.cursor_store).__name__} cannot forget a cursor: give it "
                              "`async def delete(self, consumer, source)` (see StreamCursorStore) to reset one")
        await delete(self._key or "", self.source.key)
        self.stats.committed_cursor = None
        logger.info("stream consumer %s on %s: cursor reset", self.name, self.source.key)

    async def run(self) -> None:
        """Consume until ``stop()``; then drain in-flight events and commit. A stopped consumer can
        run again: it resumes at its cursor. ``StreamError`` while it is running."""
        if self._active:
            raise StreamError(f"stream consumer {self.name or '(unnamed)'} is already running: one run() at a "
                              "time (stop() it and await that run first)")
        self._active = True
        try:
            await self._run()
        finally:
            self._active = False

    async def _run(self) -> None:
        if self.group is not None and self.store is not None and self.store.dialect == "postgresql":
            await self._run_group(self.store, self.group)
            return
        if self._reset:
            self._reset = False
            await self.reset_cursor()
        stored = await self.load_cursor()
        if stored is not None and self.start_cursor is not None and stored != self.start_cursor:
            logger.info("stream consumer %s: resuming at its saved cursor %s; start_cursor=%s applies to a first "
                        "run only (reset_cursor=True starts there)", self.name, stored, self.start_cursor)
        cursor = stored if stored is not None else self.start_cursor
        self.stats.committed_cursor = stored
        self._runner.start(cursor)
        self._feed = Feed(self.source, cursor=cursor, stats=self.stats, silence_timeout=self.silence_timeout,
                          backoff_max=self.backoff_max, max_frame_bytes=self.max_frame_bytes)
        logger.info("stream consumer %s on %s: starting from cursor %s", self.name, self.source.key, cursor)
        self._running = True
        committer = asyncio.create_task(self._committer())
        graceful = False
        try:
            async with contextlib.aclosing(self._feed.__aiter__()) as events:
                async for event in events:
                    await self._admit(event)
                    if self._stopping:
                        break
            graceful = True
        finally:
            if graceful:
                await self._runner.drain()
            else:
                await self._runner.cancel()
            # never cancel a commit: a cancelled COMMIT may still have committed
            self._closing = True
            self._runner.commit_wanted.set()
            try:
                await committer
                await self._commit()
            finally:
                self._running = self._stopping = self._closing = False  # ready to run again
                self._feed = None
            logger.info("stream consumer %s stopped: %s", self.name, self.stats.summary())

    async def _run_group(self, store: Store, group: str) -> None:
        if self._reset:
            raise StreamError("reset_cursor does not apply to a consumer group on PostgreSQL: its resume point is "
                              "its partitions' watermarks")
        # imported here: the group engine builds on this package's modules (feed, runner, rev guard)
        from .._group.leader import IngestSettings
        from .._group.partition import PartitionSettings
        from .._group.worker import GroupSettings, GroupWorker

        worker = self._group_worker = GroupWorker(
            store, self.source, group=group, name=self.name or "", partitions=self._partitions,
            handle=self._handle_with, admit=self._filters_apply, stats=self.stats,
            settings=GroupSettings(heartbeat=self.heartbeat_interval, lease=self.lease_duration,
                                   log_interval=self.log_interval),
            ingest=IngestSettings(start_cursor=self.start_cursor, max_backlog=self.max_backlog,
                                  silence_timeout=self.silence_timeout, backoff_max=self.backoff_max,
                                  max_frame_bytes=self.max_frame_bytes),
            partition_settings=PartitionSettings(concurrency=self.concurrency, max_pending=self.max_pending,
                                                 commit_every=self.commit_every, commit_interval=self.commit_interval))
        self._running = True
        try:
            if self._stopping:
                return
            await worker.run()
        finally:
            self._running = self._stopping = False  # ready to run again
            logger.info("group worker %s of %s stopped: %s", self.name, group, self.stats.summary())

    def _filters_apply(self, event: StreamEvent) -> StreamEvent | None:
        return self._filters.apply(event)

    async def stop(self) -> None:
        """Stop reading; ``run()`` then finishes the events already read, commits and returns (a group
        worker finishes the handlers running now: the partition's next owner runs the events it read
        but did not start)."""
        self._stopping = True
        if self._group_worker is not None:
            await self._group_worker.stop()
        if self._feed is not None:
            await self._feed.aclose()

    # ---------------------------------------------------------------- admission and handling
    async def _admit(self, event: StreamEvent) -> None:
        self.stats.events += 1
        runner = self._runner
        if runner.pending >= runner.max_pending:
            await runner.wait_for_space()
        wanted = self._filters.apply(event)
        if wanted is None:
            self.stats.filtered += 1
        runner.add(event.cursor, wanted)

    async def _handle(self, event: StreamEvent, entry: Entry) -> None:
        await self._handle_with(event, entry, self.revs)

    async def _handle_with(self, event: StreamEvent, entry: Entry, revs: RevGuard) -> None:
        try:
            verifier = self.verifier
            key = None
            if isinstance(event, (CommitEvent, SyncEvent)):
                if verifier is not None and not await verifier.check(event):
                    self.stats.bad_signatures += 1
                    if verifier.policy == "drop":
                        return
                if event.rev:
                    if not await revs.admit(event.did, event.rev, self._strict_revs):
                        self.stats.stale_revs += 1
                        logger.debug("stream consumer %s: skipping %s of %s at rev %s (cursor %s): that rev is "
                                     "applied", self.name, type(event).__name__, event.did, event.rev, event.cursor)
                        return
                    key = (event.did, event.rev, self._strict_revs)
            await self.handler(event, EventContext(entry, self.cursor_store.durable, key))
        except Exception:
            self.stats.handler_errors += 1
            logger.exception("stream consumer %s: handler failed on %s %s (cursor %s); counted as handled",
                             self.name, type(event).__name__, event.did, event.cursor)
        self.stats.handled += 1
        self.stats.last_event = event

    # ---------------------------------------------------------------- committing
    async def _committer(self) -> None:
        next_log = time.monotonic() + self.log_interval
        commit_wanted = self._runner.commit_wanted
        while not self._closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(commit_wanted.wait(), self.commit_interval)
            commit_wanted.clear()
            try:
                await self._commit()
            except (StorageError, StreamError) as exc:
                logger.warning("stream consumer %s: cursor commit failed, retrying: %s", self.name, exc)
            self.stats.mark()
            if time.monotonic() >= next_log:
                next_log = time.monotonic() + self.log_interval
                logger.info("stream consumer %s: %s", self.name, self.stats.summary())

    async def _commit(self) -> None:
        runner = self._runner
        cursor, passed, callbacks = runner.take()
        if passed == 0:
            return
        if cursor is not None:
            skipped = 0

            async def guarded(session: AsyncSession) -> None:
                nonlocal skipped
                skipped = await apply(session, self._key or "", callbacks)

            try:
                await self.cursor_store.save(self._key or "", self.source.key, cursor, [guarded] if callbacks else [])
            except StorageError:
                runner.give_back(passed, callbacks)
                raise
            except Exception as exc:
                runner.give_back(passed, callbacks)
                raise StreamError(f"on_commit work failed ({exc!r}): the cursor stays at {self.stats.committed_cursor} "
                                  "and the work runs again with the next commit") from exc
            self.stats.stale_revs += skipped
        self.stats.committed_cursor = cursor
        self.stats.commits += 1
        runner.committed(passed)
