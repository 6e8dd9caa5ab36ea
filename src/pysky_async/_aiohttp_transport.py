"""The fast path: XRPC requests straight onto the aiohttp session under the library's own
httpx client, skipping httpx's per-call URL parsing, request and response building.

The client's ``bsky.http`` (an ``httpx.AsyncClient`` on ``httpx-aiohttp``'s transport) and
this transport share one ``aiohttp.ClientSession``, so one connection pool. Requests whose
body is streamed (video uploads) take the httpx path (``HttpxTransport``). A caller's own
``httpx.AsyncClient`` (``http_client=``) always takes the httpx path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ._exceptions import RequestTimeout
from ._network_errors import failure_reason, without_request
from ._request import AUTH, XrpcRequest
from ._response import HttpInfo, XrpcResponse, decode_body
from ._transport import Bounds, HttpxTransport, attempt_deadline_passed, failed_exchange, read_at_most

if TYPE_CHECKING:
    import aiohttp
    import yarl


DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_LARGE_BODY = 1 << 20
"""aiohttp warns (ResourceWarning) when a bytes body above 1 MiB is sent as bytes: it is sent as a file."""


class SharedAiohttpSession:
    """Creates the one ``aiohttp.ClientSession`` on first use (it needs a running loop), with
    the connection settings ``httpx-aiohttp``'s transport would have used."""

    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        """Close the session (safe to call twice, or when it was never opened)."""
        if self.session is not None and not self.session.closed:
            await self.session.close()

    def __call__(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self.limits.max_connections or 0,
                                             keepalive_timeout=self.limits.keepalive_expiry,
                                             ssl=httpx.create_ssl_context())
            self.session = aiohttp.ClientSession(connector=connector)
            # aiohttp re-sends an idempotent request once by itself when the connection drops
            # (RFC 9112 9.3.1): a GET to a server that resets connections then went out twice per
            # attempt. The retry middleware counts attempts, so that re-send is off (aiohttp has
            # no public option; tests/reliability/test_hostile_transport.py checks it holds).
            self.session._retry_connection = False
        return self.session


class AiohttpXrpcTransport:
    """Sends requests on the shared aiohttp session; error statuses are returned as values.

    Args:
        session: the shared session.
        http: the library's own httpx client: its headers are sent, its timeout is the default;
            streamed bodies go through it.
        bounds: the timeout (None: the httpx client's), attempt deadline and response size.
    """

    def __init__(self, session: SharedAiohttpSession, http: httpx.AsyncClient, bounds: Bounds) -> None:
        import aiohttp
        import yarl

        self._session = session
        self._bounds = bounds
        self._fallback = HttpxTransport(http, bounds)
        self._headers = {key: value for key, value in http.headers.items() if key.lower() != "connection"}
        self._default_timeout = httpx.Timeout(bounds.timeout) if bounds.timeout is not None else http.timeout
        self._deadline = bounds.attempt_deadline
        self._timeout = _client_timeout(self._default_timeout, self._deadline)
        self._bases: dict[str, yarl.URL] = {}
        self._yarl = yarl.URL
        self._aiohttp_errors = (aiohttp.ClientError, OSError)
        self._read_timeouts = aiohttp.ServerTimeoutError  # a connect or read timeout, not the deadline

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        body = request.content
        if (body is not None and not isinstance(body, bytes)) or request.context.sni_hostname is not None:
            return await self._fallback(request)  # a streamed body; a pinned address (httpx passes the TLS name)
        if request.host == AUTH:
            raise RuntimeError("an authenticated request reached the transport without a host")
        ctx = request.context
        url = request.url
        ctx.url = url
        ctx.sent = True
        query = _query(request.params)
        target = self._yarl(f"{url}?{query}" if query else url, encoded=True)
        headers = {**self._headers, **request.headers} if request.headers else self._headers
        bounds = self._bounds
        if ctx.timeout is None and (body is None or self._deadline is None):  # the common case: made once
            timeout, deadline = self._timeout, self._deadline
        else:
            deadline = bounds.attempt_deadline_for(request)
            timeout = _client_timeout(httpx.Timeout(ctx.timeout) if ctx.timeout is not None else self._default_timeout,
                                      deadline)
        started = time.perf_counter()
        try:
            async with self._session().request(request.method, target, headers=headers, timeout=timeout,
                                               json=request.json if body is None else None,
                                               data=io.BytesIO(body) if body and len(body) > _LARGE_BODY else body,
                                               allow_redirects=False) as response:
                status, raw_headers = response.status, response.raw_headers
                content = await read_at_most(response.content.iter_any(), bounds.max_bytes_for(request),
                                             response.headers, request, response.read)
        except asyncio.TimeoutError as exc:
            if isinstance(exc, self._read_timeouts):
                raise RequestTimeout(
                    f"{request.nsid} to {request.host} timed out; the server may be overloaded: retry later or "
                    "raise the client's timeout=") from exc
            if deadline is None:
                raise
            raise attempt_deadline_passed(request, deadline) from exc
        except self._aiohttp_errors as exc:
            failure, cause = failed_exchange(request, exc, failure_reason(exc)), without_request(exc)
        else:
            headers_out = httpx.Headers(raw_headers)
            info = HttpInfo(status, headers_out, dt.timedelta(seconds=time.perf_counter() - started), str(target))
            return XrpcResponse(decode_body(content, headers_out, status, request), info, content)
        raise failure from cause  # outside the except block: aiohttp's error (it holds the request) is no context


def _client_timeout(timeout: httpx.Timeout, deadline: float | None) -> Any:
    import aiohttp

    return aiohttp.ClientTimeout(total=deadline, sock_connect=timeout.connect, sock_read=timeout.read,
                                 connect=timeout.pool)


def _query(params: Mapping[str, Any]) -> str:
    """The query string as httpx builds it: None left out, booleans as true/false, a list as
    repeated keys, every value percent-encoded."""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else (value,):
            text = ("true" if item else "false") if isinstance(item, bool) else str(item)
            parts.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "&".join(parts)
