"""The stream consumer: filters, per-DID order, bounded in-flight work, a durable watermark cursor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

from .._exceptions import StorageError, StreamError
from .._storage.store import Store
from .._storage.stream_cursors import StreamCursorRepository
from .connection import Feed, Source
from .events import CommitEvent, StreamEvent, SyncEvent
from .firehose import FirehoseSource
from .stats import StreamStats
from .verify import SignatureVerifier
from .watermark import Entry, OnCommit, Watermark

logger = logging.getLogger("pysky_async.streams")


class EventContext:
    """Handed to a handler with each event."""

    __slots__ = ("_durable", "_entry")

    def __init__(self, entry: Entry, durable: bool) -> None:
        self._entry = entry
        self._durable = durable

    def on_commit(self, work: OnCommit) -> None:
        """Run ``work(session)`` inside the transaction that commits the cursor past this event.

        Database effects written there happen exactly once: they commit together with the
        cursor, or neither does and the event is handled again after a restart.
        """
        if not self._durable:
            raise StreamError("on_commit needs a durable consumer: pass store= and name= to StreamConsumer")
        if self._entry.callbacks is None:
            self._entry.callbacks = []
        self._entry.callbacks.append(work)


Handler = Callable[[StreamEvent, EventContext], Awaitable[None]]


class _Filters:
    def __init__(self, collections: Iterable[str] | None, dids: Iterable[str] | None) -> None:
        wanted = list(collections or ())
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

    At most ``max_pending`` events are read but not yet committed; when that many are pending
    the consumer stops reading the socket (back-pressure) instead of buffering. With ``store``
    and ``name`` the cursor is durable: it is committed every ``commit_every`` handled events or
    ``commit_interval`` seconds, and only up to the last event whose handlers finished, as are
    all events before it (at-least-once). A restart resumes there; a first run starts at
    ``start_cursor`` (None: the live tail).

    Args:
        source: ``FirehoseSource`` or ``JetstreamSource``.
        handler: ``async def handler(event, ctx)``; an exception is logged and counted, and the
            event counts as handled.
        collections / dids: only these reach the handler (``"app.bsky.feed.*"`` prefixes allowed;
            other operations of a commit are removed from it).
        concurrency: handlers running at once.
        verifier: a ``SignatureVerifier``: commit signatures are checked before the handler.
    """

    def __init__(self, source: Source, handler: Handler, *, store: Store | None = None, name: str | None = None,
                 collections: Iterable[str] | None = None, dids: Iterable[str] | None = None,
                 start_cursor: int | None = None, concurrency: int = 32, max_pending: int = 2000,
                 commit_every: int = 500, commit_interval: float = 1.0, log_interval: float = 30.0,
                 silence_timeout: float = 60.0, backoff_max: float = 30.0,
                 max_frame_bytes: int = 5 * 1024 * 1024, verifier: SignatureVerifier | None = None) -> None:
        if (store is None) != (name is None):
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
        self.start_cursor = start_cursor
        self.concurrency = concurrency
        self.max_pending = max_pending
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self.log_interval = log_interval
        self.stats = StreamStats()
        self.peak_pending = 0
        """The most events ever pending at once (never above ``max_pending``)."""
        self._filters = _Filters(collections, dids)
        self.silence_timeout = silence_timeout
        self.backoff_max = backoff_max
        self.max_frame_bytes = max_frame_bytes
        self._feed: Feed | None = None
        self._watermark = Watermark()
        self._pending = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._running = 0
        self._queues: dict[str, deque[tuple[StreamEvent, Entry]]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._space = asyncio.Event()
        self._waiting_for_space = False
        self._commit_wanted = asyncio.Event()
        self._stopping = False
        self._closing = False

    # ---------------------------------------------------------------- public state
    @property
    def pending(self) -> int:
        """Events read and not yet committed (queued, running or waiting for the watermark)."""
        return self._pending

    @property
    def running(self) -> int:
        """Handlers running now."""
        return self._running

    @property
    def cursor(self) -> int | None:
        """The last committed cursor."""
        return self.stats.committed_cursor

    async def update_filters(self, *, collections: Iterable[str] | None = None,
                             dids: Iterable[str] | None = None) -> None:
        """Replace the collection and DID filters for the events read from now on (on a live
        Jetstream connection the server's filters change too, with ``options_update``)."""
        collections, dids = list(collections or ()), list(dids or ())
        self._filters = _Filters(collections, dids)
        ws = self._feed.ws if self._feed is not None else None
        await self.source.update_filters(ws, collections=collections, dids=dids)

    # ---------------------------------------------------------------- running
    async def load_cursor(self) -> int | None:
        """The stored cursor of this consumer and source (None if never committed or not durable)."""
        if self.store is None or self.name is None:
            return None
        async with self.store.transaction() as session:
            return await StreamCursorRepository(session).get(self.name, self.source.key)

    async def run(self) -> None:
        """Consume until ``stop()``; then drain in-flight events and commit."""
        stored = await self.load_cursor()
        cursor = stored if stored is not None else self.start_cursor
        self.stats.committed_cursor = stored
        self._watermark = Watermark(cursor)
        self._feed = Feed(self.source, cursor=cursor, stats=self.stats, silence_timeout=self.silence_timeout,
                          backoff_max=self.backoff_max, max_frame_bytes=self.max_frame_bytes)
        logger.info("stream consumer %s on %s: starting from cursor %s", self.name, self.source.key, cursor)
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
                while self._workers:
                    await asyncio.gather(*self._workers)
            else:
                for task in self._workers:
                    task.cancel()
                await asyncio.gather(*self._workers, return_exceptions=True)
            # never cancel a commit: a cancelled COMMIT may still have committed
            self._closing = True
            self._commit_wanted.set()
            await committer
            await self._commit()
            logger.info("stream consumer %s stopped: %s", self.name, self.stats.summary())

    async def stop(self) -> None:
        """Stop reading; ``run()`` then finishes the events already read, commits and returns."""
        self._stopping = True
        if self._feed is not None:
            await self._feed.aclose()

    # ---------------------------------------------------------------- admission and handling
    async def _admit(self, event: StreamEvent) -> None:
        self.stats.events += 1
        while self._pending >= self.max_pending:
            self._waiting_for_space = True
            self._commit_wanted.set()
            self._space.clear()
            await self._space.wait()
        self._waiting_for_space = False
        self._pending += 1
        self.peak_pending = max(self.peak_pending, self._pending)
        entry = self._watermark.add(event.cursor)
        wanted = self._filters.apply(event)
        if wanted is None:
            self.stats.filtered += 1
            self._finish(entry)
            return
        queue = self._queues.get(wanted.did)
        if queue is None:
            queue = self._queues[wanted.did] = deque()
            task = asyncio.create_task(self._drain_did(wanted.did, queue))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        queue.append((wanted, entry))

    async def _drain_did(self, did: str, queue: deque[tuple[StreamEvent, Entry]]) -> None:
        try:
            while queue:
                event, entry = queue[0]
                async with self._slots:
                    self._running += 1
                    try:
                        await self._handle(event, entry)
                    finally:
                        self._running -= 1
                queue.popleft()
                self._finish(entry)
        finally:
            if self._queues.get(did) is queue:
                del self._queues[did]

    async def _handle(self, event: StreamEvent, entry: Entry) -> None:
        try:
            verifier = self.verifier
            if verifier is not None and isinstance(event, (CommitEvent, SyncEvent)) and not await verifier.check(event):
                self.stats.bad_signatures += 1
                if verifier.policy == "drop":
                    return
            await self.handler(event, EventContext(entry, self.store is not None))
        except Exception:
            self.stats.handler_errors += 1
            logger.exception("stream consumer %s: handler failed on %s %s (cursor %s); counted as handled",
                             self.name, type(event).__name__, event.did, event.cursor)
        self.stats.handled += 1
        self.stats.last_event = event

    def _finish(self, entry: Entry) -> None:
        self._watermark.finish(entry)
        if self._waiting_for_space or self._watermark.passed >= self.commit_every:
            self._commit_wanted.set()

    # ---------------------------------------------------------------- committing
    async def _committer(self) -> None:
        next_log = time.monotonic() + self.log_interval
        while not self._closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._commit_wanted.wait(), self.commit_interval)
            self._commit_wanted.clear()
            try:
                await self._commit()
            except (StorageError, StreamError) as exc:
                logger.warning("stream consumer %s: cursor commit failed, retrying: %s", self.name, exc)
            self.stats.mark()
            if time.monotonic() >= next_log:
                next_log = time.monotonic() + self.log_interval
                logger.info("stream consumer %s: %s", self.name, self.stats.summary())

    async def _commit(self) -> None:
        cursor, passed, callbacks = self._watermark.take()
        if passed == 0:
            return
        if self.store is not None and self.name is not None and cursor is not None:
            try:
                async with self.store.transaction() as session:
                    for work in callbacks:
                        await work(session)
                    await StreamCursorRepository(session).save(self.name, self.source.key, cursor)
            except StorageError:
                self._watermark.give_back(passed, callbacks)
                raise
            except Exception as exc:
                self._watermark.give_back(passed, callbacks)
                raise StreamError(f"on_commit work failed ({exc!r}): the cursor stays at {self.stats.committed_cursor} "
                                  "and the work runs again with the next commit") from exc
        self.stats.committed_cursor = cursor
        self.stats.commits += 1
        self._pending -= passed
        self._space.set()
