"""AsyncBskyClient against httpx.MockTransport: routing, params, responses, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import pysky_async
from pysky_async import (
    CHAT_PROXY,
    APIError,
    AsyncBskyClient,
    ExpiredToken,
    InvalidInput,
    NetworkError,
    NotAuthenticated,
    PyskyError,
    RateLimitExceeded,
    RecordNotFound,
    UpstreamFailure,
)

from .conftest import fake_jwt

pytestmark = pytest.mark.anyio

PDS = "https://pds.example.com"


class Server:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, httpx.Response] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        nsid = request.url.path.rsplit("/", 1)[-1]
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(200, json={
                "did": "did:plc:me", "handle": "me.test", "accessJwt": fake_jwt(), "refreshJwt": fake_jwt(),
                "didDoc": {"service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                        "serviceEndpoint": PDS}]}})
        if nsid in self.routes:
            return self.routes[nsid]
        return httpx.Response(200, json={"nsid": nsid, "thread": {"post": {"author": {"handle": "a.test"}}}})


def client(server: Server, **kwargs: Any) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, **kwargs)


def test_public_api_is_complete() -> None:
    from pysky_async import _exceptions

    for name in pysky_async.__all__:
        assert hasattr(pysky_async, name), name
    errors = [name for name, obj in vars(_exceptions).items()
              if isinstance(obj, type) and issubclass(obj, Exception) and not name.startswith("_")]
    assert set(errors) <= set(pysky_async.__all__)


async def test_get_without_credentials_goes_to_the_public_host_without_auth() -> None:
    server = Server()
    async with client(server, public_host="https://public.test") as bsky:
        r = await bsky.get("xrpc/app.bsky.feed.getPostThread", params={"uri": "at://x"}, depth=0)
    [request] = server.requests
    assert str(request.url).startswith("https://public.test/xrpc/app.bsky.feed.getPostThread?")
    assert dict(request.url.params) == {"uri": "at://x", "depth": "0"}
    assert "authorization" not in request.headers
    assert r.thread.post.author.handle == "a.test"
    assert r["thread"]["post"]["author"]["handle"] == "a.test"
    assert r.raw["nsid"] == "app.bsky.feed.getPostThread"
    assert r.http.status_code == 200 and r.http.url == str(request.url)
    assert r.http.headers["content-type"] == "application/json"


async def test_with_credentials_calls_go_to_the_pds_from_the_did_document() -> None:
    server = Server()
    async with client(server, username="me.test", password="pw", auth_host="https://entry.test") as bsky:
        await bsky.get("app.bsky.actor.getProfile", actor="me.test")
        await bsky.post("com.atproto.repo.createRecord", repo="did:plc:me", collection="a.b.c",
                        record={"text": "x"})
        assert bsky.did == "did:plc:me" and bsky.handle == "me.test"
    login, profile, create = server.requests
    assert str(login.url) == "https://entry.test/xrpc/com.atproto.server.createSession"
    assert str(profile.url) == f"{PDS}/xrpc/app.bsky.actor.getProfile?actor=me.test"
    assert profile.headers["authorization"].startswith("Bearer ")
    assert str(create.url) == f"{PDS}/xrpc/com.atproto.repo.createRecord"
    assert json.loads(create.content) == {"repo": "did:plc:me", "collection": "a.b.c", "record": {"text": "x"}}


async def test_chat_calls_are_proxied_through_the_pds() -> None:
    server = Server()
    async with client(server, username="me.test", password="pw") as bsky:
        await bsky.get("chat.bsky.convo.listConvos")
        await bsky.get("chat.bsky.convo.getLog", hostname="api.bsky.chat")
    for request in server.requests[1:]:
        assert request.url.host == "pds.example.com"
        assert request.headers["atproto-proxy"] == CHAT_PROXY
        assert request.headers["authorization"].startswith("Bearer ")


async def test_post_with_bytes_sends_them_raw() -> None:
    server = Server()
    async with client(server, username="me.test", password="pw") as bsky:
        await bsky.post("com.atproto.repo.uploadBlob", data=b"\x89PNG", headers={"Content-Type": "image/png"})
    upload = server.requests[-1]
    assert upload.content == b"\x89PNG" and upload.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (400, {"error": "RecordNotFound", "message": "Could not locate record"}, RecordNotFound),
        (400, {"error": "ExpiredToken", "message": "Token has expired"}, ExpiredToken),
        (429, {"error": "RateLimitExceeded", "message": "slow down"}, RateLimitExceeded),
        (502, {"error": "UpstreamFailure", "message": "appview down"}, UpstreamFailure),
    ],
)
async def test_error_status_raises_the_matching_error_with_its_log_id(status: int, body: dict[str, str],
                                                                     error_class: type[Exception]) -> None:
    server = Server()
    server.routes["com.atproto.repo.getRecord"] = httpx.Response(status, json=body, headers={"Retry-After": "7"})
    async with client(server, public_host="https://public.test", retry=None) as bsky:
        with pytest.raises(error_class) as info:
            await bsky.get("com.atproto.repo.getRecord", repo="x", collection="a.b.c", rkey="1")
        [(log_id, error)] = await bsky.store.execute_sql("SELECT id, exception_class FROM bsky_api_call_log")
    assert isinstance(info.value, APIError) and info.value.log_id == log_id
    assert error == body["error"]
    assert body["message"] in str(info.value)
    if status == 429:
        assert info.value.retry_after == 7
        assert "the limit resets at" in str(info.value)


async def test_non_json_error_body_is_reported() -> None:
    server = Server()
    server.routes["a.b.c"] = httpx.Response(503, text="<html>Service Unavailable</html>")
    async with client(server) as bsky:
        with pytest.raises(pysky_async.ServerError, match="Service Unavailable"):
            await bsky.get("a.b.c")


async def test_network_failure_raises_network_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http) as bsky:
        with pytest.raises(NetworkError, match="check the host name") as info:
            await bsky.get("a.b.c")
        assert info.value.log_id is not None


@pytest.mark.parametrize("endpoint", ["", "getProfile", "xrpc/", "app.bsky.actor.getProfile?actor=x", "../etc"])
async def test_bad_endpoint_is_rejected_before_any_request(endpoint: str) -> None:
    server = Server()
    async with client(server) as bsky:
        with pytest.raises(InvalidInput, match="NSID"):
            await bsky.get(endpoint)
    assert server.requests == []


async def test_authenticated_call_without_credentials_says_what_to_set() -> None:
    server = Server()
    async with client(server) as bsky:
        with pytest.raises(NotAuthenticated, match="BSKY_AUTH_USERNAME"):
            await bsky.post("com.atproto.repo.createRecord", repo="x")


async def test_injected_http_client_is_left_open_and_closed_client_refuses_calls() -> None:
    server = Server()
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    bsky = AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http)
    await bsky.get("a.b.c")
    await bsky.aclose()
    await bsky.aclose()
    assert not http.is_closed
    with pytest.raises(PyskyError, match="closed"):
        await bsky.get("a.b.c")
    await http.aclose()


async def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BSKY_AUTH_USERNAME", "me.test")
    monkeypatch.setenv("BSKY_AUTH_PASSWORD", "pw")
    server = Server()
    async with client(server) as bsky:
        assert bsky.config.username == "me.test"
        assert "pw" not in repr(bsky.config)
        await bsky.get("app.bsky.actor.getProfile", actor="x")
    assert json.loads(server.requests[0].content) == {"identifier": "me.test", "password": "pw"}


async def test_user_middleware_runs_inside_the_call_log_and_outside_the_session() -> None:
    server = Server()
    seen: list[tuple[str, str]] = []

    class Tag:
        async def __call__(self, request: pysky_async.XrpcRequest, call_next: pysky_async.Handler
                           ) -> pysky_async.XrpcResponse:
            seen.append((request.host, request.headers.get("Authorization", "")))
            response = await call_next(request.with_headers(**{"X-Tag": "1"}))
            request.context.write_points = 2
            return response

    async with client(server, username="me.test", password="pw", middleware=[Tag()]) as bsky:
        await bsky.get("app.bsky.actor.getProfile", actor="x")
        await bsky.flush_call_log()
        [(points,)] = await bsky.store.execute_sql(
            "SELECT write_op_points_consumed FROM bsky_api_call_log WHERE endpoint = 'app.bsky.actor.getProfile'")
    assert seen == [(pysky_async.AUTH, "")], "user middleware sees the request before the session resolves it"
    assert server.requests[-1].headers["x-tag"] == "1"
    assert points == 2, "the call log (outermost) sees what inner middleware noted"


async def test_injected_engine_is_used_and_left_open(tmp_path: object) -> None:
    from pysky_async._storage.store import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/shared.sqlite3")
    server = Server()
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    async with AsyncBskyClient(engine=engine, http_client=http, auto_migrate=True) as bsky:
        await bsky.get("a.b.c")
    async with AsyncBskyClient(engine=engine, http_client=http) as again:
        [(count,)] = await again.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
    assert count == 1
    await engine.dispose()
    await http.aclose()


def test_the_call_deadline_and_the_attempt_deadline_come_from_options_or_the_environment() -> None:
    from pysky_async._config import ClientConfig

    env = {"PYSKY_DEADLINE": "30", "PYSKY_ATTEMPT_DEADLINE": "7.5"}
    assert (ClientConfig.from_options(env=env).deadline, ClientConfig.from_options(env=env).attempt_deadline) == (
        30.0, 7.5)
    assert ClientConfig.from_options(env={}).attempt_deadline is None, "by default only the call's deadline bounds"
    assert ClientConfig.from_options(env=env, attempt_deadline=2).attempt_deadline == 2
    with pytest.raises(pysky_async.InvalidInput, match="PYSKY_ATTEMPT_DEADLINE='soon' is not a number"):
        ClientConfig.from_options(env={"PYSKY_ATTEMPT_DEADLINE": "soon"})
