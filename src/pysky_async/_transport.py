"""The innermost handler: turns an XrpcRequest into one HTTP exchange, within bounds."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._deadline import with_upload_time
from ._exceptions import InvalidResponse, NetworkError, PyskyError, RequestTimeout, ResponseTooLarge
from ._network_errors import failure_reason, malformed_answer, without_request
from ._request import AUTH, XrpcRequest
from ._response import HttpInfo, XrpcResponse, decode_body


@dataclass(frozen=True)
class Bounds:
    """How long and how large one HTTP exchange (one attempt of a call) may be.

    Args:
        timeout: seconds to connect and to wait for each piece of the answer (None: the httpx client's).
        attempt_deadline: seconds for one attempt: connect, send, read every byte (None: only the
            whole call's deadline bounds it; see ``_deadline``).
        max_response_bytes: the largest answer read, counted after decompression.
    """

    timeout: float | None
    attempt_deadline: float | None
    max_response_bytes: int

    def __post_init__(self) -> None:
        if self.attempt_deadline is not None and math.isinf(self.attempt_deadline):
            object.__setattr__(self, "attempt_deadline", None)

    def attempt_deadline_for(self, request: XrpcRequest) -> float | None:
        """Seconds for one attempt of ``request`` (None: no bound), its body's upload time included."""
        if self.attempt_deadline is None:
            return None
        return with_upload_time(self.attempt_deadline, request)

    def max_bytes_for(self, request: XrpcRequest) -> int:
        limit = request.context.max_response_bytes
        return self.max_response_bytes if limit is None else limit


class HttpxTransport:
    """Sends requests with a shared ``httpx.AsyncClient``; error statuses are returned as values.

    ``request.content`` may be an async generator (a body streamed from disk); ``context.timeout``
    overrides the timeout for one request.
    """

    def __init__(self, http: httpx.AsyncClient, bounds: Bounds) -> None:
        self.http = http
        self.bounds = bounds
        self.timeout: Any = httpx.USE_CLIENT_DEFAULT if bounds.timeout is None else bounds.timeout

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        if request.host == AUTH:
            raise RuntimeError("an authenticated request reached the transport without a host")
        request.context.url = request.url
        request.context.sent = True
        deadline = self.bounds.attempt_deadline_for(request)
        try:
            return await asyncio.wait_for(self._exchange(request), deadline)
        except asyncio.TimeoutError as exc:
            if deadline is None:
                raise
            raise attempt_deadline_passed(request, deadline) from exc
        except httpx.RequestError as exc:
            failure, cause = transport_error(request, exc), without_request(exc)
        raise failure from cause  # outside the except block: httpx's error (it holds the request) is no context

    async def _exchange(self, request: XrpcRequest) -> XrpcResponse:
        body = request.content
        started = time.perf_counter()
        try:
            sent = self.http.build_request(
                request.method, request.url, params=_query(request.params),
                json=request.json if body is None else None, content=body, headers=request.headers,
                timeout=request.context.timeout or self.timeout,
                extensions={"sni_hostname": request.context.sni_hostname} if request.context.sni_hostname else None)
            response = await self.http.send(sent, stream=True)
            try:
                limit = self.bounds.max_bytes_for(request)
                content = await read_at_most(response.aiter_bytes(), limit, response.headers, request)
            finally:
                await response.aclose()
        finally:
            if isinstance(body, AsyncGenerator):
                # on cancellation the transport may still be iterating it in its own task;
                # it is then closed when that task ends
                with contextlib.suppress(RuntimeError):
                    await body.aclose()
        info = HttpInfo(response.status_code, response.headers, _since(started), str(response.url))
        return XrpcResponse(decode_body(content, response.headers, response.status_code, request), info, content)


async def read_at_most(chunks: AsyncIterator[bytes], limit: int, headers: Mapping[str, str], request: XrpcRequest,
                       read_all: Callable[[], Awaitable[bytes]] | None = None) -> bytes:
    """The decoded body, read chunk by chunk; ResponseTooLarge once it passes ``limit``.

    An uncompressed body of a declared length within the limit is read with ``read_all``."""
    length = headers.get("Content-Length")
    if length is not None and length.isdigit() and not headers.get("Content-Encoding"):
        if int(length) > limit:
            raise too_large(request, limit)
        if read_all is not None:
            return await read_all()
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large(request, limit)
    return bytes(body)


def too_large(request: XrpcRequest, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"{request.nsid} answered more than {limit} bytes (from {request.host}); the rest was not read. "
        "If answers this large are expected, raise the client's max_response_bytes= (PYSKY_MAX_RESPONSE_BYTES)"
        " or get_blob's max_bytes=")


def attempt_deadline_passed(request: XrpcRequest, seconds: float) -> RequestTimeout:
    """The error for one attempt that passed ``attempt_deadline`` (retried while the call's deadline allows)."""
    return RequestTimeout(
        f"{request.nsid} to {request.host} did not finish attempt {request.context.attempt or 1} within its "
        f"{seconds:g} s attempt deadline (the server is slow or trickling its answer): retry later, or raise "
        "the client's attempt_deadline= (PYSKY_ATTEMPT_DEADLINE)")


def transport_error(request: XrpcRequest, exc: httpx.RequestError) -> PyskyError:
    """The pysky_async error for an httpx transport failure; raise it ``from without_request(exc)``,
    outside the ``except`` block, so that no link of its chain holds the request and its token."""
    if isinstance(exc, httpx.TimeoutException) and _really_timed_out(exc):
        return RequestTimeout(
            f"{request.nsid} to {request.host} timed out ({type(exc).__name__}); "
            "the server may be overloaded: retry later or raise the client's timeout=")
    return failed_exchange(request, exc, failure_reason(exc.__cause__ or exc))


def failed_exchange(request: XrpcRequest, exc: BaseException, reason: str) -> PyskyError:
    """``InvalidResponse`` when the server's answer was not valid HTTP (not retried: a server or
    proxy answering so does it again), else ``NetworkError`` (retried where safe)."""
    malformed = malformed_answer(exc)
    if malformed is not None:
        return InvalidResponse(
            f"{request.nsid} to {request.host}: the server's answer is not valid HTTP ({malformed}); not retried, "
            "as a server answering so does it again: check the host, and any proxy in between")
    return NetworkError(f"{request.nsid} to {request.host} got no answer: {reason}; "
                        "check the host name and your network")


def _since(started: float) -> dt.timedelta:
    return dt.timedelta(seconds=time.perf_counter() - started)


def _query(params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _really_timed_out(exc: httpx.TimeoutException) -> bool:
    """httpx-aiohttp maps every aiohttp connection error (a server that hung up, a refused
    connection) to ConnectTimeout; only a timeout underneath is one."""
    cause = exc.__cause__
    return cause is None or isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__
