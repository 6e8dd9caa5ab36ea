"""The call's deadline: every attempt, back-off sleep and token refresh of one call fits in it.

``CallDeadline`` runs a call through the pipeline under one timer for the whole call (the client's
``deadline=``, or ``context.deadline``); the retry layer reads ``context.expires_at`` and does
not start a back-off sleep that would pass it. A bound for each attempt is a separate option
(``attempt_deadline=``), enforced by the transports.
"""

from __future__ import annotations

import asyncio
import math
import sys
from types import TracebackType

from ._exceptions import RequestTimeout
from ._request import AUTH, XrpcRequest

UPLOAD_BYTES_PER_SECOND = 100_000
"""A request body extends a deadline by a second per this many bytes (a slow uplink still finishes)."""


def call_seconds(request: XrpcRequest, default: float) -> float | None:
    """Seconds for the whole call (None: no deadline): ``context.deadline`` or ``default``, plus
    the body's upload time."""
    ctx = request.context
    seconds = default if ctx.deadline is None else ctx.deadline
    if math.isinf(seconds):
        return None
    return with_upload_time(seconds, request)


def with_upload_time(seconds: float, request: XrpcRequest) -> float:
    """``seconds`` plus a second per ``UPLOAD_BYTES_PER_SECOND`` of the request's body."""
    body = request.content
    if body is None and not request.context.upload_size:
        return seconds
    size = len(body) if isinstance(body, bytes) else request.context.upload_size
    return seconds + size / UPLOAD_BYTES_PER_SECOND


class CallDeadline:
    """``with CallDeadline(request, seconds):`` (in a task) cancels the block after ``seconds``
    (None: never) and raises ``RequestTimeout`` naming the call instead; sets
    ``request.context.expires_at``.

    ``asyncio.timeout``'s logic (also on Python 3.10), as a plain context manager: one object and
    one timer per call, no coroutine.
    """

    __slots__ = ("_cancelling", "_expired", "_handle", "_paused_at", "_request", "_seconds", "_task")

    def __init__(self, request: XrpcRequest, seconds: float | None) -> None:
        self._request = request
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    def __enter__(self) -> None:
        if self._seconds is None:
            return
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task under asyncio
            raise RuntimeError("CallDeadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling() if sys.version_info >= (3, 11) else 0
        loop = asyncio.get_running_loop()
        expires = self._request.context.expires_at = loop.time() + self._seconds
        self._handle = loop.call_at(expires, self._expire)
        self._request.context.deadline_scope = self

    def pause(self) -> None:
        """Stop the clock (a deliberate client-side wait starts)."""
        if self._handle is not None and not self._expired:
            self._handle.cancel()
            self._paused_at = asyncio.get_running_loop().time()

    def resume(self) -> None:
        """Restart the clock, the deadline moved by the time paused."""
        if self._handle is None or self._expired or not self._handle.cancelled():
            return
        loop = asyncio.get_running_loop()
        ctx = self._request.context
        expires = ctx.expires_at = (ctx.expires_at or 0.0) + loop.time() - self._paused_at
        self._handle = loop.call_at(expires, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._handle is None:
            return
        self._handle.cancel()
        if not self._expired or exc_type is not asyncio.CancelledError:
            return
        if sys.version_info >= (3, 11) and self._task.uncancel() > self._cancelling:
            return  # cancelled from outside too: that cancellation goes on
        raise deadline_passed(self._request, self._seconds) from exc  # type: ignore[arg-type]


class NotCounted:
    """``with NotCounted(request):`` around a deliberate client-side wait (the write budget's
    ``on_budget_exhausted="wait"``, the request limiter): the call's deadline stands still meanwhile.
    The deadline bounds what the servers make a call wait, not what the caller asked to wait for."""

    __slots__ = ("_scope",)

    def __init__(self, request: XrpcRequest) -> None:
        self._scope: CallDeadline | None = request.context.deadline_scope

    def __enter__(self) -> None:
        if self._scope is not None:
            self._scope.pause()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._scope is not None:
            self._scope.resume()


def deadline_passed(request: XrpcRequest, seconds: float) -> RequestTimeout:
    """The error for a call that did not finish within its deadline."""
    ctx = request.context
    attempts = ctx.attempt
    tried = (f"{attempts} attempt{'s' if attempts != 1 else ''}" if attempts > 1 or ctx.sent
             else "held before its first attempt was sent")
    return RequestTimeout(
        f"{request.nsid} to {host_of(request)} did not finish within its {seconds:g} s deadline ({tried}; the "
        "server is slow or trickling its answer): retry later, or raise the client's deadline= (PYSKY_DEADLINE)")


def host_of(request: XrpcRequest) -> str:
    """Where the call went: the scheme and host of its last attempt's URL (``request.host`` is
    ``"auth"`` until the session middleware has chosen the account's PDS)."""
    url = request.context.url
    if url is not None:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return "the account's PDS" if request.host == AUTH else request.host
