"""An async bot: answers every mention once — also across restarts — within the write budget.

    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... python -m examples.bot            # polling
    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... python -m examples.bot --stream   # Jetstream

Each poll walks the notifications (newest first, paginated) down to the newest one handled
before, which is stored in the database; a reply's ``client_unique_key`` is the mention's URI,
so even a crash between replying and saving cannot make it answer twice. Writes wait for the
write budget instead of failing.

With ``--stream`` the mentions come from the event stream instead (posts whose facets mention
the bot), through a StreamConsumer whose cursor is stored in the same database.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from pysky_async import (
    AsyncBskyClient,
    AtUri,
    CommitEvent,
    EventContext,
    JetstreamSource,
    Post,
    Source,
    StreamConsumer,
    StreamEvent,
    WriteBudget,
)

logger = logging.getLogger("bot")

SEEN_KEY = "bot:newest-handled"


def reply_text(uri: str, handle: str) -> str:
    at = AtUri.parse(uri)
    link = f"https://bsky.app/profile/{at.authority}/post/{at.rkey}"
    return f"Hi @{handle}, thanks for the mention! I read [your post]({link})."


async def answer(bsky: AsyncBskyClient, uri: str, handle: str) -> None:
    """Reply once: the mention's URI is the reply's client_unique_key."""
    await bsky.create_post(post=Post(reply_text(uri, handle), reply_uri=uri, client_unique_key=f"reply:{uri}"))
    logger.info("answered %s", uri)


async def poll_once(bsky: AsyncBskyClient) -> int:
    """Answer the mentions that arrived since the last poll; returns how many were answered."""
    session = await bsky.login()
    newest_handled = await bsky.cursors.load(session.did, "app.bsky.notification.listNotifications", SEEN_KEY)
    mentions = []
    newest = newest_handled
    async for notification in bsky.paginate("app.bsky.notification.listNotifications", limit=50):
        if newest_handled is not None and notification.indexedAt <= newest_handled:
            break
        newest = max(newest or notification.indexedAt, notification.indexedAt)
        if notification.reason == "mention":
            mentions.append(notification)
    for mention in reversed(mentions):  # oldest first
        await answer(bsky, mention.uri, mention.author.handle)
    if newest is not None and newest != newest_handled:
        await bsky.cursors.save(session.did, "app.bsky.notification.listNotifications", SEEN_KEY, newest)
    return len(mentions)


def mentions(record: dict[str, Any] | None, did: str) -> bool:
    """Whether a post record's facets mention ``did``."""
    return any(feature.get("did") == did for facet in (record or {}).get("facets") or []
               for feature in facet.get("features") or [])


async def stream_mentions(bsky: AsyncBskyClient, source: Source, *, start_cursor: int | None = None) -> StreamConsumer:
    """A consumer answering mentions as their posts arrive on ``source`` (run it with ``.run()``)."""
    me = (await bsky.login()).did

    async def on_post(event: StreamEvent, ctx: EventContext) -> None:
        if isinstance(event, CommitEvent) and event.did != me:
            for op in event.ops:
                if op.action == "create" and mentions(op.record, me):
                    handle = await bsky.identity.handle_of(event.did) or event.did
                    await answer(bsky, f"at://{event.did}/{op.path}", handle)

    return StreamConsumer(source, on_post, store=bsky.store, name="bot:mentions",
                          collections=["app.bsky.feed.post"], start_cursor=start_cursor, concurrency=8)


async def main(poll_interval: float = 15.0, stream: bool = False) -> None:
    async with AsyncBskyClient(write_budget=WriteBudget(on_budget_exhausted="wait")) as bsky:
        if stream:
            await (await stream_mentions(bsky, JetstreamSource(collections=["app.bsky.feed.post"]))).run()
        while True:
            await poll_once(bsky)
            await asyncio.sleep(poll_interval)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(stream="--stream" in sys.argv[1:]))
