"""Publish a feed: the ``app.bsky.feed.generator`` record that points the AppView at a generator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import RecordNotFound
from .._syntax import Did, RecordKey
from ..lex._validate import validate_data
from .generator import feed_uri

if TYPE_CHECKING:
    from .._client import AsyncBskyClient
    from .._records import RecordRef

COLLECTION = "app.bsky.feed.generator"
ContentMode = Literal["app.bsky.feed.defs#contentModeUnspecified", "app.bsky.feed.defs#contentModeVideo"]


async def publish_feed(bsky: AsyncBskyClient, rkey: str, *, did: str, display_name: str,
                       description: str | None = None, avatar: Mapping[str, Any] | None = None,
                       accepts_interactions: bool | None = None, content_mode: ContentMode | None = None,
                       ) -> RecordRef:
    """Create or update the feed record ``at://<your DID>/app.bsky.feed.generator/<rkey>``.

    Args:
        bsky: a logged-in client: the record goes into its account's repo.
        rkey: the feed's record key (its URL name: ``bsky.app/profile/<you>/feed/<rkey>``).
        did: the generator's service DID (the AppView asks that DID's ``#bsky_fg`` service).
        display_name: at most 24 characters (graphemes). description: at most 300.
        avatar: a blob ref from ``bsky.upload_blob(...)``.

    The record is checked against the lexicon before anything is sent (``InvalidInput``). Publishing
    again updates it and keeps its ``createdAt``.
    """
    RecordKey(rkey)
    record: dict[str, Any] = {"$type": COLLECTION, "did": str(Did(did)), "displayName": display_name}
    if description is not None:
        record["description"] = description
    if avatar is not None:
        record["avatar"] = dict(avatar)
    if accepts_interactions is not None:
        record["acceptsInteractions"] = accepts_interactions
    if content_mode is not None:
        record["contentMode"] = content_mode
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record["createdAt"] = created
    validate_data(record, COLLECTION)
    me = bsky.sessions.session or await bsky.login()
    try:
        existing = await bsky.get_record(feed_uri(me.did, rkey))
        previous = existing.value.get("createdAt")
        if isinstance(previous, str):
            record["createdAt"] = previous
    except RecordNotFound:
        pass
    return await bsky.put_record(COLLECTION, rkey, record)
