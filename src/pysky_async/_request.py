"""The immutable request that travels through the middleware chain."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._context import CallContext

AUTH = "auth"
"""Marker host: the account's own PDS (resolved by the session middleware)."""


@dataclass(frozen=True)
class XrpcRequest:
    """One XRPC call. Middleware changes a request only by making a new one (``replace``).

    Attributes:
        method: ``"GET"`` (query) or ``"POST"`` (procedure).
        nsid: the method's NSID, e.g. ``"app.bsky.actor.getProfile"``.
        host: base URL to call, or ``AUTH`` for "the logged-in account's PDS".
        params: query parameters.
        json: a JSON body (POST), or None.
        content: a raw body (POST, e.g. a blob; or an async iterator streaming it), or None.
        headers: extra request headers.
        path: a non-XRPC path on ``host`` (``"/.well-known/did.json"``); ``nsid`` then only
            names the call in the call log.
        skip: names of the middlewares this call does not pass through (``SESSION``,
            ``WRITE_BUDGET``... from ``_middleware``); see ``Pipeline``.
        context: the typed per-call context the middlewares share (``CallContext``).
    """

    method: str
    nsid: str
    host: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | AsyncIterator[bytes] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    skip: frozenset[str] = frozenset()
    context: CallContext = field(default_factory=CallContext, compare=False)

    @property
    def authenticated(self) -> bool:
        """True when the call goes to the account's PDS with the session's token."""
        return self.host == AUTH

    def replace(self, **changes: Any) -> XrpcRequest:
        """A copy with some fields changed (the context is shared with the original)."""
        return dataclasses.replace(self, **changes)

    @property
    def url(self) -> str:
        """Where the request goes (without the query string)."""
        return f"{self.host}{self.path}" if self.path is not None else f"{self.host}/xrpc/{self.nsid}"

    def with_headers(self, headers: Mapping[str, str] | None = None, /, **more: str) -> XrpcRequest:
        """A copy with these headers added or replaced: a mapping (for names such as
        ``atproto-proxy`` that are not Python identifiers), keyword arguments, or both."""
        return self.replace(headers={**self.headers, **(headers or {}), **more})
