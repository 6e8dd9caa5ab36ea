"""The call log: one ``bsky_api_call_log`` row per call attempt, written behind the caller.

Rows are queued in memory and inserted in batches (one INSERT per flush) by a background
task, so no call waits on the database — except an error, which is flushed before it is
raised so that it can carry its row id. ``aclose()`` flushes what is left; so does a
cancelled call's client when it is closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import PyskyError, StorageError
from ._middleware import CALL_LOG, Handler
from ._redact import redact, redact_text
from ._request import XrpcRequest
from ._response import XrpcResponse

if TYPE_CHECKING:  # the storage modules load SQLAlchemy: imported where used, not at import
    from ._storage.store import Store

logger = logging.getLogger("pysky_async")

_MAX_TEXT = 4000
T = TypeVar("T")


class CallLogWriter:
    """A write-behind queue of call-log rows, flushed every ``interval`` s or ``batch_size`` rows
    with one executemany INSERT per flush.

    While the database is unreachable rows stay queued and the flush is retried every
    ``retry_interval`` s; past ``max_pending`` queued rows the oldest are dropped, counted in
    ``rows_dropped`` and the count is logged. A write that has started finishes even if its
    caller is cancelled, so no row is lost or written twice.
    """

    def __init__(self, store: Store, *, batch_size: int = 500, interval: float = 0.25,
                 max_pending: int = 100_000, retry_interval: float = 1.0) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self.retry_interval = retry_interval
        self._pending: list[dict[str, Any]] = []
        self._flush_lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flush_scheduled = False
        self._failing = False
        self._told_level = logging.DEBUG
        self._dropped_at_last_write = 0
        self._closed = False
        self._store_checked = False
        self._in_flight = 0
        self.rows_added = 0
        self.rows_dropped = 0

    def add(self, row: dict[str, Any]) -> None:
        """Queue a row; it is written within ``interval`` seconds (while the database is up)."""
        self._pending.append(row)
        self.rows_added += 1
        self._drop_overflow()
        if self._flush_scheduled or self._failing:
            return
        if len(self._pending) >= self.batch_size:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._start_flush)

    async def add_and_flush(self, row: dict[str, Any]) -> int:
        """Write the queued rows and then ``row`` now; returns ``row``'s id."""
        from ._storage.shield import finish

        self.rows_added += 1
        return await finish(self._track(self._write(row)))

    def _drop_overflow(self) -> None:
        excess = len(self._pending) - self.max_pending
        if excess > 0:
            del self._pending[:excess]
            self.rows_dropped += excess
            if self.rows_dropped == excess or self.rows_dropped % self.max_pending < excess:
                logger.error("call log: %d rows lost so far (the oldest were dropped: more than max_pending=%d "
                             "rows were waiting for the database)", self.rows_dropped, self.max_pending)

    def _track(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush_scheduled = True
        self._track(self._flush_quietly())

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # a background task must never die with its error unseen
            self._retry_later(exc)

    def _retry_later(self, exc: Exception) -> None:
        if not self._failing:
            # the store has told an outage or a deleted file once; anything else is told here
            level = self._told_level = logging.DEBUG if self.store.health.reported else logging.WARNING
            logger.log(level, "call log: could not write %d rows (kept in memory, up to max_pending=%d, and "
                       "retried every %g s): %s", len(self._pending), self.max_pending, self.retry_interval, exc)
            self._failing = True
        if self._timer is None and not self._flush_scheduled and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(self.retry_interval, self._start_flush)

    async def flush(self) -> None:
        """Write every queued row now. On failure the rows stay queued and StorageError is raised."""
        from ._storage.shield import finish

        await finish(self._track(self._write(None)))

    async def _write(self, last: dict[str, Any] | None) -> int:
        from ._storage.repositories import CallLogRepository

        async with self._flush_lock:
            self._flush_scheduled = False
            batch, self._pending = self._pending, []
            if not batch and last is None:  # e.g. a timed flush that an explicit one already did
                return 0
            self._in_flight = len(batch)
            try:
                async with self.store.core_transaction() as db:
                    repo = CallLogRepository(db)
                    await repo.add_many(batch)
                    row_id = await repo.add(last) if last is not None else 0
            except BaseException as exc:
                self._in_flight = 0
                self._pending[:0] = batch if last is None else [*batch, last]
                self._drop_overflow()
                if isinstance(exc, Exception):
                    self._retry_later(exc)
                raise
            self._in_flight = 0
            lost, self._dropped_at_last_write = self.rows_dropped - self._dropped_at_last_write, self.rows_dropped
            if self._failing:
                self._failing = False
                # the store tells an outage's end itself; rows dropped meanwhile are worth a warning
                level = logging.WARNING if lost else logging.INFO if self._told_level > logging.DEBUG else logging.DEBUG
                logger.log(level, "call log: writing again; %d queued rows written, %d dropped (lost) meanwhile",
                           len(batch), lost)
            return row_id

    async def ready(self) -> None:
        """Before the first call: a database without our tables (or an older schema, with
        ``auto_migrate`` off) raises StorageError, so no call goes out whose row could never be
        stored. An unreachable database lets calls go on: their rows wait here for it."""
        if self._store_checked:
            return
        try:
            await self.store.ensure_ready()
        except StorageError:
            if self.store.needs_upgrade:
                raise
        self._store_checked = True

    @property
    def pending(self) -> int:
        """Rows not stored yet: queued, or in a write that has not committed."""
        return len(self._pending) + self._in_flight

    async def aclose(self) -> None:
        """Flush everything (waiting for flushes already running); no retries after this.
        If the database is still unreachable, StorageError is raised and the rows are lost."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.flush()
        except StorageError:
            logger.error("call log: %d rows could not be written before closing and are lost", len(self._pending))
            raise


class CallLogMiddleware:
    """Records every attempt that passes through it — response, error or cancellation.

    Args:
        writer: the queue rows go to.
        flush_errors: write an error's row before returning/raising it, so it carries
            ``log_id`` (a call can turn this off with ``context.log_errors_at_once``).
    """

    name = CALL_LOG

    def __init__(self, writer: CallLogWriter, *, flush_errors: bool = True) -> None:
        self.writer = writer
        self.flush_errors = flush_errors

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        await self.writer.ready()
        timestamp = dt.datetime.now(dt.timezone.utc)
        started = time.perf_counter_ns()
        try:
            response = await call_next(request)
        except BaseException as exc:
            row = _row(request, timestamp, started, None, exc)
            if isinstance(exc, PyskyError) and self.flush_errors and request.context.log_errors_at_once:
                exc.log_id = await self._write_now(row)
                _log_error(exc)
            else:
                self.writer.add(row)
            raise
        row = _row(request, timestamp, started, response, None)
        if response.is_error and self.flush_errors and request.context.log_errors_at_once:
            response.log_id = await self._write_now(row)
        else:
            self.writer.add(row)
        return response

    async def _write_now(self, row: dict[str, Any]) -> int | None:
        try:
            return await self.writer.add_and_flush(row)
        except StorageError as exc:  # the row stays queued: nothing is lost
            logger.debug("the call log row of a failed call waits in memory: %s", exc)
            return None


def _log_error(exc: PyskyError) -> None:
    if exc.log_id is not None:
        logger.debug("%s: %s; see SELECT * FROM bsky_api_call_log WHERE id = %d",
                    type(exc).__name__, redact_text(str(exc)), exc.log_id)


def _row(request: XrpcRequest, timestamp: dt.datetime, started: int,
         response: XrpcResponse | None, exc: BaseException | None) -> dict[str, Any]:
    duration = (time.perf_counter_ns() - started) // 1000
    request.context.elapsed_us = duration
    ctx = request.context
    url = ctx.url or (response.http.url if response is not None else None)
    row: dict[str, Any] = {
        "timestamp": timestamp,
        "hostname": _hostname(url) if url else (None if request.authenticated else _hostname(request.host)),
        "endpoint": request.nsid,
        "method": request.method,
        "request_did": ctx.did,
        "cursor_key": ctx.cursor_key,
        "cursor_passed": _text(ctx.cursor_passed or request.params.get("cursor")),
        "cursor_received": None,
        "http_status_code": None,
        "params": _params(request),
        "exception_class": None,
        "exception_text": None,
        "exception_response": None,
        "response_keys": None,
        "write_op_points_consumed": ctx.write_points,
        "session_was_refreshed": ctx.session_was_refreshed,
        "duration_microseconds": duration,
    }
    if response is not None:
        raw = response.raw
        row["http_status_code"] = response.http.status_code
        row["response_keys"] = ",".join(raw)[:_MAX_TEXT] if raw else None
        row["cursor_received"] = _text(raw.get("cursor"))
        if response.is_error:
            row["exception_class"] = raw.get("error") if isinstance(raw.get("error"), str) else "HTTPError"
            row["exception_text"] = _text(raw.get("message"))
            body = response.content[:_MAX_TEXT].decode("utf-8", "replace")
            row["exception_response"] = redact(raw) if raw else _text(body)
    if exc is not None:
        row["exception_class"] = type(exc).__name__
        row["exception_text"] = redact_text(str(exc))[:_MAX_TEXT] or None
    return row


def _hostname(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return redact_text(str(value))[:_MAX_TEXT]


def _params(request: XrpcRequest) -> Any:
    if request.params:
        return redact(dict(request.params))
    if isinstance(request.json, dict):
        body = redact(request.json)
        return body if len(str(body)) <= _MAX_TEXT else {"keys": sorted(body)}
    return None
