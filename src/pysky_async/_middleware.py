"""The middleware contract: ``async def __call__(request, call_next) -> response``.

A middleware sees every attempt of a call, may change the request (by making a new one
with ``request.replace``), may call ``call_next`` more than once (replay after a token
refresh), and returns the response. Error statuses come back as values; the client raises
typed errors after the whole chain has run. The chain is folded once: the first middleware
listed is the outermost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ._request import XrpcRequest
from ._response import XrpcResponse

Handler = Callable[[XrpcRequest], Awaitable[XrpcResponse]]


class Middleware(Protocol):
    """One link of the request pipeline."""

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse: ...


def build_chain(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """Fold ``middlewares`` around ``handler``; the first one listed runs first."""
    for middleware in reversed(middlewares):
        handler = _link(middleware, handler)
    return handler


def _link(middleware: Middleware, call_next: Handler) -> Handler:
    async def call(request: XrpcRequest) -> XrpcResponse:
        return await middleware(request, call_next)

    return call
