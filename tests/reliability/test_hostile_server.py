"""A server that answers 2xx with something that is not the JSON the call needs, or redirects:
the reference PDS never does this, so a small fake on loopback misbehaves on purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from pysky_async import APIError, AsyncBskyClient, InvalidResponse

from ..conftest import fake_jwt

pytestmark = pytest.mark.anyio

Answer = Callable[[], web.Response]


def session_body(base: str) -> dict[str, object]:
    return {"did": "did:plc:hostile", "handle": "h.test", "accessJwt": fake_jwt(sub="did:plc:hostile"),
            "refreshJwt": fake_jwt(lifetime=86400, sub="did:plc:hostile"),
            "didDoc": {"id": "did:plc:hostile", "service": [
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": base}]}}


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[tuple[dict[str, Answer], str]]:
    answers: dict[str, Answer] = {}

    async def xrpc(request: web.Request) -> web.Response:
        return answers[request.match_info["nsid"]]()

    app = web.Application()
    app.add_routes([web.route("*", "/xrpc/{nsid}", xrpc)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    answers["com.atproto.server.createSession"] = lambda: web.json_response(session_body(base))
    try:
        yield answers, base
    finally:
        await runner.cleanup()


BAD_BODIES: dict[str, Callable[[], web.Response]] = {
    "html": lambda: web.Response(text="<html><body>Welcome to nginx!</body></html>", content_type="text/html"),
    "empty": lambda: web.Response(status=200),
    "truncated": lambda: web.Response(body=b'{"uri": "at://did:plc:x/c/1", "ci', content_type="application/json"),
    "missing field": lambda: web.json_response({"uri": "at://did:plc:hostile/com.example.note/1"}),
    "nested too deep": lambda: web.Response(body=b'{"uri": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
                                            content_type="application/json"),
}


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_a_2xx_that_is_not_the_json_the_call_needs_names_the_call(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path, body: str) -> None:
    answers, base = hostile
    answers["com.atproto.repo.createRecord"] = BAD_BODIES[body]
    answers["com.atproto.identity.resolveHandle"] = BAD_BODIES[body]
    async with AsyncBskyClient(username="h.test", password="pw", auth_host=base, public_host=base, retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        with pytest.raises(InvalidResponse, match=r"createRecord answered HTTP 200 without 'cid'|"
                                                  r"createRecord answered HTTP 200 without 'uri', 'cid'"):
            await bsky.create_record("com.example.note", {"text": "x"}, validate=False)
        with pytest.raises(InvalidResponse, match="resolveHandle answered HTTP 200 without 'did'"):
            await bsky.resolve_handle("someone.test")


async def test_a_login_answered_with_html_is_an_invalid_response(hostile: tuple[dict[str, Answer], str],
                                                                 tmp_path: Path) -> None:
    answers, base = hostile
    answers["com.atproto.server.createSession"] = BAD_BODIES["html"]
    async with AsyncBskyClient(username="h.test", password="pw", auth_host=base, retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        with pytest.raises(InvalidResponse, match=r"createSession answered HTTP 200 without 'did'.*nginx"):
            await bsky.login()


async def test_a_redirect_is_an_error_naming_where_and_a_redirected_write_costs_nothing(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path) -> None:
    answers, base = hostile
    answers["com.atproto.repo.createRecord"] = lambda: web.Response(
        status=302, headers={"Location": "https://elsewhere.example/xrpc/com.atproto.repo.createRecord"})
    async with AsyncBskyClient(username="h.test", password="pw", auth_host=base, retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        with pytest.raises(APIError, match=r"redirected to https://elsewhere\.example") as caught:
            await bsky.create_record("com.example.note", {"text": "x"}, validate=False)
        assert caught.value.status_code == 302
        await bsky.flush_call_log()
        [(points,)] = await bsky.store.execute_sql(
            "SELECT write_op_points_consumed FROM bsky_api_call_log WHERE endpoint = 'com.atproto.repo.createRecord'")
        [(reserved,)] = await bsky.store.execute_sql("SELECT count(*) FROM bsky_write_op")
    assert points == 0 and reserved == 0, "the redirected write was refunded"
