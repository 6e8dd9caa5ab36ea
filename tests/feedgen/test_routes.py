"""The feed generator's XRPC routes, served by FastAPI and by aiohttp in-process: the same answers
from both (statuses, XRPC error bodies, what reaches the algorithm)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from pysky_async import FeedGenerator, InvalidInput, UsageError, feed_uri
from pysky_async.aiohttp_feedgen import feed_routes
from pysky_async.fastapi_feedgen import feed_router

from .tokens import SERVICE_DID, Directory, make_jwt

pytestmark = pytest.mark.anyio

PUBLISHER = "did:plc:publisher234567abcdefghi"
VIEWER = "did:plc:viewer234567abcdefghijkl"
FEED = feed_uri(PUBLISHER, "fresh")
POSTS = [f"at://{PUBLISHER}/app.bsky.feed.post/3k{n:011d}" for n in range(5)]
Get = Callable[..., Any]


class Algorithm:
    """Serves POSTS in pages of ``limit``; the cursor is the next index. Records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str | None, str | None]] = []

    async def __call__(self, feed: str, limit: int, cursor: str | None,
                       requester: str | None) -> tuple[Sequence[str], str | None]:
        self.calls.append((feed, limit, cursor, requester))
        if cursor is not None and not cursor.isdigit():
            raise InvalidInput(f"bad cursor {cursor!r}: pass the cursor of the previous page")
        start = int(cursor or 0)
        end = start + limit
        return POSTS[start:end], str(end) if end < len(POSTS) else None


@asynccontextmanager
async def serve(kind: str, generator: FeedGenerator) -> AsyncIterator[Get]:
    if kind == "fastapi":
        app = FastAPI()
        app.include_router(feed_router(generator))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fg") as http:
            async def get(path: str, token: str | None = None, **params: Any) -> tuple[int, Any]:
                headers = {"authorization": f"Bearer {token}"} if token else {}
                response = await http.get(path, params=params, headers=headers)
                return response.status_code, response.json()
            yield get
    else:
        aio = web.Application()
        aio.add_routes(feed_routes(generator))
        async with TestClient(TestServer(aio)) as client:
            async def get(path: str, token: str | None = None, **params: Any) -> tuple[int, Any]:
                headers = {"authorization": f"Bearer {token}"} if token else {}
                response = await client.get(path, params=params, headers=headers)
                return response.status, await response.json()
            yield get


def generator(auth: Any = "optional") -> tuple[FeedGenerator, Algorithm, Directory, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256K1())
    directory = Directory()
    directory.add(VIEWER, key)
    gen = FeedGenerator(SERVICE_DID, identity=directory, auth=auth, links={"privacyPolicy": "https://x.test/p"})
    algorithm = Algorithm()
    gen.add_feed(FEED, algorithm)
    return gen, algorithm, directory, key


SKELETON = "/xrpc/app.bsky.feed.getFeedSkeleton"
KINDS = pytest.mark.parametrize("kind", ["fastapi", "aiohttp"])


@KINDS
async def test_describe_and_did_document(kind: str) -> None:
    gen, *_ = generator()
    async with serve(kind, gen) as get:
        assert await get("/xrpc/app.bsky.feed.describeFeedGenerator") == (
            200, {"did": SERVICE_DID, "feeds": [{"uri": FEED}], "links": {"privacyPolicy": "https://x.test/p"}})
        status, document = await get("/.well-known/did.json")
        assert status == 200 and document["id"] == SERVICE_DID
        assert document["service"] == [{"id": "#bsky_fg", "type": "BskyFeedGenerator",
                                         "serviceEndpoint": "https://feeds.example.com"}]
    plc = FeedGenerator("did:plc:generator234567abcdefgh", auth="none")
    async with serve(kind, plc) as get:
        assert (await get("/.well-known/did.json"))[0] == 404


@KINDS
async def test_pages_and_the_requester_reach_the_algorithm(kind: str) -> None:
    gen, algorithm, _, key = generator()
    async with serve(kind, gen) as get:
        assert await get(SKELETON, feed=FEED, limit=2) == (200, {"feed": [{"post": p} for p in POSTS[:2]],
                                                                  "cursor": "2"})
        token = make_jwt(key, iss=VIEWER)
        assert await get(SKELETON, token, feed=FEED, limit=4, cursor="2") == (
            200, {"feed": [{"post": p} for p in POSTS[2:]]})
        assert (await get(SKELETON, feed=FEED))[0] == 200
    assert algorithm.calls == [(FEED, 2, None, None), (FEED, 4, "2", VIEWER), (FEED, 50, None, None)]


@KINDS
async def test_bad_parameters_get_400_with_the_xrpc_error(kind: str) -> None:
    gen, algorithm, *_ = generator()
    async with serve(kind, gen) as get:
        status, body = await get(SKELETON, feed=feed_uri(PUBLISHER, "other"))
        assert (status, body["error"]) == (400, "UnknownFeed") and "other" in body["message"]
        assert (await get(SKELETON))[1]["error"] == "InvalidRequest"
        for limit in ("0", "101", "ten"):
            status, body = await get(SKELETON, feed=FEED, limit=limit)
            assert (status, body["error"]) == (400, "InvalidRequest") and "limit" in body["message"]
        status, body = await get(SKELETON, feed=FEED, cursor="garbage")
        assert (status, body["error"]) == (400, "InvalidRequest") and "bad cursor" in body["message"]
        assert (await get(SKELETON, feed=FEED, limit="100"))[0] == 200
    assert [call[2] for call in algorithm.calls] == ["garbage", None]  # refused requests never reached it


@KINDS
async def test_bad_tokens_get_401_with_the_reference_error_names(kind: str) -> None:
    gen, algorithm, _, key = generator()
    cases = {
        "BadJwtAudience": make_jwt(key, iss=VIEWER, aud="did:web:elsewhere.example.com"),
        "BadJwtLexiconMethod": make_jwt(key, iss=VIEWER, lxm="app.bsky.feed.getFeed"),
        "JwtExpired": make_jwt(key, iss=VIEWER, exp=1_000_000_000),
        "BadJwtSignature": make_jwt(ec.generate_private_key(ec.SECP256K1()), iss=VIEWER),
    }
    async with serve(kind, gen) as get:
        for error, token in cases.items():
            status, body = await get(SKELETON, token, feed=FEED)
            assert (status, body["error"]) == (401, error), body
            assert body["message"]
    assert algorithm.calls == []


@KINDS
async def test_required_auth_refuses_anonymous_requests(kind: str) -> None:
    gen, algorithm, _, key = generator(auth="required")
    async with serve(kind, gen) as get:
        status, body = await get(SKELETON, feed=FEED)
        assert (status, body["error"]) == (401, "AuthenticationRequired")
        assert (await get(SKELETON, make_jwt(key, iss=VIEWER), feed=FEED))[0] == 200
    assert algorithm.calls == [(FEED, 50, None, VIEWER)]


@KINDS
async def test_a_failing_or_wrong_algorithm_is_a_500_without_details(kind: str) -> None:
    gen = FeedGenerator(SERVICE_DID, auth="none")

    async def broken(feed: str, limit: int, cursor: str | None, requester: str | None) -> tuple[list[str], None]:
        raise RuntimeError("database password is hunter2")

    async def wrong(feed: str, limit: int, cursor: str | None, requester: str | None) -> tuple[list[str], None]:
        return ["https://bsky.app/profile/x/post/y"], None

    gen.add_feed(feed_uri(PUBLISHER, "broken"), broken)
    gen.add_feed(feed_uri(PUBLISHER, "wrong"), wrong)
    async with serve(kind, gen) as get:
        for name in ("broken", "wrong"):
            status, body = await get(SKELETON, feed=feed_uri(PUBLISHER, name))
            assert (status, body["error"]) == (500, "InternalServerError") and "hunter2" not in body["message"]


async def test_configuration_errors_are_caught_early() -> None:
    with pytest.raises(UsageError, match="identity="):
        FeedGenerator(SERVICE_DID)
    gen = FeedGenerator(SERVICE_DID, auth="none")
    with pytest.raises(InvalidInput, match=r"app\.bsky\.feed\.generator"):
        gen.add_feed(f"at://{PUBLISHER}/app.bsky.feed.post/abc", Algorithm())
    with pytest.raises(InvalidInput):
        gen.add_feed("fresh", Algorithm())
