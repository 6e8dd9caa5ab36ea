"""The innermost handler: turns an XrpcRequest into one HTTP exchange."""

from __future__ import annotations

from typing import Any

import httpx

from ._exceptions import NetworkError, RequestTimeout
from ._request import AUTH, XrpcRequest
from ._response import XrpcResponse


class HttpxTransport:
    """Sends requests with a shared ``httpx.AsyncClient``; error statuses are returned as values."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        if request.host == AUTH:
            raise RuntimeError("an authenticated request reached the transport without a host")
        url = f"{request.host}/xrpc/{request.nsid}"
        request.extensions["url"] = url
        try:
            response = await self.http.request(
                request.method,
                url,
                params=_query(request.params),
                json=request.json if request.content is None else None,
                content=request.content,
                headers=request.headers,
            )
        except httpx.TimeoutException as exc:
            raise RequestTimeout(
                f"{request.nsid} to {request.host} timed out ({type(exc).__name__}); "
                "the server may be overloaded: retry later or raise the client's timeout="
            ) from exc
        except httpx.TransportError as exc:
            raise NetworkError(
                f"{request.nsid} to {request.host} failed before any answer: {exc!r}; "
                "check the host name and your network"
            ) from exc
        return XrpcResponse.from_httpx(response)


def _query(params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}
