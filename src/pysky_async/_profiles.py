"""The profile cache: ``get_user_profile`` serves handles and DIDs from ``bsky_user_profile``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import APIError
from ._lenient import handle_from_text
from ._response import JsonObject
from ._syntax import Did

if TYPE_CHECKING:  # the storage modules load SQLAlchemy: imported where used, not at import
    from ._storage.models import UserProfileRow
    from ._storage.store import Store
    from ._xrpc import Xrpc

INVALID_HANDLE = "handle.invalid"


def _fields(profile: dict[str, Any]) -> dict[str, Any]:
    handle = profile.get("handle")
    return {
        # many accounts can show "handle.invalid": it must never identify one of them
        "handle": None if handle == INVALID_HANDLE else handle,
        "display_name": profile.get("displayName"),
        "description": profile.get("description"),
        "avatar": profile.get("avatar"),
        "banner": profile.get("banner"),
        "followers_count": profile.get("followersCount"),
        "follows_count": profile.get("followsCount"),
        "posts_count": profile.get("postsCount"),
        "profile_created_at": profile.get("createdAt"),
        "indexed_at": profile.get("indexedAt"),
        "raw": profile,
        "error": None,
    }


class Profiles:
    """Profiles through the cache in ``bsky_user_profile`` (``bsky.profiles``)."""

    def __init__(self, xrpc: Xrpc, store: Store) -> None:
        self._xrpc = xrpc
        self._store = store

    async def get(self, actor: str, *, force_remote_call: bool = False) -> JsonObject:
        """An actor's profile (``app.bsky.actor.getProfile``), from the cache when it has it.

        A remote call refreshes the cache. A suspended or deleted account has its error
        recorded on its cached row and raises APIError.
        """
        from ._storage.repositories import ProfileRepository

        actor = str(Did(actor)) if actor.startswith("did:") else str(handle_from_text(actor))
        if not force_remote_call and actor != INVALID_HANDLE:
            async with self._store.transaction() as db:
                row = await ProfileRepository(db).find(actor)
                if row is not None and row.error is None and row.raw is not None:
                    return JsonObject(dict(row.raw))
        try:
            response = await self._xrpc.get("app.bsky.actor.getProfile", actor=actor)
        except APIError as exc:
            await self._record_profile_error(actor, exc)
            raise
        async with self._store.transaction() as db:
            await ProfileRepository(db).upsert(response.require("did")[0], **_fields(response.raw))
        return JsonObject(response.raw)

    async def _record_profile_error(self, actor: str, exc: APIError) -> None:
        from ._storage.repositories import ProfileRepository

        async with self._store.transaction() as db:
            repo = ProfileRepository(db)
            row: UserProfileRow | None = await repo.find(actor)
            did = row.did if row is not None else (actor if actor.startswith("did:") else None)
            if did is not None:
                await repo.upsert(did, error=f"{exc.error or exc.status_code}: {exc.message or ''}".strip())
