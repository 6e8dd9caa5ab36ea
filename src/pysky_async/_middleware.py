"""The middleware contract: ``async def __call__(request, call_next) -> response``.

A middleware sees every attempt of a call, may change the request (by making a new one
with ``request.replace``), may call ``call_next`` more than once, may ask for the whole call to
be sent once more from the top (``context.send_again``: the session's replay after a refresh,
so that attempt has its own call-log row), and returns the response. Error statuses come back
as values; the client raises typed errors after the whole chain has run. The chain is folded
once: the first middleware listed is the outermost. Middlewares share per-call facts through ``request.context``
(a typed ``CallContext``), never through each other.

A request chooses which middlewares it passes through: ``request.skip`` names the ones it
does not need (the session's own login skips ``SESSION``; an identity lookup skips the
session, cursor and write budget). A middleware is named by its ``name`` attribute; the
caller's own middlewares without one are named ``USER``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ._request import XrpcRequest
from ._response import XrpcResponse

Handler = Callable[[XrpcRequest], Awaitable[XrpcResponse]]

RETRY = "retry"
CALL_LOG = "call_log"
SESSION = "session"
CURSOR = "cursor"
WRITE_BUDGET = "write_budget"
REQUEST_LIMIT = "request_limit"
RATE_LIMITS = "rate_limits"
USER = "user"

NO_ACCOUNT: frozenset[str] = frozenset({SESSION, CURSOR, WRITE_BUDGET})
"""What a call that is not made as the account skips: session, saved cursors, write budget
(identity lookups, calls to the video service)."""

SESSION_OWN: frozenset[str] = NO_ACCOUNT | {USER}
"""What the session's own login and refresh skip: also the caller's middlewares, so that
credentials and tokens never pass through code outside the library."""


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


def middleware_name(middleware: Middleware) -> str:
    """The name a request's ``skip`` refers to a middleware by (``USER`` when it has none)."""
    name = getattr(middleware, "name", None)
    return name if isinstance(name, str) else USER


class Pipeline:
    """The client's middlewares around its transport, fixed at construction.

    Each distinct ``request.skip`` gets its chain folded once (on first use) and cached, so
    choosing middlewares per request costs one dictionary lookup.
    """

    def __init__(self, middlewares: Sequence[Middleware], transport: Handler) -> None:
        self.middlewares: tuple[Middleware, ...] = tuple(middlewares)
        self.transport = transport
        self._chains: dict[frozenset[str], Handler] = {}

    def chain(self, skip: frozenset[str]) -> Handler:
        """The handler for requests that skip the middlewares named in ``skip``."""
        handler = self._chains.get(skip)
        if handler is None:
            handler = build_chain([m for m in self.middlewares if middleware_name(m) not in skip], self.transport)
            self._chains[skip] = handler
        return handler

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        chain = self.chain(request.skip)
        response = await chain(request)
        if request.context.send_again:  # once: e.g. replayed with a refreshed token
            response = await chain(request)
        return response
