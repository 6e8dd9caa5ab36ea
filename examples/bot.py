"""An async bot: answers every mention once — also across restarts — within the write budget.

    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... python -m examples.bot

Each poll walks the unread notifications (newest first, paginated), answers the mentions among
them, then marks what it handled as seen on the server (``updateSeen`` with the newest handled
notification's time, so a mention that arrives meanwhile stays unread). A reply's
``client_unique_key`` is the mention's URI: even a crash between replying and marking can never
make it answer twice. Writes wait for the write budget instead of failing; a failed poll (the
server down, a network error) is logged and retried with back-off.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
from typing import Any

from pysky_async import AsyncBskyClient, AtUri, Post, PyskyError, WriteBudget

logger = logging.getLogger("bot")


def reply_text(mention: Any) -> str:
    at = AtUri.parse(mention.uri)
    link = f"https://bsky.app/profile/{at.authority}/post/{at.rkey}"
    return f"Hi @{mention.author.handle}, thanks for the mention! I read [your post]({link})."


async def poll_once(bsky: AsyncBskyClient) -> int:
    """Answer the unread mentions; returns how many were answered."""
    unread = []
    async for notification in bsky.paginate("app.bsky.notification.listNotifications", limit=50):
        if notification.isRead:
            break
        unread.append(notification)
    mentions = [n for n in reversed(unread) if n.reason == "mention"]  # oldest first
    for mention in mentions:
        await bsky.create_post(post=Post(reply_text(mention), reply_uri=mention.uri,
                                         client_unique_key=f"reply:{mention.uri}"))
        logger.info("answered %s", mention.uri)
    if unread:  # "read" means seenAt > indexedAt: mark up to just past the newest one handled
        newest = dt.datetime.fromisoformat(max(n.indexedAt for n in unread).replace("Z", "+00:00"))
        seen_at = (newest + dt.timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
        await bsky.post("app.bsky.notification.updateSeen", seenAt=seen_at.replace("+00:00", "Z"))
    return len(mentions)


async def main(poll_interval: float = 15.0, max_backoff: float = 300.0, **client_options: Any) -> None:
    """Poll for ever; a failed poll is logged and retried after a growing, jittered pause.
    ``client_options`` go to AsyncBskyClient (the environment supplies the rest)."""
    failures = 0
    client_options.setdefault("write_budget", WriteBudget(on_budget_exhausted="wait"))
    async with AsyncBskyClient(**client_options) as bsky:
        while True:
            try:
                await poll_once(bsky)
                failures = 0
                pause = poll_interval
            except PyskyError as exc:
                failures += 1
                pause = min(max_backoff, poll_interval * 2 ** failures) * random.uniform(0.5, 1.0)
                logger.warning("poll failed (%s); trying again in %.0f s", exc, pause)
            await asyncio.sleep(pause)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(poll_interval=float(os.environ.get("BOT_POLL_INTERVAL", "15"))))
