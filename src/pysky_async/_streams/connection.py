"""One websocket feed that stays connected: back-off with jitter, failover, silence detection."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .._exceptions import FrameDecodeError, StreamError, StreamServerError
from .events import InfoEvent, StreamEvent
from .stats import StreamStats

logger = logging.getLogger("pysky_async.streams")



def websocket_base(service: str) -> str:
    """``service`` (a host, or an http(s)/ws(s) URL) as the ws(s) base URL its XRPC streams live under."""
    parts = urlsplit(service if "://" in service else f"https://{service}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class Source(Protocol):
    """What a feed needs from a stream: where to connect and how to decode a message."""

    key: str
    monotonic: bool

    def urls(self, cursor: int | None) -> list[str]: ...

    def decode(self, message: bytes | str) -> StreamEvent: ...

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None: ...

    async def update_filters(self, ws: aiohttp.ClientWebSocketResponse[bool] | None, *,
                             collections: Iterable[str] | None, dids: Iterable[str] | None) -> None: ...


CLOSE_TIMEOUT = 1.0
"""Seconds a close waits for the server's close frame: a live server answers in milliseconds, a
silent one never does (aiohttp's own default, 10 s, held a silent connection that long)."""
OVERSIZE_ATTEMPTS = 3
"""Connections a too-big message may cost at one cursor where it cannot be skipped (Jetstream)."""


class Feed:
    """Decoded events from ``source``, reconnecting after errors until ``close()``.

    Args:
        source: a ``FirehoseSource`` or ``JetstreamSource``.
        cursor: where to start (None: live tail); advanced as events arrive, so a reconnect
            resumes after the last event read.
        silence_timeout: a connection with no frame for this many seconds is replaced (at once:
            the close does not wait for a silent server's answer).
        backoff_base / backoff_max: reconnect delays grow from base to max (full jitter).
        max_frame_bytes: larger frames are counted as bad and skipped; the socket reads frames
            up to 4 times that size, and one above it costs the connection: on the firehose the
            reconnect skips its seq (logged as lost, counted in ``stats.lost_frames``, the seq
            kept in ``stats.lost_cursors``); on Jetstream, where a cursor cannot step over one message,
            the feed stops with a ``StreamError`` after ``OVERSIZE_ATTEMPTS`` tries.

    Raises (from iterating):
        StreamServerError: the server sent the error frame ``FutureCursor`` (the cursor is ahead
            of the server's history: reconnecting cannot help). Other error frames
            (``ConsumerTooSlow``, unknown ones) are logged with their name and message, counted in
            ``stats.error_frames``, and the feed reconnects with back-off.
        StreamError: a message above the socket's limit that cannot be skipped (see above).
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
        self._outcome: Literal["error", "skipped"] | None = None
        self._oversize: tuple[int | None, int] = (None, 0)

    @property
    def socket_limit(self) -> int:
        """The largest message the socket reads (4 × ``max_frame_bytes``)."""
        return self.max_frame_bytes * 4

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
                self._outcome = None
                try:
                    async for event in self._connection(session, url):
                        received = True
                        yield event
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                    logger.warning("stream %s: connection failed (%s: %s), reconnecting", url.split("?")[0],
                                   type(exc).__name__, exc)
                if self._closed:
                    break
                # an error frame backs off further each time, even after events; a skipped frame does not
                failures = 0 if self._outcome == "skipped" or (received and self._outcome is None) else failures + 1
                if failures:
                    self._instance += 1  # fail over to the next instance, if there is one
                self.stats.reconnects += 1
                await asyncio.sleep(self._backoff(max(failures, 1)))

    async def _connection(self, session: aiohttp.ClientSession, url: str) -> AsyncIterator[StreamEvent]:
        # aiohttp makes ClientWSTimeout a dataclass through a decorator chosen at import time, which
        # pyright cannot follow (mypy can)
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT)  # pyright: ignore[reportCallIssue]
        async with session.ws_connect(url, max_msg_size=self.socket_limit, autoping=True, heartbeat=None,
                                      timeout=timeout) as ws:
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
                        try:
                            event = self._decode(message.data)
                        except StreamServerError as exc:
                            self._server_error(exc, url)
                            return
                        if event is not None:
                            yield event
                    elif message.type == aiohttp.WSMsgType.ERROR:
                        self.stats.bad_frames += 1
                        if (isinstance(message.data, aiohttp.WebSocketError)
                                and message.data.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG):
                            self._skip_oversize(url)
                        else:
                            logger.warning("stream %s: bad frame: %r", url.split("?")[0], message.data)
                        return
                    elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                          aiohttp.WSMsgType.CLOSED):
                        return
            finally:
                self.ws = None
                self._waiting_since = None
                watchdog.cancel()

    def _server_error(self, exc: StreamServerError, url: str) -> None:
        """An error frame: FutureCursor ends the feed, any other costs a reconnect with back-off."""
        self.stats.error_frames += 1
        where = url.split("?")[0]
        if exc.error == "FutureCursor":
            raise StreamServerError(
                f"{where} refused cursor {self.cursor}: FutureCursor ({exc.server_message or 'no message'}). The "
                "server has not reached that seq, so the cursor was saved on another server or before this one's "
                "history was reset; reconnecting cannot help. Start over: reset the consumer's cursor "
                "(reset_cursor=True, or --reset-cursor on the command line) to start at start_cursor "
                "(None: the live tail)", error=exc.error, server_message=exc.server_message) from exc
        logger.warning("stream %s: the server sent error %s (%s) and closes; reconnecting from cursor %s with "
                       "back-off", where, exc.error, exc.server_message, self.cursor)
        self._outcome = "error"

    def _skip_oversize(self, url: str) -> None:
        """A message above ``socket_limit`` cost the connection: step the cursor over it, or give up."""
        where = url.split("?")[0]
        if self.source.monotonic:
            lost = None if self.cursor is None else self.cursor + 1
            self.stats.lost_frames += 1
            logger.error("stream %s: the frame after cursor %s is larger than the socket's limit of %d bytes "
                         "(4 x max_frame_bytes=%d); skipped: its events are lost (%s)", where, self.cursor,
                         self.socket_limit, self.max_frame_bytes,
                         "the live tail moved on" if lost is None else f"reconnecting after seq {lost}")
            if lost is not None:
                self.stats.lost_cursors.append(lost)
                self.cursor = lost
            self._outcome = "skipped"
            return
        cursor, attempts = self._oversize
        attempts = attempts + 1 if cursor == self.cursor else 1
        self._oversize = (self.cursor, attempts)
        logger.error("stream %s: a message after cursor %s is larger than the socket's limit of %d bytes "
                     "(4 x max_frame_bytes=%d), attempt %d of %d", where, self.cursor, self.socket_limit,
                     self.max_frame_bytes, attempts, OVERSIZE_ATTEMPTS)
        if attempts >= OVERSIZE_ATTEMPTS:
            raise StreamError(f"{where} sent a message larger than the socket's limit of {self.socket_limit} bytes "
                              f"after cursor {self.cursor} on {attempts} connections in a row, and this source "
                              f"cannot step over one message: raise max_frame_bytes (now {self.max_frame_bytes})")

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
