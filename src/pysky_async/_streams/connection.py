"""One websocket feed that stays connected: back-off with jitter, failover, silence detection."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Protocol

import aiohttp

from .._exceptions import FrameDecodeError
from .events import InfoEvent, StreamEvent
from .stats import StreamStats

logger = logging.getLogger("pysky_async.streams")


class Source(Protocol):
    """What a feed needs from a stream: where to connect and how to decode a message."""

    key: str
    monotonic: bool

    def urls(self, cursor: int | None) -> list[str]: ...

    def decode(self, message: bytes | str) -> StreamEvent: ...

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None: ...

    async def update_filters(self, ws: aiohttp.ClientWebSocketResponse[bool] | None, *,
                             collections: Iterable[str] | None, dids: Iterable[str] | None) -> None: ...


class Feed:
    """Decoded events from ``source``, reconnecting after errors until ``close()``.

    Args:
        source: a ``FirehoseSource`` or ``JetstreamSource``.
        cursor: where to start (None: live tail); advanced as events arrive, so a reconnect
            resumes after the last event read.
        silence_timeout: a connection with no frame for this many seconds is replaced.
        backoff_base / backoff_max: reconnect delays grow from base to max (full jitter).
        max_frame_bytes: larger frames are counted as bad and skipped.
    """

    def __init__(self, source: Source, *, cursor: int | None = None, stats: StreamStats | None = None,
                 silence_timeout: float = 60.0, backoff_base: float = 0.5, backoff_max: float = 30.0,
                 max_frame_bytes: int = 5 * 1024 * 1024) -> None:
        self.source = source
        self.cursor = cursor
        self.stats = stats or StreamStats()
        self.silence_timeout = silence_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_frame_bytes = max_frame_bytes
        self.ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._closed = False
        self._instance = 0
        self._waiting_since: float | None = None

    async def aclose(self) -> None:
        """Stop reading: the socket is closed and the iterator ends."""
        self._closed = True
        if self.ws is not None:
            await self.ws.close()

    def _backoff(self, failures: int) -> float:
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (failures - 1)))

    async def __aiter__(self) -> AsyncGenerator[StreamEvent, None]:
        failures = 0
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._closed:
                urls = self.source.urls(self.cursor)
                url = urls[self._instance % len(urls)]
                received = False
                try:
                    async for event in self._connection(session, url):
                        received = True
                        yield event
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                    logger.warning("stream %s: connection failed (%s: %s), reconnecting", url.split("?")[0],
                                   type(exc).__name__, exc)
                if self._closed:
                    break
                failures = 0 if received else failures + 1
                if failures:
                    self._instance += 1  # fail over to the next instance, if there is one
                self.stats.reconnects += 1
                await asyncio.sleep(self._backoff(max(failures, 1)))

    async def _connection(self, session: aiohttp.ClientSession, url: str) -> AsyncIterator[StreamEvent]:
        async with session.ws_connect(url, max_msg_size=max(self.max_frame_bytes * 4, 16 * 1024 * 1024),
                                      autoping=True, heartbeat=None) as ws:
            self.ws = ws
            self.stats.connects += 1
            logger.info("stream %s: connected", url.split("?")[0])
            loop = asyncio.get_running_loop()
            # one watchdog per connection instead of a timeout per receive (15% of the CPU at 30k/s);
            # it counts only time spent waiting for the server, not time the consumer held reading back
            watchdog = asyncio.create_task(self._watch(ws, url))
            await self.source.on_open(ws)
            try:
                while not self._closed:
                    self._waiting_since = loop.time()
                    message = await ws.receive()
                    self._waiting_since = None
                    if message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                        event = self._decode(message.data)
                        if event is not None:
                            yield event
                    elif message.type == aiohttp.WSMsgType.ERROR:
                        self.stats.bad_frames += 1
                        logger.warning("stream %s: bad frame: %r", url.split("?")[0], message.data)
                        return
                    elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                          aiohttp.WSMsgType.CLOSED):
                        return
            finally:
                self.ws = None
                self._waiting_since = None
                watchdog.cancel()

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse[bool], url: str) -> None:
        """Close ``ws`` once no frame arrived for ``silence_timeout`` seconds."""
        loop = asyncio.get_running_loop()
        while not ws.closed:
            since = self._waiting_since
            idle = 0.0 if since is None else loop.time() - since
            if idle >= self.silence_timeout:
                self.stats.silent_reconnects += 1
                logger.warning("stream %s: silent for %.0f s, reconnecting", url.split("?")[0], idle)
                await ws.close()
                return
            await asyncio.sleep(self.silence_timeout - idle)

    def _decode(self, data: bytes | str) -> StreamEvent | None:
        self.stats.frames += 1
        if len(data) > self.max_frame_bytes:
            self.stats.bad_frames += 1
            logger.warning("stream: frame of %d bytes over max_frame_bytes=%d skipped (cursor %s)",
                           len(data), self.max_frame_bytes, self.cursor)
            return None
        try:
            event = self.source.decode(data)
        except FrameDecodeError as exc:
            self.stats.bad_frames += 1
            logger.warning("stream: undecodable frame after cursor %s skipped: %s", self.cursor, exc)
            return None
        if event.cursor is not None:
            if self.source.monotonic and self.cursor is not None and event.cursor <= self.cursor:
                return None  # already read before a reconnect
            self.cursor = event.cursor
        elif isinstance(event, InfoEvent):
            logger.warning("stream: server info %s: %s", event.name, event.message)
        return event
