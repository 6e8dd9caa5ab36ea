"""The call's deadline: every attempt, back-off sleep and token refresh of one call fits in it.

``run_within`` runs a call through the pipeline under one timer for the whole call (the client's
``deadline=``, or ``context.deadline``); the retry layer reads ``context.expires_at`` and does
not start a back-off sleep that would pass it. A bound for each attempt is a separate option
(``attempt_deadline=``), enforced by the transports.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Awaitable, Callable

from ._exceptions import RequestTimeout
from ._request import AUTH, XrpcRequest
from ._response import XrpcResponse

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


async def run_within(handler: Callable[[XrpcRequest], Awaitable[XrpcResponse]], request: XrpcRequest,
                     seconds: float) -> XrpcResponse:
    """``await handler(request)``, cancelled after ``seconds`` (``RequestTimeout`` naming the call)."""
    loop = asyncio.get_running_loop()
    expires = loop.time() + seconds
    request.context.expires_at = expires
    if sys.version_info >= (3, 11):
        scope = asyncio.timeout_at(expires)
        try:
            async with scope:
                return await handler(request)
        except TimeoutError as exc:
            if not scope.expired():
                raise
            raise deadline_passed(request, seconds) from exc
    try:  # pragma: no cover - Python 3.10
        return await asyncio.wait_for(handler(request), seconds)
    except asyncio.TimeoutError as exc:  # pragma: no cover
        raise deadline_passed(request, seconds) from exc


def deadline_passed(request: XrpcRequest, seconds: float) -> RequestTimeout:
    """The error for a call that did not finish within its deadline."""
    attempts = request.context.attempt
    tried = (f"{attempts} attempt{'s' if attempts != 1 else ''}" if attempts
             else "waiting before its first attempt was sent")
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
