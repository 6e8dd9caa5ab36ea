"""Async pagination over cursor-based XRPC list endpoints.

``async for item in bsky.paginate("app.bsky.graph.getFollows", actor=...)`` yields items;
``.pages()`` yields whole pages. The next page is fetched while the caller works on the
current one (never more than one ahead). With ``resume=True`` a page's cursor is saved once
the caller has finished that page, so a killed run repeats at most one page and loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from ._exceptions import InvalidInput, UsageError
from ._request import XrpcRequest
from ._response import XrpcResponse, wrap

if TYPE_CHECKING:
    from ._cursor import CursorStore
    from ._xrpc import Xrpc

ITEM_FIELDS = ("feed", "follows", "followers", "likes", "repostedBy", "posts", "actors", "feeds", "lists",
               "items", "blocks", "mutes", "notifications", "records", "convos", "messages", "logs", "repos",
               "cids")
"""The list field of the standard endpoints, in the order they are looked for."""


def items_field(page: Mapping[str, Any], nsid: str, explicit: str | None) -> str:
    """The name of the page's list field."""
    if explicit is not None:
        if explicit not in page:
            raise InvalidInput(f"{nsid} returned no {explicit!r} field; it has: {', '.join(page)}")
        return explicit
    for name in ITEM_FIELDS:
        if isinstance(page.get(name), list):
            return name
    lists = [name for name, value in page.items() if isinstance(value, list)]
    if len(lists) == 1:
        return lists[0]
    raise InvalidInput(f"cannot tell which field of {nsid}'s answer holds the items ({', '.join(lists) or 'none'}): "
                       "pass items='<field>'")


class Paginator:
    """Pages of a cursor-based endpoint; iterate it for items or call ``pages()`` for pages.

    Args:
        xrpc: sends the pages. cursors: where resumed runs keep their cursors.
        make_request: coroutine building the request for a cursor (None: first page).
        cursor: start here (bypasses the saved cursor).
        resume: start from the saved cursor, and save each finished page's cursor.
        max_items: stop after this many items.
    """

    def __init__(self, xrpc: Xrpc, cursors: CursorStore,
                 make_request: Callable[[str | None], Awaitable[XrpcRequest]], *, items: str | None = None,
                 cursor: str | None = None, resume: bool = False, max_items: int | None = None) -> None:
        if max_items is not None and max_items < 0:
            raise InvalidInput("max_items cannot be negative")
        self._xrpc = xrpc
        self._cursors = cursors
        self._make_request = make_request
        self._items = items
        self._start = cursor
        self._resume = resume and cursor is None
        self._max_items = max_items

    async def _fetch(self, cursor: str | None, first: bool) -> tuple[XrpcRequest, XrpcResponse]:
        request = await self._make_request(cursor)
        if first and self._resume:
            request.context.resume = True
        return request, await self._xrpc.send(request)

    async def pages(self) -> AsyncIterator[XrpcResponse]:
        """Yield whole pages (responses)."""
        yielded = 0
        pending: asyncio.Task[tuple[XrpcRequest, XrpcResponse]] | None = asyncio.ensure_future(
            self._fetch(self._start, first=True))
        try:
            while pending is not None:
                request, page = await pending
                pending = None
                sent = request.context.cursor_passed or request.params.get("cursor")
                name = items_field(page.raw, request.nsid, self._items)
                count = len(page.raw[name])
                next_cursor = page.raw.get("cursor")
                exhausted = not next_cursor or (count == 0 and next_cursor == sent)
                limit_reached = self._max_items is not None and yielded + count >= self._max_items
                if not exhausted and not limit_reached:
                    pending = asyncio.ensure_future(self._fetch(next_cursor, first=False))
                if self._max_items is not None and yielded + count > self._max_items:
                    page = _truncated(page, name, self._max_items - yielded)
                    next_cursor = None  # part of the page is unseen: do not save past it
                yielded += len(page.raw[name])
                yield page
                if self._resume and next_cursor and next_cursor != sent:
                    await self._cursors.save(request.context.did or "", request.nsid,
                                                    request.context.cursor_key or "", next_cursor)
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for page in self.pages():
            for item in page.raw[items_field(page.raw, page.http.url, self._items)]:
                yield wrap(item)

    async def collect(self) -> list[Any]:
        """Every item, as a list."""
        return [item async for item in self]

    def __await__(self) -> Generator[Any, None, NoReturn]:
        raise UsageError("paginate() returns an async iterator, not a coroutine: use "
                         "`async for item in bsky.paginate(...)`, or `await bsky.paginate(...).collect()` "
                         "for a list")
        yield  # pragma: no cover  (makes this a generator, as __await__ must be)

    def __iter__(self) -> NoReturn:
        raise UsageError("paginate() is an async iterator: use `async for item in bsky.paginate(...)` "
                         "(inside an async function), not `for`")


def _truncated(page: XrpcResponse, name: str, keep: int) -> XrpcResponse:
    return XrpcResponse({**page.raw, name: page.raw[name][:keep]}, page.http, page.content)
