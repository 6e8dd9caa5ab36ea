"""First-hour mistakes answered before any request (httpx.MockTransport, no servers)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pysky_async import AsyncBskyClient, InvalidInput, InvalidPost, NotAuthenticated

pytestmark = pytest.mark.anyio


class Recorder:
    """A PDS that logs everyone in as did:plc:me and records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("createSession"):
            return httpx.Response(200, json={"did": "did:plc:me", "handle": "me.test",
                                             "accessJwt": "a.b.c", "refreshJwt": "d.e.f"})
        return httpx.Response(200, json={"uri": "at://did:plc:me/a.b.c/1", "cid": "bafy"})


def client(server: Recorder, **kwargs: Any) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http,
                           auth_host="https://pds.test", **kwargs)


async def test_bsky_did_before_a_login_raises_saying_what_to_do_and_never_sends_null() -> None:
    server = Recorder()
    async with client(server, username="me.test", password="pw") as bsky:
        assert not bsky.logged_in
        with pytest.raises(NotAuthenticated, match=r"await bsky.login\(\)` first .*get_did"):
            await bsky.post("com.atproto.repo.createRecord", repo=bsky.did)
        with pytest.raises(NotAuthenticated, match=r"bsky\.handle is not known"):
            _ = bsky.handle
        with pytest.raises(InvalidInput, match="repo is None, which would be sent as null"):
            await bsky.post("com.atproto.repo.createRecord", repo=None, collection="a.b.c", record={})
        with pytest.raises(InvalidInput, match="repo is None"):
            await bsky.post("com.atproto.repo.createRecord", data={"repo": None, "collection": "a.b.c"})
        assert server.requests == [], "nothing was sent"
        assert await bsky.get_did() == "did:plc:me"
        assert bsky.logged_in and bsky.did == "did:plc:me" and bsky.handle == "me.test"
        await bsky.post("com.atproto.repo.createRecord", repo=bsky.did, collection="a.b.c", record={})
    assert [r.url.path for r in server.requests] == ["/xrpc/com.atproto.server.createSession",
                                                     "/xrpc/com.atproto.repo.createRecord"]


async def test_bsky_did_without_an_account_says_to_pass_credentials() -> None:
    async with client(Recorder()) as bsky:
        with pytest.raises(NotAuthenticated, match="no account; pass username= and password="):
            _ = bsky.did


async def test_an_empty_post_is_refused_before_any_request() -> None:
    server = Recorder()
    async with client(server, username="me.test", password="pw") as bsky:
        for text in ("", " ", "\n\t\u3000"):
            with pytest.raises(InvalidPost, match="the post is empty"):
                await bsky.create_post(text)
    assert server.requests == []
