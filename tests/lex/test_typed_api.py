"""The typed public API against httpx.MockTransport: explicit keywords instead of ``**options``,
record helpers that take and give models, typed pagination items, typed stream records."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from pysky_async import AsyncBskyClient, Create, InvalidInput, InvalidPost, InvalidResponse, Post, Update, lex

from ..conftest import fake_jwt

pytestmark = pytest.mark.anyio


class Server:
    """Answers by NSID; records every request after the login."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1]
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(200, json={"did": "did:plc:me", "handle": "me.test", "accessJwt": fake_jwt(),
                                             "refreshJwt": fake_jwt()})
        self.requests.append(request)
        answer = self.answers[nsid]
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def bodies(self, nsid: str) -> list[dict[str, object]]:
        return [json.loads(r.content) for r in self.requests if r.url.path.endswith(nsid)]


def client(server: Server) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, username="me.test",
                           password="app-pass-word")


async def test_create_post_refuses_options_next_to_a_post_instead_of_ignoring_them() -> None:
    server = Server({})
    async with client(server) as bsky:
        with pytest.raises(InvalidPost, match="langs inside post=Post"):
            await bsky.create_post(post=Post("hello"), langs=["en"])
    assert server.requests == []


async def test_with_options_keeps_working_with_typed_keywords() -> None:
    async with client(Server({})) as bsky:
        quick = bsky.with_options(timeout=2.0, retry=None, middleware=[])
        assert quick.config.timeout == 2.0 and quick.config.retry is None and quick.config.middleware == ()
        await quick.aclose()


CREATED = {"uri": "at://did:plc:me/app.bsky.feed.post/3k", "cid": "bafyreicreated"}


async def test_create_record_takes_a_model_alone_its_type_naming_the_collection() -> None:
    server = Server({"com.atproto.repo.createRecord": CREATED})
    async with client(server) as bsky:
        ref = await bsky.create_record(lex.app.bsky.feed.Post(text="hi", created_at="2026-01-01T00:00:00.000Z",
                                                              langs=["en"]), rkey="3k")
    assert ref.uri == CREATED["uri"]
    [body] = server.bodies("createRecord")
    assert body["collection"] == "app.bsky.feed.post" and body["rkey"] == "3k" and "validate" not in body
    assert body["record"] == {"$type": "app.bsky.feed.post", "text": "hi", "langs": ["en"],
                              "createdAt": "2026-01-01T00:00:00.000Z"}


async def test_create_record_with_validate_checks_the_model_before_any_request() -> None:
    server = Server({"com.atproto.repo.createRecord": CREATED})
    async with client(server) as bsky:
        too_long = lex.app.bsky.feed.Post(text="x" * 301, created_at="2026-01-01T00:00:00.000Z")
        with pytest.raises(InvalidInput, match=r"\$\.text.*graphemes"):
            await bsky.create_record(too_long, validate=True)
        bad_date = lex.app.bsky.feed.Post(text="hi", created_at="yesterday")
        with pytest.raises(InvalidInput, match=r"\$\.createdAt.*datetime"):
            await bsky.records.create(bad_date, validate=True)
        assert server.requests == []  # not even the login
        await bsky.create_record(too_long)  # without validate=True the server is the judge
        await bsky.create_record(lex.app.bsky.feed.Post(text="ok", created_at="2026-01-01T00:00:00.000Z"),
                                 validate=True)
    assert [body.get("validate") for body in server.bodies("createRecord")] == [None, True]


async def test_put_record_takes_a_model_and_its_rkey() -> None:
    server = Server({"com.atproto.repo.putRecord": {"uri": "at://did:plc:me/app.bsky.actor.profile/self",
                                                    "cid": "bafyreiput"}})
    async with client(server) as bsky:
        await bsky.put_record(lex.app.bsky.actor.Profile(display_name="Me"), "self", swap_record="bafyreiold")
    [body] = server.bodies("putRecord")
    assert body["collection"] == "app.bsky.actor.profile" and body["rkey"] == "self"
    assert body["record"] == {"$type": "app.bsky.actor.profile", "displayName": "Me"}
    assert body["swapRecord"] == "bafyreiold"


async def test_record_helpers_refuse_what_is_not_a_record_model() -> None:
    server = Server({})
    async with client(server) as bsky:
        ref = lex.com.atproto.repo.StrongRef(uri="at://x/y/z", cid="bafy")
        with pytest.raises(InvalidInput, match="record model"):
            await bsky.create_record(ref)
        with pytest.raises(InvalidInput, match="pass the model alone"):
            await bsky.create_record(lex.app.bsky.feed.Like(subject=ref, created_at="2026-01-01T00:00:00Z"),
                                     {"text": "x"})  # type: ignore[call-overload]
        with pytest.raises(InvalidInput, match=re.escape("pass the model alone (create_record(Post(...)))")):
            await bsky.create_record("app.bsky.feed.post", lex.app.bsky.feed.Post(text="x", created_at="x"))  # type: ignore[call-overload]
        with pytest.raises(InvalidInput, match=re.escape("app.bsky.feed.like, not app.bsky.feed.post")):
            await bsky.get_record("at://did:plc:me/app.bsky.feed.like/3k", model=lex.app.bsky.feed.Post)
    assert server.requests == []


def record_answer(value: dict[str, object]) -> dict[str, object]:
    return {"uri": "at://did:plc:me/app.bsky.feed.post/3k", "cid": "bafyreiread", "value": value}


async def test_get_record_with_a_model_decodes_the_value() -> None:
    value = {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-01-01T00:00:00.000Z",
             "embed": {"$type": "app.bsky.embed.external",
                       "external": {"uri": "https://x.test", "title": "t", "description": "d"}},
             "someFutureField": 1}
    server = Server({"com.atproto.repo.getRecord": record_answer(value)})
    async with client(server) as bsky:
        record = await bsky.get_record("at://did:plc:me/app.bsky.feed.post/3k", model=lex.app.bsky.feed.Post)
        untyped = await bsky.get_record("at://did:plc:me/app.bsky.feed.post/3k")
    assert isinstance(record.value, lex.app.bsky.feed.Post)
    assert record.value.text == "hi" and record.value.created_at == "2026-01-01T00:00:00.000Z"
    assert isinstance(record.value.embed, lex.app.bsky.embed.External)
    assert record.ref.cid == "bafyreiread" and record.uri == untyped.uri
    assert untyped.value.text == "hi"  # no model: the JsonObject as before


@pytest.mark.parametrize("value", [{"$type": "app.bsky.feed.like", "subject": {}},
                                   {"$type": "app.bsky.feed.post", "createdAt": "2026-01-01T00:00:00Z"},
                                   {"$type": "app.bsky.feed.post", "text": 5, "createdAt": "x"}])
async def test_get_record_with_a_model_raises_invalid_response_when_the_value_does_not_fit(
        value: dict[str, object]) -> None:
    server = Server({"com.atproto.repo.getRecord": record_answer(value)})
    async with client(server) as bsky:
        with pytest.raises(InvalidResponse, match=re.escape("at://did:plc:me/app.bsky.feed.post/3k")):
            await bsky.get_record("at://did:plc:me/app.bsky.feed.post/3k", model=lex.app.bsky.feed.Post)


def feed_item(n: int) -> dict[str, object]:
    return {"post": {"uri": f"at://did:plc:alice/app.bsky.feed.post/{n}", "cid": "bafyrei",
                     "indexedAt": "2026-01-01T00:00:00Z",
                     "author": {"did": "did:plc:alice", "handle": "alice.test"},
                     "record": {"$type": "app.bsky.feed.post", "text": str(n), "createdAt": "2026-01-01T00:00:00Z"}}}


def author_feed(request: httpx.Request) -> dict[str, object]:
    """Three pages of two posts; the cursor is the index of the page's first post."""
    start = int(request.url.params.get("cursor") or 0)
    page: dict[str, object] = {"feed": [feed_item(n) for n in range(start, min(start + 2, 6))]}
    if start + 2 < 6:
        page["cursor"] = str(start + 2)
    return page


async def test_paginate_call_yields_typed_items_across_pages() -> None:
    server = Server({"app.bsky.feed.getAuthorFeed": author_feed})
    async with client(server) as bsky:
        listing = bsky.paginate_call(lex.app.bsky.feed.get_author_feed(actor="alice.test", filter="posts_no_replies"),
                                     lambda page: page.feed)
        posts = await listing.collect()
        assert listing.finished
        later = await bsky.paginate_call(lex.app.bsky.feed.get_author_feed(actor="alice.test", cursor="2"),
                                         lambda page: page.feed, max_items=3).collect()
    assert [type(p).__name__ for p in posts] == ["FeedViewPost"] * 6
    assert [p.post.uri.rsplit("/", 1)[1] for p in posts] == ["0", "1", "2", "3", "4", "5"]
    assert [p.post.uri.rsplit("/", 1)[1] for p in later] == ["2", "3", "4"]
    sent = [dict(r.url.params) for r in server.requests]
    assert sent[:3] == [{"actor": "alice.test", "filter": "posts_no_replies"},
                        {"actor": "alice.test", "filter": "posts_no_replies", "cursor": "2"},
                        {"actor": "alice.test", "filter": "posts_no_replies", "cursor": "4"}]
    assert [r.get("cursor") for r in sent[3:]] == ["2", "4"]  # max_items reached: no third page


async def test_paginate_call_raises_invalid_response_for_a_page_that_does_not_fit() -> None:
    server = Server({"app.bsky.feed.getAuthorFeed": {"feed": [{"post": {"uri": "at://x/y/z"}}]}})
    async with client(server) as bsky:
        with pytest.raises(InvalidResponse, match=re.escape("app.bsky.feed.getAuthorFeed")):
            await bsky.paginate_call(lex.app.bsky.feed.get_author_feed(actor="a.test"), lambda p: p.feed).collect()


async def test_paginate_call_wants_the_query_called_with_its_parameters() -> None:
    async with client(Server({})) as bsky:
        with pytest.raises(InvalidInput, match="called with its parameters"):
            bsky.paginate_call(lex.app.bsky.feed.get_author_feed, lambda p: p.feed)  # type: ignore[arg-type]


async def test_apply_writes_takes_models_through_create_of_and_update_of() -> None:
    server = Server({"com.atproto.repo.applyWrites": {"results": []}})
    post = lex.app.bsky.feed.Post(text="hi", created_at="2026-01-01T00:00:00.000Z")
    with pytest.raises(InvalidInput, match=r"\$\.createdAt"):
        Create.of(lex.app.bsky.feed.Post(text="hi", created_at="now"), validate=True)
    async with client(server) as bsky:
        await bsky.apply_writes([Create.of(post, "a", validate=True),
                                 Update.of(lex.app.bsky.actor.Profile(display_name="Me"), "self")])
    [body] = server.bodies("applyWrites")
    assert body["writes"] == [
        {"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": "a",
         "value": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-01-01T00:00:00.000Z"}},
        {"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.actor.profile", "rkey": "self",
         "value": {"$type": "app.bsky.actor.profile", "displayName": "Me"}}]
