"""An async bot: answers every mention once — also across restarts — within the write budget.

    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... python -m examples.bot [--stream]

Each poll walks the unread notifications (newest first, paginated), answers the mentions among
them, then marks what it handled as seen on the server (``updateSeen`` with the newest handled
notification's time, so a mention that arrives meanwhile stays unread). A reply's
``client_unique_key`` is the mention's URI: even a crash between replying and marking can never
make it answer twice. Writes wait for the write budget instead of failing; a failed poll (the
server down, a network error) is logged and retried with back-off.

With ``--stream`` the mentions come from the event stream instead (posts whose facets mention
the bot), through a StreamConsumer whose cursor is stored in the same database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import sys
from typing import Any

from pysky_async import (
    AsyncBskyClient,
    AtUri,
    CommitEvent,
    EventContext,
    JetstreamSource,
    Post,
    PyskyError,
    Source,
    StreamConsumer,
    StreamEvent,
    WriteBudget,
    install_signal_handlers,
)

logger = logging.getLogger("bot")


def reply_text(uri: str, handle: str) -> str:
    at = AtUri.parse(uri)
    link = f"https://bsky.app/profile/{at.authority}/post/{at.rkey}"
    return f"Hi @{handle}, thanks for the mention! I read [your post]({link})."


async def answer(bsky: AsyncBskyClient, uri: str, handle: str) -> None:
    """Reply once: the mention's URI is the reply's client_unique_key."""
    await bsky.create_post(post=Post(reply_text(uri, handle), reply_uri=uri, client_unique_key=f"reply:{uri}"))
    logger.info("answered %s", uri)


async def poll_once(bsky: AsyncBskyClient) -> int:
    """Answer the unread mentions; returns how many were answered."""
    unread = []
    async for notification in bsky.paginate("app.bsky.notification.listNotifications", limit=50):
        if notification.isRead:
            break
        unread.append(notification)
    mentions = [n for n in reversed(unread) if n.reason == "mention"]  # oldest first
    for mention in mentions:
        await answer(bsky, mention.uri, mention.author.handle)
    if unread:  # "read" means seenAt > indexedAt: mark up to just past the newest one handled
        newest = dt.datetime.fromisoformat(max(n.indexedAt for n in unread).replace("Z", "+00:00"))
        seen_at = (newest + dt.timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
        await bsky.post("app.bsky.notification.updateSeen", seenAt=seen_at.replace("+00:00", "Z"))
    return len(mentions)


def mentions_of(record: dict[str, Any] | None, did: str) -> bool:
    """Whether a post record's facets mention ``did``."""
    return any(feature.get("did") == did for facet in (record or {}).get("facets") or []
               for feature in facet.get("features") or [])


async def stream_mentions(bsky: AsyncBskyClient, source: Source, *, start_cursor: int | None = None) -> StreamConsumer:
    """A consumer answering mentions as their posts arrive on ``source`` (run it with ``.run()``)."""
    me = (await bsky.login()).did

    async def on_post(event: StreamEvent, ctx: EventContext) -> None:
        if isinstance(event, CommitEvent) and event.did != me:
            for op in event.ops:
                if op.action == "create" and mentions_of(op.record, me):
                    handle = await bsky.identity.handle_of(event.did) or event.did
                    await answer(bsky, f"at://{event.did}/{op.path}", handle)

    return StreamConsumer(source, on_post, store=bsky.store, name="bot:mentions",
                          collections=["app.bsky.feed.post"], start_cursor=start_cursor, concurrency=8)


async def main(poll_interval: float = 15.0, max_backoff: float = 300.0, stream: bool = False,
               **client_options: Any) -> None:
    """Poll for ever (or follow the stream); a failed poll is logged and retried after a growing,
    jittered pause. ``client_options`` go to AsyncBskyClient (the environment supplies the rest)."""
    client_options.setdefault("write_budget", WriteBudget(on_budget_exhausted="wait"))
    async with AsyncBskyClient(**client_options) as bsky:
        logger.info("bot: started (%s); Ctrl-C stops it", "stream" if stream else f"polling every {poll_interval:g} s")
        if stream:
            await (await stream_mentions(bsky, JetstreamSource(collections=["app.bsky.feed.post"]))).run()
            return
        failures = 0
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


def run() -> int:
    """``python -m examples.bot [--stream]``: runs until Ctrl-C, which closes the client (its call
    log written) and exits with status 130 and one line, not a traceback."""
    logging.basicConfig(level=logging.INFO)

    async def until_stopped() -> None:
        install_signal_handlers()  # SIGTERM too (and Ctrl-C on Python 3.10) closes the client cleanly
        await main(poll_interval=float(os.environ.get("BOT_POLL_INTERVAL", "15")), stream="--stream" in sys.argv[1:])

    try:
        asyncio.run(until_stopped())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bot: stopped (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run())
