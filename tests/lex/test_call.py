"""bsky.call with the generated descriptors, against httpx.MockTransport: typed params in,
typed Structs out, records as models in the body, open unions, errors."""

from __future__ import annotations

import json

import httpx
import pytest

from pysky_async import AsyncBskyClient, InvalidInput, InvalidResponse, JsonObject, lex

from ..conftest import fake_jwt

pytestmark = pytest.mark.anyio

PROFILE = {"did": "did:plc:alice", "handle": "alice.test", "displayName": "Alice", "followersCount": 3,
           "someFutureField": {"x": 1}}


def post_view(embed: dict[str, object] | None = None) -> dict[str, object]:
    view: dict[str, object] = {
        "uri": "at://did:plc:alice/app.bsky.feed.post/1", "cid": "bafyrei", "indexedAt": "2026-01-01T00:00:00Z",
        "author": {"did": "did:plc:alice", "handle": "alice.test"}, "record": {"$type": "app.bsky.feed.post"}}
    if embed is not None:
        view["embed"] = embed
    return view


class Server:
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
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)


def client(server: Server) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, username="me.test",
                           password="app-pass-word")


async def test_a_query_sends_its_params_and_returns_the_typed_output() -> None:
    server = Server({"app.bsky.actor.getProfile": PROFILE})
    async with client(server) as bsky:
        profile = await bsky.call(lex.app.bsky.actor.get_profile, actor="alice.test")
    assert isinstance(profile, lex.app.bsky.actor.ProfileViewDetailed)
    assert (profile.handle, profile.display_name, profile.followers_count, profile.banner) == (
        "alice.test", "Alice", 3, None)
    assert server.requests[0].url.params["actor"] == "alice.test"


async def test_array_params_repeat_and_left_out_params_are_not_sent() -> None:
    server = Server({"app.bsky.feed.getPosts": {"posts": [post_view()]},
                     "app.bsky.feed.getTimeline": {"feed": []}})
    async with client(server) as bsky:
        posts = await bsky.call(lex.app.bsky.feed.get_posts, uris=("at://a/b/1", "at://a/b/2"))
        await bsky.call(lex.app.bsky.feed.get_timeline, limit=5)
    assert posts.posts[0].author.handle == "alice.test"
    assert server.requests[0].url.params.get_list("uris") == ["at://a/b/1", "at://a/b/2"]
    assert dict(server.requests[1].url.params) == {"limit": "5"}


async def test_an_unknown_type_in_an_open_union_is_a_json_object_and_known_ones_are_typed() -> None:
    unknown = {"$type": "app.bsky.embed.hologram#view", "depth": 3}
    images: dict[str, object] = {"$type": "app.bsky.embed.images#view", "images": [
        {"thumb": "https://t", "fullsize": "https://f", "alt": "a cat"}]}
    server = Server({"app.bsky.feed.getPosts": {"posts": [post_view(unknown), post_view(images)]}})
    async with client(server) as bsky:
        posts = (await bsky.call(lex.app.bsky.feed.get_posts, uris=["at://x/y/1"])).posts
    assert isinstance(posts[0].embed, JsonObject) and posts[0].embed["depth"] == 3
    assert isinstance(posts[1].embed, lex.app.bsky.embed.ImagesView)
    assert posts[1].embed.images[0].alt == "a cat"
    assert isinstance(posts[1].author, lex.app.bsky.actor.ProfileViewBasic)  # the rest stays typed


async def test_a_record_model_is_written_with_its_type_and_wire_names() -> None:
    server = Server({"com.atproto.repo.createRecord": {"uri": "at://did:plc:me/app.bsky.feed.post/3k", "cid": "bafy"}})
    post = lex.app.bsky.feed.Post(text="hello", created_at="2026-01-01T00:00:00Z", langs=["en"])
    async with client(server) as bsky:
        result = await bsky.call(lex.com.atproto.repo.create_record, repo="did:plc:me",
                                 collection="app.bsky.feed.post", record=post)
    body = json.loads(server.requests[0].content)
    assert body == {"repo": "did:plc:me", "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "hello", "langs": ["en"], "createdAt": "2026-01-01T00:00:00Z"}}
    assert server.requests[0].headers["content-type"] == "application/json"
    assert isinstance(result, lex.com.atproto.repo.CreateRecordOutput) and result.cid == "bafy"


async def test_a_procedure_without_output_returns_none() -> None:
    server = Server({"app.bsky.graph.muteActor": httpx.Response(200)})
    async with client(server) as bsky:
        # the runtime value the type promises; mypy refuses to look at a None-typed result
        assert await bsky.call(lex.app.bsky.graph.mute_actor, actor="did:plc:bob") is None  # type: ignore[func-returns-value]
    assert json.loads(server.requests[0].content) == {"actor": "did:plc:bob"}


async def test_an_answer_that_does_not_fit_raises_invalid_response_naming_the_call() -> None:
    server = Server({"app.bsky.actor.getProfile": {"handle": "alice.test"}})  # no did
    async with client(server) as bsky:
        with pytest.raises(InvalidResponse, match=r"app\.bsky\.actor\.getProfile.*did"):
            await bsky.call(lex.app.bsky.actor.get_profile, actor="alice.test")


async def test_a_body_that_is_not_json_raises_invalid_input_before_any_request() -> None:
    server = Server({})
    async with client(server) as bsky:
        with pytest.raises(InvalidInput, match="createRecord"):
            await bsky.call(lex.com.atproto.repo.create_record, repo="did:plc:me", collection="x.y.z",
                            record={"when": object()})
    assert server.requests == []
