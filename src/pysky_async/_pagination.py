"""Async pagination over cursor-based XRPC list endpoints.

``async for item in bsky.paginate("app.bsky.graph.getFollows", actor=...)`` yields items;
``.pages()`` yields whole pages. The next page is fetched while the caller works on the
current one (never more than one ahead). With ``resume=True`` a page's cursor is saved once
the caller has finished that page, so a killed run repeats at most one page and loses nothing.
Saved cursors are kept per account, endpoint and parameters (``default_cursor_key``); a listing
that reached its end stays there (the next run yields only what is new) until ``restart=True``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar
from urllib.parse import urlencode

from ._exceptions import InvalidInput, UsageError
from ._request import XrpcRequest
from ._response import XrpcResponse, wrap

if TYPE_CHECKING:
    from ._cursor import CursorStore
    from ._xrpc import Xrpc

logger = logging.getLogger("pysky_async")

I = TypeVar("I")  # noqa: E741 - the item type
Select = Callable[[XrpcResponse, str], Sequence[Any]]
"""A page's items, given the page and its NSID."""

ITEM_FIELDS = ("feed", "follows", "followers", "likes", "repostedBy", "posts", "actors", "feeds", "lists",
               "items", "blocks", "mutes", "notifications", "records", "convos", "messages", "logs", "repos",
               "cids")
"""The list field of the standard endpoints, in the order they are looked for."""


NOT_IN_KEY = frozenset({"cursor", "limit"})
"""Parameters that do not change what a listing lists, so they are left out of its cursor key."""
KEY_MAX = 200
"""Longer parameter keys are hashed (the column holds 255 characters)."""


def default_cursor_key(params: Mapping[str, Any]) -> str:
    """The saved-cursor key of a listing: its parameters, sorted, without ``cursor`` and
    ``limit`` (``actor=alice.test&filter=posts``; hashed when long). No parameters: ``""``."""
    pairs = sorted(((name, _text(value)) for name, value in params.items()
                    if name not in NOT_IN_KEY and value is not None), key=lambda pair: pair[0])
    flat = [(name, item) for name, value in pairs for item in (value if isinstance(value, list) else [value])]
    key = urlencode(flat)
    if len(key) > KEY_MAX:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _text(value: Any) -> str | list[str]:
    if isinstance(value, (list, tuple)):
        return [item for one in value for item in [_text(one)] if isinstance(item, str)]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
        restart: with ``resume``, forget the saved cursor and list from the start again.
        max_items: stop after this many items.

    ``finished`` tells, once iterated, whether the listing reached its end.
    """

    def __init__(self, xrpc: Xrpc, cursors: CursorStore,
                 make_request: Callable[[str | None], Awaitable[XrpcRequest]], *, items: str | None = None,
                 cursor: str | None = None, resume: bool = False, restart: bool = False,
                 max_items: int | None = None, select: Select | None = None) -> None:
        if max_items is not None and max_items < 0:
            raise InvalidInput("max_items cannot be negative")
        if restart and not resume:
            raise UsageError("restart=True starts a resumed listing again: pass it with resume=True")
        self._xrpc = xrpc
        self._cursors = cursors
        self._make_request = make_request
        self._items = items
        self._start = cursor
        self._resume = resume and cursor is None
        self._restart = restart and self._resume
        self._max_items = max_items
        self._select = select
        self.finished = False
        """True once the listing reached its end (no next page)."""

    async def _fetch(self, cursor: str | None, first: bool) -> tuple[XrpcRequest, XrpcResponse]:
        request = await self._make_request(cursor)
        if first and self._resume:
            if not self._restart:
                request.context.resume = True  # the cursor middleware sends the saved cursor
            elif cursor is None and request.context.first_cursor is not None:
                request.context.cursor_passed = request.context.first_cursor
                request = request.replace(params={**request.params, "cursor": request.context.first_cursor})
        return request, await self._xrpc.send(request)

    async def pages(self) -> AsyncIterator[XrpcResponse]:
        """Yield whole pages (responses)."""
        async for page, _ in self._pages():
            yield page

    def _items_of(self, page: XrpcResponse, nsid: str) -> Sequence[Any]:
        if self._select is not None:
            return self._select(page, nsid)
        items: list[Any] = page.raw[items_field(page.raw, nsid, self._items)]
        return items

    async def _pages(self) -> AsyncIterator[tuple[XrpcResponse, Sequence[Any]]]:
        """Each page with its items (both cut at ``max_items``)."""
        yielded = 0
        first = True
        pending: asyncio.Task[tuple[XrpcRequest, XrpcResponse]] | None = asyncio.ensure_future(
            self._fetch(self._start, first=True))
        try:
            while pending is not None:
                request, page = await pending
                pending = None
                sent = request.context.cursor_passed or request.params.get("cursor")
                if first and self._restart:
                    await self._cursors.delete(request.context.did or "", request.nsid,
                                               request.context.cursor_key or "")
                elif first and self._resume and sent:
                    logger.debug("%s: resuming at cursor %r", request.nsid, sent)
                first = False
                page_items = self._items_of(page, request.nsid)
                count = len(page_items)
                next_cursor = page.raw.get("cursor")
                exhausted = not next_cursor or (count == 0 and next_cursor == sent)
                limit_reached = self._max_items is not None and yielded + count >= self._max_items
                if exhausted:
                    self.finished = True
                    if self._resume:
                        _announce_end(request, nothing_new=yielded + count == 0)
                if not exhausted and not limit_reached:
                    pending = asyncio.ensure_future(self._fetch(next_cursor, first=False))
                if self._max_items is not None and yielded + count > self._max_items:
                    page_items = page_items[:self._max_items - yielded]
                    if self._select is None:
                        page = _truncated(page, items_field(page.raw, request.nsid, self._items), len(page_items))
                    next_cursor = None  # part of the page is unseen: do not save past it
                yielded += len(page_items)
                yield page, page_items
                if self._resume and next_cursor and next_cursor != sent:
                    await self._cursors.save(request.context.did or "", request.nsid,
                                                    request.context.cursor_key or "", next_cursor)
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for _, items in self._pages():
            for item in items:
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


class TypedPaginator(Paginator, Generic[I]):
    """A listing whose items are models: ``bsky.paginate_call(feed.get_author_feed(actor=...),
    lambda page: page.feed)``. Iterating it yields the items the ``items`` function picks from each
    page decoded as the call's output model; ``pages()`` yields the raw pages (whole).

    Args:
        read: decodes a page (an ``InvalidResponse`` when it does not fit the model).
        items: picks a decoded page's items. The rest as ``Paginator``.
    """

    def __init__(self, xrpc: Xrpc, cursors: CursorStore,
                 make_request: Callable[[str | None], Awaitable[XrpcRequest]], *,
                 read: Callable[[XrpcResponse], Any], items: Callable[[Any], Sequence[I]],
                 cursor: str | None = None, resume: bool = False, restart: bool = False,
                 max_items: int | None = None) -> None:
        super().__init__(xrpc, cursors, make_request, cursor=cursor, resume=resume, restart=restart,
                         max_items=max_items, select=lambda page, _nsid: items(read(page)))

    async def __aiter__(self) -> AsyncIterator[I]:
        async for _, items in self._pages():
            for item in items:
                yield item

    async def collect(self) -> list[I]:
        """Every item, as a list."""
        return [item async for item in self]


_ENDS_ANNOUNCED: set[tuple[str, str, str]] = set()
"""Listings whose empty resumed run was logged at INFO (once per process: a poller's is DEBUG)."""


def _announce_end(request: XrpcRequest, *, nothing_new: bool) -> None:
    """Tell, once at INFO, why a resumed listing yields nothing: it reached its end before."""
    scope = (request.context.did or "", request.nsid, request.context.cursor_key or "")
    level = logging.DEBUG
    if nothing_new and scope not in _ENDS_ANNOUNCED:
        _ENDS_ANNOUNCED.add(scope)
        level = logging.INFO
    logger.log(level, "%s: the resumed listing is at its end%s; the next resumed run yields only what comes "
               "after it (pass restart=True to list it all again)", request.nsid,
               ", nothing new since the last run" if nothing_new else "")


def _truncated(page: XrpcResponse, name: str, keep: int) -> XrpcResponse:
    return XrpcResponse({**page.raw, name: page.raw[name][:keep]}, page.http, page.content)
