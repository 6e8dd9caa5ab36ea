"""Cursor persistence: resumed pagination picks up where the last run stopped.

``CursorMiddleware`` injects the saved cursor into a resumed request; ``CursorStore`` saves a
cursor, which the paginator does only once the caller has finished the page it came with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._middleware import CURSOR, Handler
from ._request import XrpcRequest
from ._response import XrpcResponse

if TYPE_CHECKING:  # the storage modules load SQLAlchemy: imported where used, not at import
    from ._storage.store import Store

ZERO_CURSOR = "2222222222222"
"""The cursor that replays ``chat.bsky.convo.getLog`` from the start."""


class CursorStore:
    """Saved cursors per (account DID, endpoint, cursor_key)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self, did: str, endpoint: str, cursor_key: str) -> str | None:
        from ._storage.repositories import CursorRepository

        async with self.store.transaction() as db:
            return await CursorRepository(db).get(did, endpoint, cursor_key)

    async def save(self, did: str, endpoint: str, cursor_key: str, cursor: str) -> None:
        from ._storage.repositories import CursorRepository

        async with self.store.transaction() as db:
            await CursorRepository(db).save(did, endpoint, cursor_key, cursor)

    async def delete(self, did: str, endpoint: str, cursor_key: str) -> None:
        from ._storage.repositories import CursorRepository

        async with self.store.transaction() as db:
            await CursorRepository(db).delete(did, endpoint, cursor_key)


class CursorMiddleware:
    """On a request marked ``resume`` with no cursor, sends the saved cursor (or the request's
    ``first_cursor`` when nothing is saved yet). Runs inside the session middleware, which
    names the account (``context.did``)."""

    name = CURSOR

    def __init__(self, cursors: CursorStore) -> None:
        self.cursors = cursors

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        ctx = request.context
        if ctx.resume and request.params.get("cursor") is None:
            saved = await self.cursors.load(ctx.did or "", request.nsid, ctx.cursor_key or "")
            cursor = saved or ctx.first_cursor
            if cursor is not None:
                ctx.cursor_passed = cursor
                request = request.replace(params={**request.params, "cursor": cursor})
        return await call_next(request)
