"""Real AppView answers (``@atproto/dev-env``, tests/realnet/devenv.py) decode into the generated
models through ``bsky.call``: the common endpoints, with images, links, quotes, replies, likes,
reposts, follows and notifications in the data. Records are written with the models too."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pysky_async import AsyncBskyClient, JsonObject, lex

from ..realnet.devenv import DevEnv
from ..realnet.pds import Account

pytestmark = pytest.mark.anyio

feed, actor, graph, embed = lex.app.bsky.feed, lex.app.bsky.actor, lex.app.bsky.graph, lex.app.bsky.embed
repo = lex.com.atproto.repo


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def client(devenv: DevEnv, account: Account, tmp_path: Path) -> AsyncBskyClient:
    return AsyncBskyClient(username=account.handle, password=account.password, auth_host=devenv.pds_listen_url,
                           database_url=f"sqlite+aiosqlite:///{tmp_path}/{account.handle}.sqlite3",
                           plc_directory=devenv.plc_url, auto_migrate=True)


def untyped(value: Any, path: str = "$") -> list[str]:
    """Where a decoded answer holds a JsonObject (an open union that met an unknown $type)."""
    if isinstance(value, JsonObject):
        return [path]
    if isinstance(value, msgspec.Struct):
        return [p for name in value.__struct_fields__ for p in untyped(getattr(value, name), f"{path}.{name}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in untyped(item, f"{path}[{i}]")]
    return []


async def create(bsky: AsyncBskyClient, did: str, record: lex.LexObject,
                 rkey: str | None = None) -> repo.CreateRecordOutput:
    tag = type(record).__struct_config__.tag
    assert isinstance(tag, str)
    lex.validate(record)  # what the PDS accepts, the local check accepts too
    return await bsky.call(repo.create_record, repo=did, collection=tag, record=record, rkey=rkey)


async def test_common_endpoints_decode_into_their_models(devenv: DevEnv, tmp_path: Path) -> None:
    alice, _ = devenv.new_account("alice")
    bob, _ = devenv.new_account("bob")
    async with client(devenv, alice, tmp_path) as a, client(devenv, bob, tmp_path) as b:
        await create(a, alice.did, actor.Profile(display_name="Alice", description="typed"), "self")
        blob = (await a.call(repo.upload_blob, data=png(), content_type="image/png")).blob
        assert isinstance(blob, lex.Blob) and blob.mime_type == "image/png"
        image = embed.ImagesImage(image=blob, alt="a red square", aspect_ratio=embed.AspectRatio(width=8, height=6))
        pic = await create(a, alice.did, feed.Post(text="a picture", created_at=now(),
                                                   embed=embed.Images(images=[image])))
        link = await create(a, alice.did, feed.Post(text="a link", created_at=now(), embed=embed.External(
            external=embed.ExternalExternal(uri="https://example.com/", title="Example", description="site"))))
        pic_ref = repo.StrongRef(uri=pic.uri, cid=pic.cid)
        await create(b, bob.did, feed.Post(text="quoting", created_at=now(), embed=embed.Record(record=pic_ref)))
        await create(b, bob.did, feed.Post(text="a reply", created_at=now(),
                                           reply=feed.PostReplyRef(root=pic_ref, parent=pic_ref)))
        await create(b, bob.did, feed.Like(subject=pic_ref, created_at=now()))
        await create(b, bob.did, feed.Repost(subject=repo.StrongRef(uri=link.uri, cid=link.cid), created_at=now()))
        await create(b, bob.did, graph.Follow(subject=alice.did, created_at=now()))
        await create(a, alice.did, graph.Follow(subject=bob.did, created_at=now()))
        devenv.process_all()

        timeline = await a.call(feed.get_timeline, limit=50)
        assert {item.post.record["text"] for item in timeline.feed} >= {"a picture", "a link", "quoting", "a reply"}
        embeds = {type(item.post.embed) for item in timeline.feed}
        assert {embed.ImagesView, embed.ExternalView, embed.RecordView} <= embeds
        assert any(isinstance(item.reason, feed.ReasonRepost) for item in timeline.feed)
        pics = [item.post.embed for item in timeline.feed if isinstance(item.post.embed, embed.ImagesView)]
        assert pics[0].images[0].alt == "a red square" and pics[0].images[0].aspect_ratio == embed.AspectRatio(
            width=8, height=6)

        profile = await a.call(actor.get_profile, actor=alice.handle)
        assert (profile.display_name, profile.followers_count, profile.follows_count) == ("Alice", 1, 1)
        profiles = await a.call(actor.get_profiles, actors=[alice.did, bob.did])
        thread = await a.call(feed.get_post_thread, uri=pic.uri, depth=3)
        assert isinstance(thread.thread, feed.ThreadViewPost)
        assert thread.thread.replies and isinstance(thread.thread.replies[0], feed.ThreadViewPost)
        author_feed = await a.call(feed.get_author_feed, actor=alice.did, filter="posts_with_replies")
        follows = await a.call(graph.get_follows, actor=alice.did)
        followers = await a.call(graph.get_followers, actor=alice.did)
        assert [f.did for f in follows.follows] == [bob.did] and [f.did for f in followers.followers] == [bob.did]
        notifications = await a.call(lex.app.bsky.notification.list_notifications, limit=50)
        assert {n.reason for n in notifications.notifications} >= {"like", "repost", "follow", "reply", "quote"}
        found = await a.call(actor.search_actors, q=bob.handle)
        posts = await a.call(feed.get_posts, uris=[pic.uri, link.uri])
        assert [p.like_count for p in posts.posts] == [1, 0] and posts.posts[1].repost_count == 1
        likes = await a.call(feed.get_likes, uri=pic.uri)
        assert [like.actor.did for like in likes.likes] == [bob.did]
        reposted = await a.call(feed.get_reposted_by, uri=link.uri)
        quotes = await a.call(feed.get_quotes, uri=pic.uri)
        preferences = await a.call(actor.get_preferences)
        record = await a.call(repo.get_record, repo=alice.did, collection="app.bsky.feed.post",
                              rkey=pic.uri.rsplit("/", 1)[1])
        assert lex.convert(record.value, feed.Post).embed == embed.Images(images=[image])
        listed = await a.call(repo.list_records, repo=alice.did, collection="app.bsky.feed.post")
        described = await a.call(repo.describe_repo, repo=alice.did)
        resolved = await a.call(lex.com.atproto.identity.resolve_handle, handle=bob.handle)
        assert resolved.did == bob.did
        session = await a.call(lex.com.atproto.server.get_session)

        answers = [timeline, profile, profiles, thread, author_feed, follows, followers, notifications, found, posts,
                   likes, reposted, quotes, preferences, record, listed, described, resolved, session]
        assert [path for answer in answers for path in untyped(answer)] == []  # all on the fast, typed path
