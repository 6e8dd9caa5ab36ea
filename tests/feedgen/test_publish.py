"""publish_feed checks the record against the app.bsky.feed.generator lexicon before any request."""

from __future__ import annotations

import httpx
import pytest

from pysky_async import AsyncBskyClient, InvalidIdentifier, InvalidInput, publish_feed

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"display_name": "x" * 25}, InvalidInput, "displayName"),
    ({"display_name": "ok", "description": "d" * 301}, InvalidInput, "description"),
    ({"display_name": "ok", "did": "not-a-did"}, InvalidIdentifier, "not-a-did"),
    ({"display_name": "ok", "rkey": "bad key"}, InvalidIdentifier, "bad key"),
])
async def test_an_invalid_feed_record_is_refused_before_any_request(kwargs: dict[str, str], error: type[Exception],
                                                                    match: str) -> None:
    requests: list[httpx.Request] = []

    async def server(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, retry=None,
                               username="me.test", password="secret-pass") as bsky:
        arguments = {"rkey": "my-feed", "did": "did:web:feeds.example.com", **kwargs}
        rkey = arguments.pop("rkey")
        with pytest.raises(error, match=match):
            await publish_feed(bsky, rkey, **arguments)  # type: ignore[arg-type]
    await http.aclose()
    assert requests == []
