"""An async bot: answers every mention once — also across restarts — within the write budget.

    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... python -m examples.bot [--stream]

Each pass takes the mentions the bot has not handled from ``bsky.notifications`` (kept in the
library's database, never the server's ``isRead``, which a person opening the app on the bot's
account would clear), answers them oldest first, records each one as handled and marks them seen
on the server. A reply's ``client_unique_key`` is the mention's URI: a crash between replying
and recording can never make it answer twice. Writes wait for the write budget instead of
failing; a failed pass (the server down, a network error) is logged and retried with back-off.

With ``--stream`` the bot follows the event stream too (Jetstream, or a firehose), and a post
mentioning it starts a pass at once instead of at the next poll; the answer still goes through
the same bookkeeping, so stream and poll never answer the same mention twice.

Environment:
    BOT_POLL_INTERVAL   seconds between passes (default 15; with --stream, 60)
    BOT_REASONS         the notification reasons answered, comma-separated (default ``mention``)
    BOT_FIREHOSE_URL    with --stream: a firehose (``wss://relay...`` / a PDS) instead of Jetstream
    BOT_JETSTREAM_URL   with --stream: Jetstream instances, comma-separated (default: Bluesky's)
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from collections.abc import Sequence
from typing import Any

from pysky_async import (
    AsyncBskyClient,
    AtUri,
    CommitEvent,
    EventContext,
    FirehoseSource,
    JetstreamSource,
    Notification,
    Post,
    PyskyError,
    Source,
    StreamConsumer,
    StreamEvent,
    WriteBudget,
    install_signal_handlers,
)

logger = logging.getLogger("bot")

NAME = "bot"
"""The notification consumer's name: what it handled is kept under it."""


def reply_text(uri: str, handle: str) -> str:
    at = AtUri.parse(uri)
    link = f"https://bsky.app/profile/{at.authority}/post/{at.rkey}"
    return f"Hi @{handle}, thanks for the mention! I read [your post]({link})."


async def answer(bsky: AsyncBskyClient, uri: str, handle: str) -> None:
    """Reply once: the mention's URI is the reply's client_unique_key."""
    await bsky.create_post(post=Post(reply_text(uri, handle), reply_uri=uri, client_unique_key=f"reply:{uri}"))
    logger.info("answered %s", uri)


async def poll_once(bsky: AsyncBskyClient, reasons: Sequence[str] = ("mention",)) -> int:
    """One pass: answer the mentions not handled yet; returns how many were answered."""

    async def handle(notification: Notification) -> None:
        await answer(bsky, notification.uri, notification.author.handle)

    answered = await bsky.notifications.process(handle, NAME, reasons=reasons)
    logger.info("notifications: pass, %d answered", answered)
    return answered


def mentions_of(record: dict[str, Any] | None, did: str) -> bool:
    """Whether a post record's facets mention ``did``."""
    return any(feature.get("did") == did for facet in (record or {}).get("facets") or []
               for feature in facet.get("features") or [])


async def stream_mentions(bsky: AsyncBskyClient, source: Source, wake: asyncio.Event, *,
                          start_cursor: int | None = None) -> StreamConsumer:
    """A consumer that sets ``wake`` when a post mentioning the bot arrives on ``source`` (run it with ``.run()``)."""
    me = (await bsky.login()).did

    async def on_post(event: StreamEvent, ctx: EventContext) -> None:
        if isinstance(event, CommitEvent) and event.did != me:
            if any(op.action == "create" and mentions_of(op.record, me) for op in event.ops):
                wake.set()

    return StreamConsumer(source, on_post, store=bsky.store, name="bot:mentions",
                          collections=["app.bsky.feed.post"], start_cursor=start_cursor, concurrency=8)


def stream_source() -> Source:
    """``BOT_FIREHOSE_URL``'s firehose, else Jetstream (``BOT_JETSTREAM_URL`` or Bluesky's)."""
    firehose = os.environ.get("BOT_FIREHOSE_URL")
    if firehose:
        return FirehoseSource(firehose)
    instances = [url.strip() for url in os.environ.get("BOT_JETSTREAM_URL", "").split(",") if url.strip()]
    if instances:
        return JetstreamSource(instances, collections=["app.bsky.feed.post"])
    return JetstreamSource(collections=["app.bsky.feed.post"])


async def main(poll_interval: float = 15.0, max_backoff: float = 300.0, stream: Source | None = None,
               reasons: Sequence[str] = ("mention",), start_cursor: int | None = None,
               **client_options: Any) -> None:
    """Pass after pass for ever; with ``stream``, a mention on it starts the next pass at once
    (the AppView indexes it a moment later: passes then follow every second until one answers).
    A failed pass is logged and retried after a growing, jittered pause. ``client_options`` go to
    AsyncBskyClient (the environment supplies the rest); ``start_cursor`` is the stream's on a first run."""
    client_options.setdefault("write_budget", WriteBudget(on_budget_exhausted="wait"))
    async with AsyncBskyClient(**client_options) as bsky:
        logger.info("bot: started (%s); Ctrl-C stops it",
                    f"following {stream!r}" if stream else f"polling every {poll_interval:g} s")
        wake = asyncio.Event()
        consumer = None
        if stream is not None:
            consumer = await stream_mentions(bsky, stream, wake, start_cursor=start_cursor)
            follower = asyncio.create_task(consumer.run())
        failures = eager = 0
        try:
            while True:
                try:
                    answered = await poll_once(bsky, reasons)
                    failures = 0
                    eager = 0 if answered else max(0, eager - 1)
                    pause = 1.0 if eager else poll_interval
                except PyskyError as exc:
                    failures += 1
                    pause = min(max_backoff, poll_interval * 2 ** failures) * random.uniform(0.5, 1.0)
                    logger.warning("poll failed (%s); trying again in %.0f s", exc, pause)
                try:
                    await asyncio.wait_for(wake.wait(), pause)
                    wake.clear()
                    eager = 10  # a mention is on its way to the AppView: look every second for a while
                except asyncio.TimeoutError:
                    pass
        finally:
            if consumer is not None:
                await consumer.stop()
                await asyncio.gather(follower, return_exceptions=True)


def run() -> int:
    """``python -m examples.bot [--stream]``: runs until Ctrl-C, which closes the client (its call
    log written) and exits with status 130 and one line, not a traceback."""
    logging.basicConfig(level=logging.INFO)
    stream = "--stream" in sys.argv[1:]
    interval = float(os.environ.get("BOT_POLL_INTERVAL", "60" if stream else "15"))
    reasons = [r.strip() for r in os.environ.get("BOT_REASONS", "mention").split(",") if r.strip()]

    async def until_stopped() -> None:
        install_signal_handlers()  # SIGTERM too (and Ctrl-C on Python 3.10) closes the client cleanly
        await main(poll_interval=interval, stream=stream_source() if stream else None, reasons=reasons)

    try:
        asyncio.run(until_stopped())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bot: stopped (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run())
