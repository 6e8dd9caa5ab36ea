"""A feed generator: the posts that mention a keyword, backfilled and followed on the firehose, served to the AppView.

    pip install -e '.[examples]'
    FEEDGEN_HOSTNAME=feeds.example.com BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... \\
        python -m examples.feed_generator --publish

- The index: ``bsky.sync.follow`` on the firehose (``FEEDGEN_FIREHOSE``, default the Bluesky
  relay) keeps posts whose text contains ``FEEDGEN_KEYWORD`` (default ``python``) in its own
  table, written with ``ctx.on_commit`` in the transaction that moves the stream cursor (or marks
  a repo backfilled): after a restart it resumes where it stopped, and no post is indexed twice or
  lost. A deleted post leaves the index.
- The backfill, so a fresh feed is not empty: the posts written before the first start, of the
  repos in ``FEEDGEN_BACKFILL``: ``all`` (every repo the ``FEEDGEN_FIREHOSE`` host lists: meant
  for a PDS), DIDs separated by commas, or nothing. Default: ``all`` when ``FEEDGEN_FIREHOSE`` is
  set, nothing on the relay (that would be the whole network). The same handler takes backfilled
  and live posts; a repo's live events wait while it backfills. Backfilled posts sort after the
  live ones (they are older), by URI.
- The service: ``describeFeedGenerator``, ``getFeedSkeleton`` (newest first, ``cursor`` =
  ``<seq>::<uri>`` of the last post sent; requesters' service-auth tokens are checked when sent)
  and ``/.well-known/did.json`` for ``did:web:<FEEDGEN_HOSTNAME>`` (default ``localhost:<PORT>``),
  on aiohttp at ``HOST``:``PORT`` (default 127.0.0.1:8080). The AppView reaches it over https at
  that host name: put it behind a TLS proxy. ``FEEDGEN_SERVICE_DID`` serves a ``did:plc`` instead
  (its document must carry the ``#bsky_fg`` service).
- ``--publish`` writes the feed record ``FEEDGEN_RKEY`` (default ``keyword``) with the logged-in
  account, so the feed appears at bsky.app/profile/<you>/feed/<rkey>.

Settings of the client (database, hosts, PLC directory) come from its usual environment variables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import (
    AsyncBskyClient,
    CommitEvent,
    EventContext,
    FeedGenerator,
    Follow,
    InvalidInput,
    StreamEvent,
    feed_uri,
    install_signal_handlers,
    publish_feed,
)
from pysky_async.aiohttp_feedgen import feed_routes

log = logging.getLogger("examples.feed_generator")
TABLE = "feedgen_example_post"
DEFAULT_FIREHOSE = "wss://bsky.network"


class KeywordIndex:
    """The feed's own table: one row per post that mentions ``keyword`` (uri, author, firehose seq)."""

    def __init__(self, bsky: AsyncBskyClient, keyword: str) -> None:
        self.bsky = bsky
        self.keyword = keyword.lower()

    async def create_table(self) -> None:
        await self.bsky.store.execute_sql(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (uri VARCHAR(512) PRIMARY KEY, author VARCHAR(256) NOT NULL, "
            "seq BIGINT NOT NULL)")

    async def on_event(self, event: StreamEvent, ctx: EventContext) -> None:
        """The stream handler: index matching new posts, forget deleted ones (exactly once)."""
        if not isinstance(event, CommitEvent):
            return
        added = [f"at://{event.did}/{op.path}" for op in event.ops
                 if op.action == "create" and op.record and self.keyword in str(op.record.get("text", "")).lower()]
        deleted = [f"at://{event.did}/{op.path}" for op in event.ops if op.action == "delete"]
        if not added and not deleted:
            return
        seq, author = event.cursor or 0, event.did  # backfilled records (live=False) have no cursor

        async def write(session: AsyncSession) -> None:
            for uri in added:
                await session.execute(text(f"INSERT INTO {TABLE} (uri, author, seq) VALUES (:uri, :author, :seq) "
                                           "ON CONFLICT (uri) DO NOTHING"), {"uri": uri, "author": author, "seq": seq})
            for uri in deleted:
                await session.execute(text(f"DELETE FROM {TABLE} WHERE uri = :uri"), {"uri": uri})

        ctx.on_commit(write)

    async def algorithm(self, feed: str, limit: int, cursor: str | None,
                        requester: str | None) -> tuple[Sequence[str], str | None]:
        """The newest posts first; the cursor is ``<seq>::<uri>`` of the last one sent."""
        where, params = "", dict[str, object](limit=limit)
        if cursor is not None:
            seq, sep, uri = cursor.partition("::")
            if not sep or not seq.isdigit():
                raise InvalidInput(f"unknown cursor {cursor!r}: pass the cursor of the previous page")
            where = "WHERE seq < :seq OR (seq = :seq AND uri < :uri)"
            params.update(seq=int(seq), uri=uri)
        async with self.bsky.store.transaction() as session:
            rows = (await session.execute(
                text(f"SELECT uri, seq FROM {TABLE} {where} ORDER BY seq DESC, uri DESC LIMIT :limit"), params)).all()
        next_cursor = f"{rows[-1][1]}::{rows[-1][0]}" if len(rows) == limit else None
        return [row[0] for row in rows], next_cursor


@dataclass
class Settings:
    service_did: str
    publisher_did: str
    rkey: str = "keyword"
    keyword: str = "python"
    firehose: str = DEFAULT_FIREHOSE
    start_cursor: int | None = None
    """Where a first run starts (None: now); later runs resume from the stored cursor."""
    backfill: Collection[str] | None = ()
    """The repos whose earlier posts are indexed too (None: all the firehose host lists)."""


@dataclass
class FeedService:
    generator: FeedGenerator
    index: KeywordIndex
    follow: Follow

    @property
    def uri(self) -> str:
        return self.generator.feeds[0]


async def build(bsky: AsyncBskyClient, settings: Settings) -> FeedService:
    """The index (its table created), the backfill and consumer that fill it, the generator that serves it."""
    index = KeywordIndex(bsky, settings.keyword)
    await index.create_table()
    follow = bsky.sync.follow(index.on_event, service=settings.firehose, name=f"feedgen-{settings.rkey}",
                              dids=settings.backfill, collections=["app.bsky.feed.post"],
                              start_cursor=settings.start_cursor)
    generator = FeedGenerator(settings.service_did, identity=bsky.identity)
    generator.add_feed(feed_uri(settings.publisher_did, settings.rkey), index.algorithm)
    return FeedService(generator, index, follow)


@asynccontextmanager
async def running(service: FeedService) -> AsyncIterator[web.Application]:
    """The web app, with the backfill and the consumer running beside it until the block ends."""
    task = asyncio.create_task(service.follow.run())
    app = web.Application()
    app.add_routes(feed_routes(service.generator))
    try:
        yield app
    finally:
        await service.follow.stop()  # finishes the repos and events in progress, commits the cursor
        await task


async def main(argv: Sequence[str]) -> None:
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    hostname = os.environ.get("FEEDGEN_HOSTNAME", f"localhost:{port}")
    backfill = os.environ.get("FEEDGEN_BACKFILL", "all" if "FEEDGEN_FIREHOSE" in os.environ else "").strip()
    repos = None if backfill == "all" else [did.strip() for did in backfill.split(",") if did.strip()]
    async with AsyncBskyClient() as bsky:
        publisher = os.environ.get("FEEDGEN_PUBLISHER_DID") or (await bsky.login()).did
        service_did = os.environ.get("FEEDGEN_SERVICE_DID") or "did:web:" + hostname.replace(":", "%3A")
        settings = Settings(service_did=service_did, publisher_did=publisher,
                            rkey=os.environ.get("FEEDGEN_RKEY", "keyword"),
                            keyword=os.environ.get("FEEDGEN_KEYWORD", "python"),
                            firehose=os.environ.get("FEEDGEN_FIREHOSE", DEFAULT_FIREHOSE),
                            backfill=repos)
        service = await build(bsky, settings)
        if "--publish" in argv:
            await publish_feed(bsky, settings.rkey, did=settings.service_did, display_name=f"#{settings.keyword}",
                               description=f"Posts that mention {settings.keyword}, newest first.")
            log.info("published %s", service.uri)
        async with running(service) as app:
            runner = web.AppRunner(app)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port).start()
                log.info("serving %s as %s on http://%s:%d", service.uri, settings.service_did, host, port)
                await asyncio.Event().wait()  # until Ctrl-C or SIGTERM cancels us
            finally:
                await runner.cleanup()


def run() -> int:
    """``python -m examples.feed_generator [--publish]``: serves until Ctrl-C or SIGTERM, which stop
    the consumer (its cursor committed) and close the client."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def until_stopped() -> None:
        install_signal_handlers()
        await main(sys.argv[1:])

    try:
        asyncio.run(until_stopped())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("feed generator: stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run())
