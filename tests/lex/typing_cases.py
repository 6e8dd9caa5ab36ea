"""Checked by mypy in test_typing.py (not run): what bsky.call gives for the common endpoints."""
# ruff: noqa: F821  (reveal_type is mypy's)
from __future__ import annotations

from pysky_async import AsyncBskyClient, lex


async def common_endpoints(bsky: AsyncBskyClient) -> None:
    from pysky_async.lex.app.bsky import actor, feed, graph
    reveal_type(await bsky.call(feed.get_timeline, limit=50))
    reveal_type(await bsky.call(actor.get_profile, actor="alice.test"))
    reveal_type(await bsky.call(actor.get_profiles, actors=["alice.test"]))
    reveal_type(await bsky.call(feed.get_post_thread, uri="at://x/y/z", depth=2))
    reveal_type(await bsky.call(feed.get_author_feed, actor="alice.test", filter="posts_no_replies"))
    reveal_type(await bsky.call(graph.get_follows, actor="alice.test"))
    reveal_type(await bsky.call(graph.get_followers, actor="alice.test", cursor="c"))
    reveal_type(await bsky.call(lex.app.bsky.notification.list_notifications, limit=10))
    reveal_type(await bsky.call(actor.search_actors, q="alice"))
    reveal_type(await bsky.call(feed.get_posts, uris=["at://x/y/z"]))
    reveal_type(await bsky.call(feed.get_likes, uri="at://x/y/z"))
    reveal_type(await bsky.call(feed.get_reposted_by, uri="at://x/y/z"))
    reveal_type(await bsky.call(feed.search_posts, q="cats"))
    reveal_type(await bsky.call(feed.get_feed, feed="at://x/app.bsky.feed.generator/y"))
    reveal_type(await bsky.call(graph.get_lists, actor="alice.test"))
    reveal_type(await bsky.call(lex.com.atproto.repo.get_record, repo="r", collection="c", rkey="k"))
    reveal_type(await bsky.call(lex.com.atproto.repo.list_records, repo="r", collection="c"))
    reveal_type(await bsky.call(lex.com.atproto.identity.resolve_handle, handle="alice.test"))
    reveal_type(await bsky.call(lex.com.atproto.repo.create_record, repo="r", collection="app.bsky.feed.post",
                                record=feed.Post(text="hi", created_at="2026-01-01T00:00:00Z")))
    reveal_type(await bsky.call(graph.mute_actor, actor="did:plc:bob"))
    timeline = await bsky.call(feed.get_timeline)
    reveal_type(timeline.feed[0].post.embed)
    reveal_type(timeline.feed[0].post.author.display_name)
    await bsky.call(actor.get_profile, actr="alice.test")  # E: misspelt keyword
    await bsky.call(feed.get_timeline, limit="50")  # E: wrong type
