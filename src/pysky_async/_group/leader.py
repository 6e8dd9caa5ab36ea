"""The ingest: the worker that holds a log's advisory lock reads the source and appends to the log.

The lock (``pg_try_advisory_lock``, keyed by the log's source) is held on a dedicated connection
kept open; each leader begins a new term and resumes at the stored upstream cursor. Reading
stops while the backlog above the slowest group watermark exceeds ``max_backlog``; events every
group passed are trimmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
import libipld
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .._storage.repositories import advisory_key
from .._storage.store import Store, is_database_error
from .._streams.connection import Feed, Source
from .._streams.events import StreamEvent
from .._streams.firehose import FirehoseSource
from .._streams.stats import StreamStats
from . import log as group_log
from .log import Appended, Deposed, LogWriter
from .registry import LogInfo

logger = logging.getLogger("pysky_async.streams")


def lock_key(source: str) -> int:
    """The advisory lock key of the ingest of ``source``'s log."""
    return advisory_key(f"pysky_async:group-ingest:{source}")


_KINDS = frozenset({"#commit", "#sync", "#identity", "#account"})


def _light(message: bytes | str) -> StreamEvent | None:
    """A firehose event's seq, DID and time without decoding its records (the workers decode it all);
    None for anything else."""
    if not isinstance(message, bytes):
        return None
    try:
        parts = libipld.decode_dag_cbor_multi(message)
    except (ValueError, TypeError):
        return None
    if len(parts) != 2 or not isinstance(parts[0], dict) or not isinstance(parts[1], dict):
        return None
    header, body = parts
    if header.get("op") != 1 or header.get("t") not in _KINDS:
        return None
    seq, did, when = body.get("seq"), body.get("repo") or body.get("did"), body.get("time")
    if not isinstance(seq, int) or not isinstance(did, str) or not isinstance(when, str):
        return None
    return StreamEvent(seq, did, when)


class _Capture:
    """A source that keeps the raw message of the event it decoded last (the log stores it)."""

    def __init__(self, source: Source) -> None:
        self.inner = source
        self.key = source.key
        self.monotonic = source.monotonic
        self.raw: bytes | str = b""
        self._firehose = isinstance(source, FirehoseSource)

    def urls(self, cursor: int | None) -> list[str]:
        return self.inner.urls(cursor)

    def decode(self, message: bytes | str) -> StreamEvent:
        event = _light(message) if self._firehose else None
        if event is None:  # not a plain firehose event: the source decides (errors, #info, Jetstream)
            event = self.inner.decode(message)
        self.raw = message
        return event

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        await self.inner.on_open(ws)

    async def update_filters(self, ws: aiohttp.ClientWebSocketResponse[bool] | None, *,
                             collections: Iterable[str] | None, dids: Iterable[str] | None) -> None:
        await self.inner.update_filters(ws, collections=collections, dids=dids)


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """How the leader reads and appends."""

    start_cursor: int | None = None
    batch: int = 500
    linger: float = 0.05
    max_backlog: int = 100_000
    check_interval: float = 1.0
    silence_timeout: float = 60.0
    backoff_max: float = 30.0
    max_frame_bytes: int = 5 * 1024 * 1024


class Leader:
    """Tries for the ingest lock of ``log`` every ``retry`` seconds and ingests while it holds it."""

    def __init__(self, store: Store, log: LogInfo, source: Source, name: str, settings: IngestSettings, *,
                 stats: StreamStats, retry: float) -> None:
        self.store = store
        self.log = log
        self.source = source
        self.name = name
        self.settings = settings
        self.stats = stats
        self.retry = retry
        self.is_leader = False
        self.appended = 0
        self._stopping = asyncio.Event()
        self._feed: Feed | None = None

    async def stop(self) -> None:
        """Stop ingesting (the events read so far are appended first) and release the lock."""
        self._stopping.set()
        if self._feed is not None:
            await self._feed.aclose()

    async def run(self) -> None:
        """Until ``stop()``: take the lock when free and ingest while holding it."""
        while not self._stopping.is_set():
            connection: AsyncConnection | None = None
            try:
                connection = await self.store.engine.connect()
                got = (await connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                {"key": lock_key(self.log.source)})).scalar_one()
                await connection.commit()
                if got:
                    await self._lead(connection)
            except Exception as exc:
                if not is_database_error(exc) and not isinstance(exc, Deposed):
                    raise
                logger.warning("group ingest of %s by %s stopped: %s; trying again", self.log.source, self.name, exc)
            finally:
                self.is_leader = False
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()  # a closed session releases its advisory lock
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.retry)

    async def _lead(self, connection: AsyncConnection) -> None:
        writer = LogWriter(self.store, self.log, self.name)
        stored = await writer.begin_term()
        cursor = stored if stored is not None else self.settings.start_cursor
        self.is_leader = True
        logger.info("group ingest of %s: %s leads (term %d), resuming at upstream cursor %s", self.log.source,
                    self.name, writer.term, cursor)
        capture = _Capture(self.source)
        s = self.settings
        feed = self._feed = Feed(capture, cursor=cursor, stats=self.stats, silence_timeout=s.silence_timeout,
                                 backoff_max=s.backoff_max, max_frame_bytes=s.max_frame_bytes)
        if self._stopping.is_set():
            return
        queue: asyncio.Queue[Appended | None] = asyncio.Queue(maxsize=s.batch * 4)

        async def read() -> None:
            try:
                async with contextlib.aclosing(feed.__aiter__()) as events:
                    async for event in events:
                        await queue.put(Appended(event.cursor, event.did, capture.raw))
            finally:
                await queue.put(None)

        reader = asyncio.create_task(read())
        try:
            await self._append(writer, queue, connection)
        finally:
            await feed.aclose()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self._feed = None

    async def _append(self, writer: LogWriter, queue: asyncio.Queue[Appended | None],
                      connection: AsyncConnection) -> None:
        s = self.settings
        next_check = next_backlog = 0.0
        backlog = 0
        ended = False
        while not ended:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + s.check_interval
                await connection.execute(text("SELECT 1"))  # the lock's connection is alive
                await connection.commit()
                await group_log.trim(self.store, self.log.id)
            # back-pressure: no more appends (so no more reading, once the queue is full) until the
            # slowest group's workers are within max_backlog of the log's head (checked before every
            # append once the backlog may be within half of the bound, else a few times a second)
            if now >= next_backlog or backlog >= s.max_backlog // 2:
                next_backlog = now + s.check_interval / 4
                while (backlog := await group_log.backlog(self.store, self.log.id)) >= s.max_backlog:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), s.check_interval / 4)
                    if self._stopping.is_set():
                        break
            try:
                first = await asyncio.wait_for(queue.get(), s.check_interval)
            except asyncio.TimeoutError:
                continue
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + s.linger
            while len(batch) < s.batch:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if item is None:
                    ended = True
                    break
                batch.append(item)
            await writer.append(batch)
            self.appended += len(batch)
            backlog += len(batch)  # an upper bound until the next check (workers only lower it)
