"""Posts round-tripped through the real reference PDS (getRecord): text, facets, replies, quotes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from pysky_async import AsyncBskyClient, External, Facet, InvalidPost, Post, PostFailed
from pysky_async._records import Record

from .realnet.pds import Account, PdsServer
from .test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bsky(pds: PdsServer, pds_account: Account, tmp_path: object) -> AsyncIterator[AsyncBskyClient]:
    async with AsyncBskyClient(username=pds_account.handle, password=pds_account.password,
                               auth_host=listen_host(pds), plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/posts.sqlite3") as client:
        yield client


def facet_texts(record: Record) -> list[tuple[str, dict[str, str]]]:
    encoded = record.value.text.encode("utf-8")
    result = []
    for facet in record.value.raw.get("facets", []):
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        feature = {k: v for k, v in facet["features"][0].items()}
        result.append((encoded[start:end].decode("utf-8"), feature))
    return result


async def test_text_with_markdown_mentions_tags_and_links_round_trips(bsky: AsyncBskyClient, pds: PdsServer) -> None:
    friend = pds.create_account(f"m{secrets.token_hex(4)}.test", secrets.token_urlsafe(10))
    text = (f"🎉🇺🇦 [our launch](https://example.com/launch) with @{friend.handle} and @ghost-nobody.test "
            "#release! 2*3*4\n- item\nsee atproto.com")
    ref = await bsky.create_post(text)
    record = await bsky.get_record(ref.uri)
    expected_text = (f"🎉🇺🇦 our launch with @{friend.handle} and @ghost-nobody.test #release! 2*3*4\n- item\n"
                     "see atproto.com")
    assert record.value.text == expected_text
    assert facet_texts(record) == [
        ("our launch", {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/launch"}),
        (f"@{friend.handle}", {"$type": "app.bsky.richtext.facet#mention", "did": friend.did}),
        ("#release", {"$type": "app.bsky.richtext.facet#tag", "tag": "release"}),
        ("atproto.com", {"$type": "app.bsky.richtext.facet#link", "uri": "https://atproto.com"}),
    ], "the unresolvable mention stays plain text"
    assert record.value.createdAt.endswith("Z") and record.value["$type"] == "app.bsky.feed.post"


async def test_reply_chain_by_uri_and_by_bsky_app_link(bsky: AsyncBskyClient, pds_account: Account) -> None:
    root = await bsky.create_post("root")
    second = await bsky.create_post(post=Post("second", reply_uri=root.uri))
    link = f"https://bsky.app/profile/{pds_account.handle}/post/{second.rkey}"
    third = await bsky.create_post(post=Post("third", reply_uri=link))
    second_record, third_record = await bsky.get_record(second.uri), await bsky.get_record(third.uri)
    assert second_record.value.reply.root.raw == root.to_dict()
    assert second_record.value.reply.parent.raw == root.to_dict()
    assert third_record.value.reply.root.raw == root.to_dict(), "root is the parent's root"
    assert third_record.value.reply.parent.raw == second.to_dict()


async def test_quote_post_and_link_card(bsky: AsyncBskyClient) -> None:
    quoted = await bsky.create_post("quote me")
    quote = await bsky.create_post(post=Post("quoting", quote_uri=quoted.uri, langs=["en", "de"]))
    record = await bsky.get_record(quote.uri)
    assert record.value.embed.raw == {"$type": "app.bsky.embed.record", "record": quoted.to_dict()}
    assert record.value.langs == ["en", "de"]
    card = await bsky.create_post(post=Post("a card").add(External("https://example.com", "Example", "A site")))
    embed = (await bsky.get_record(card.uri)).value.embed
    assert embed["$type"] == "app.bsky.embed.external"
    assert embed.external.raw == {"uri": "https://example.com", "title": "Example", "description": "A site"}


async def test_client_unique_key_posts_once_and_replies_by_key(bsky: AsyncBskyClient) -> None:
    first = await bsky.create_post(post=Post("daily report", client_unique_key="report-2026-11-23"))
    again = await bsky.create_post(post=Post("daily report", client_unique_key="report-2026-11-23"))
    assert again == first, "the same key never posts twice"
    reply = await bsky.create_post(post=Post("follow-up", reply_client_unique_key="report-2026-11-23"))
    assert (await bsky.get_record(reply.uri)).value.reply.parent.uri == first.uri
    posts = await bsky.list_records("app.bsky.feed.post").collect()
    assert len(posts) == 2
    [(uri,)] = await bsky.store.execute_sql("SELECT uri FROM bsky_post WHERE client_unique_key = 'report-2026-11-23'")
    assert uri == first.uri


async def test_explicit_facets_win_and_bad_ones_are_refused(bsky: AsyncBskyClient) -> None:
    post = Post("see example.com now").add(Facet(4, 15, uri="https://example.com/exact"))
    record = await bsky.get_record((await bsky.create_post(post=post)).uri)
    assert facet_texts(record) == [("example.com", {"$type": "app.bsky.richtext.facet#link",
                                                    "uri": "https://example.com/exact"})]
    with pytest.raises(InvalidPost, match="cuts a character"):
        await bsky.create_post(post=Post("é is here").add(Facet(1, 3, uri="https://x.org")))


async def test_failed_parts_post_nothing(bsky: AsyncBskyClient) -> None:
    with pytest.raises(InvalidPost, match="301 characters"):
        await bsky.create_post("x" * 301)
    assert not bsky.logged_in, "an invalid post is refused before any request, even the login"
    await bsky.login()
    with pytest.raises(PostFailed, match="reply reference") as info:
        await bsky.create_post(post=Post("orphan", reply_uri=f"at://{bsky.did}/app.bsky.feed.post/3kaaaaaaaaa22"))
    assert info.value.part == "reply reference"
    with pytest.raises(PostFailed, match="quoted post"):
        await bsky.create_post(post=Post("quote", quote_uri=f"at://{bsky.did}/app.bsky.feed.post/3kaaaaaaaaa22"))
    assert await bsky.list_records("app.bsky.feed.post").collect() == []
