"""The typed public API against httpx.MockTransport: explicit keywords instead of ``**options``,
record helpers that take and give models, typed pagination items, typed stream records."""

from __future__ import annotations

import json

import httpx
import pytest

from pysky_async import AsyncBskyClient, InvalidPost, Post

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
