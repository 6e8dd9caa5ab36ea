"""An async bot: answers every mention once — also across restarts — within the write budget.

    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... python -m examples.bot

Each poll walks the notifications (newest first, paginated) down to the newest one handled
before, which is stored in the database; a reply's ``client_unique_key`` is the mention's URI,
so even a crash between replying and saving cannot make it answer twice. Writes wait for the
write budget instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pysky_async import AsyncBskyClient, AtUri, Post, WriteBudget

logger = logging.getLogger("bot")

SEEN_KEY = "bot:newest-handled"


def reply_text(mention: Any) -> str:
    at = AtUri.parse(mention.uri)
    link = f"https://bsky.app/profile/{at.authority}/post/{at.rkey}"
    return f"Hi @{mention.author.handle}, thanks for the mention! I read [your post]({link})."


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
        await bsky.create_post(post=Post(reply_text(mention), reply_uri=mention.uri,
                                         client_unique_key=f"reply:{mention.uri}"))
        logger.info("answered %s", mention.uri)
    if newest is not None and newest != newest_handled:
        await bsky.cursors.save(session.did, "app.bsky.notification.listNotifications", SEEN_KEY, newest)
    return len(mentions)


async def main(poll_interval: float = 15.0) -> None:
    async with AsyncBskyClient(write_budget=WriteBudget(on_budget_exhausted="wait")) as bsky:
        while True:
            await poll_once(bsky)
            await asyncio.sleep(poll_interval)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
