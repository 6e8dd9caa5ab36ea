"""Checked by mypy and pyright in test_typed_api_typing.py (not run): the typed public API.
A trailing R comment gives what the line's reveal_type must show; an E comment marks a call both reject."""
# ruff: noqa: F821  (reveal_type is the checkers')
from __future__ import annotations

from pysky_async import AsyncBskyClient
from pysky_async._streams.events import RepoOp


async def typed_api(bsky: AsyncBskyClient, op: RepoOp) -> None:
    from pysky_async.lex.app.bsky import feed
    post = feed.Post(text="hi", created_at="2026-01-01T00:00:00Z")
    reveal_type(await bsky.create_record(post, validate=True))  # R: RecordRef
    reveal_type(await bsky.put_record(post, "3k"))  # R: RecordRef
    reveal_type(await bsky.create_record("app.bsky.feed.post", {"text": "hi"}))  # R: RecordRef
    record = await bsky.get_record("at://did:plc:a/app.bsky.feed.post/3k", model=feed.Post)
    reveal_type(record)  # R: TypedRecord[Post]
    reveal_type(record.value.text)  # R: str
    reveal_type(await bsky.get_record("at://did:plc:a/app.bsky.feed.post/3k"))  # R: Record
    listing = bsky.paginate_call(feed.get_author_feed(actor="alice.test"), lambda page: page.feed, max_items=10)
    reveal_type(listing)  # R: TypedPaginator[FeedViewPost]
    async for item in listing:
        reveal_type(item.post.author.handle)  # R: str
    reveal_type(op.record_as(feed.Post))  # R: Post | None
    reveal_type(bsky.with_options(timeout=2.0, retry=None))  # R: AsyncBskyClient
    bsky.with_options(timout=2.0)  # E: misspelt option
    await bsky.create_record(post, rkye="3k")  # E: misspelt keyword
    await bsky.create_post("hi", lang=["en"])  # E: misspelt post option
    await bsky.delete_record("at://did:plc:a/app.bsky.feed.post/3k", swap="x")  # E: misspelt keyword
    await bsky.get("app.bsky.actor.getProfile", actor=1j)  # E: not a parameter value
    bsky.paginate_call(feed.get_author_feed(actor="a"), lambda page: page.feeds)  # E: no such field
