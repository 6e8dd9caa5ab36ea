"""The fast path (the client's own aiohttp session) against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from pysky_async import AsyncBskyClient, NetworkError, NotFound, RequestTimeout, __version__
from pysky_async._aiohttp_transport import _query

from .streams.loopback import start_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def xrpc(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        nsid = request.match_info["nsid"]
        if nsid == "app.bsky.slow":
            await asyncio.sleep(2)
        if nsid == "app.bsky.missing":
            return web.json_response({"error": "NotFound", "message": "nope"}, status=404)
        return web.json_response({"nsid": nsid, "cursor": "c2"}, headers={"RateLimit-Limit": "10",
                                 "RateLimit-Remaining": "9", "RateLimit-Reset": "2000000000"})

    app = web.Application()
    app.router.add_route("*", "/xrpc/{nsid}", xrpc)
    runner, port = await start_app(app)
    yield f"http://127.0.0.1:{port}", seen, bodies
    await runner.cleanup()


def test_the_query_string_is_built_as_httpx_builds_it() -> None:
    assert _query({"uri": "at://did:plc:x/a.b.c/1", "reverse": True, "n": 5, "cursor": None,
                   "uris": ["a b", "c&d"]}) == \
        "uri=at%3A%2F%2Fdid%3Aplc%3Ax%2Fa.b.c%2F1&reverse=true&n=5&uris=a%20b&uris=c%26d"


async def test_reads_writes_and_errors_through_the_clients_own_session(
        server: tuple[str, list[web.Request], list[bytes]], tmp_path: object) -> None:
    base, seen, bodies = server
    async with AsyncBskyClient(public_host=base, database_url="sqlite+aiosqlite:///:memory:") as bsky:
        r = await bsky.get("app.bsky.feed.getAuthorFeed", actor="a.test", limit=2, includePins=False)
        assert r.nsid == "app.bsky.feed.getAuthorFeed" and r.http.status_code == 200
        assert r.http.headers["content-type"].startswith("application/json")
        assert r.http.url == f"{base}/xrpc/app.bsky.feed.getAuthorFeed?actor=a.test&limit=2&includePins=false"
        assert bsky.rate_limits["127.0.0.1:" + base.rsplit(":", 1)[1]]["10"].remaining == 9
        await bsky.post("com.example.thing", hostname=base, data={"text": "hé"})
        await bsky.post("com.example.blob", hostname=base, data=b"\x00\x01", headers={"Content-Type": "a/b"})
        with pytest.raises(Exception) as info:
            await bsky.get("app.bsky.missing")
        assert type(info.value) is NotFound and info.value.log_id is not None
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql("SELECT hostname, endpoint, http_status_code FROM bsky_api_call_log")
    assert seen[0].headers["User-Agent"] == f"pysky_async/{__version__}"
    assert dict(seen[0].query) == {"actor": "a.test", "limit": "2", "includePins": "false"}
    assert json.loads(bodies[1]) == {"text": "hé"} and seen[1].content_type == "application/json"
    assert bodies[2] == b"\x00\x01" and seen[2].headers["Content-Type"] == "a/b"
    assert [row[2] for row in rows] == [200, 200, 200, 404]


async def test_refused_connections_and_timeouts_are_pysky_errors(
        server: tuple[str, list[web.Request], list[bytes]]) -> None:
    base, _, _ = server
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    async with AsyncBskyClient(public_host=closed, database_url="sqlite+aiosqlite:///:memory:", retry=None,
                               timeout=0.3) as bsky:
        with pytest.raises(NetworkError, match=r"got no answer: cannot connect to 127\.0\.0\.1 port"):
            await bsky.get("app.bsky.actor.getProfile", actor="a.test")
        with pytest.raises(RequestTimeout, match="timed out"):
            await bsky.get("app.bsky.slow", hostname=base)
