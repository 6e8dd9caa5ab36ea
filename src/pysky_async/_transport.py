"""The innermost handler: turns an XrpcRequest into one HTTP exchange."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from ._exceptions import NetworkError, RequestTimeout
from ._network_errors import failure_reason
from ._request import AUTH, XrpcRequest
from ._response import XrpcResponse


class HttpxTransport:
    """Sends requests with a shared ``httpx.AsyncClient``; error statuses are returned as values.

    ``request.content`` may be an async generator (a body streamed from disk);
    ``timeout`` (None: the httpx client's own) applies to every request; ``context.timeout``
    overrides it for one request.
    """

    def __init__(self, http: httpx.AsyncClient, *, timeout: float | None = None) -> None:
        self.http = http
        self.timeout: Any = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        if request.host == AUTH:
            raise RuntimeError("an authenticated request reached the transport without a host")
        url = request.url
        request.context.url = url
        request.context.sent = True
        body = request.content
        try:
            response = await self.http.request(
                request.method,
                url,
                params=_query(request.params),
                json=request.json if body is None else None,
                content=body,
                headers=request.headers,
                timeout=request.context.timeout or self.timeout,
            )
        except httpx.TransportError as exc:
            raise transport_error(request, exc) from exc
        finally:
            if isinstance(body, AsyncGenerator):
                # on cancellation the transport may still be iterating it in its own task;
                # it is then closed when that task ends
                with contextlib.suppress(RuntimeError):
                    await body.aclose()
        return XrpcResponse.from_httpx(response)


def transport_error(request: XrpcRequest, exc: httpx.TransportError) -> NetworkError:
    """The pysky_async error for an httpx transport failure (raise it ``from exc``)."""
    if isinstance(exc, httpx.TimeoutException) and _really_timed_out(exc):
        return RequestTimeout(
            f"{request.nsid} to {request.host} timed out ({type(exc).__name__}); "
            "the server may be overloaded: retry later or raise the client's timeout=")
    return NetworkError(
        f"{request.nsid} to {request.host} got no answer: {failure_reason(exc.__cause__ or exc)}; "
        "check the host name and your network")


def _query(params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _really_timed_out(exc: httpx.TimeoutException) -> bool:
    """httpx-aiohttp maps every aiohttp connection error (a server that hung up, a refused
    connection) to ConnectTimeout; only a timeout underneath is one."""
    cause = exc.__cause__
    return cause is None or isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__
