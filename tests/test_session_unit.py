"""SessionManager and SessionMiddleware with stub handlers: no HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pysky_async import LoginFailed, NotAuthenticated, StorageError
from pysky_async._account import Session
from pysky_async._identity import pds_endpoint_from_did_doc
from pysky_async._middleware import Pipeline
from pysky_async._request import AUTH, XrpcRequest
from pysky_async._response import XrpcResponse
from pysky_async._session import SessionManager, SessionMiddleware
from pysky_async._storage.repositories import SessionRepository
from pysky_async._storage.store import Store

from .conftest import fake_jwt, make_response

pytestmark = pytest.mark.anyio

DID_DOC = {
    "id": "did:plc:me",
    "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                 "serviceEndpoint": "https://pds.example.com/"}],
}


class FakeAuthServer:
    """Answers createSession/refreshSession like the reference PDS."""

    def __init__(self, *, lifetime: float = 3600, password: str = "pw") -> None:
        self.lifetime = lifetime
        self.password = password
        self.calls: list[str] = []
        self.refreshed_with: list[str] = []
        self.refresh_dead = False

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        self.calls.append(request.nsid)
        await asyncio.sleep(0.01)
        if request.nsid.endswith("createSession"):
            if request.json["password"] != self.password:
                return make_response(401, {"error": "AuthenticationRequired",
                                           "message": "Invalid identifier or password"})
        else:
            self.refreshed_with.append(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if request.nsid.endswith("refreshSession") and self.refresh_dead:
            return make_response(400, {"error": "ExpiredToken", "message": "Token has been revoked"})
        return make_response(200, {"did": "did:plc:me", "handle": "me.test", "didDoc": DID_DOC,
                                   "accessJwt": fake_jwt(lifetime=self.lifetime),
                                   "refreshJwt": fake_jwt(lifetime=90 * 86400)})


@pytest.fixture
async def memory_store() -> AsyncIterator[Store]:
    store = Store("sqlite+aiosqlite:///:memory:")
    yield store
    await store.aclose()


def manager(store: Store, server: FakeAuthServer, password: str | None = "pw",
            identifier: str | None = "me.test") -> SessionManager:
    return SessionManager(store, server, auth_host="https://entryway.test",
                          identifier=identifier, password=password)


def test_pds_endpoint_comes_from_the_did_document() -> None:
    assert pds_endpoint_from_did_doc(DID_DOC) == "https://pds.example.com"
    other = {"service": [{"id": "#other", "type": "X", "serviceEndpoint": "https://x"}]}
    assert pds_endpoint_from_did_doc(other) is None
    assert pds_endpoint_from_did_doc(None) is None


async def test_authenticated_request_goes_to_the_pds_with_the_token(memory_store: Store) -> None:
    server = FakeAuthServer()
    middleware = SessionMiddleware(manager(memory_store, server))
    seen: list[XrpcRequest] = []

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        seen.append(request)
        return make_response(200, {"ok": True})

    await middleware(XrpcRequest("GET", "app.bsky.feed.getTimeline", AUTH), call_next)
    await middleware(XrpcRequest("GET", "app.bsky.feed.getTimeline", AUTH), call_next)
    assert server.calls == ["com.atproto.server.createSession"], "login is lazy and happens once"
    assert seen[0].host == "https://pds.example.com"
    assert seen[0].headers["Authorization"].startswith("Bearer ey")
    assert seen[0].context.did == "did:plc:me"


async def test_public_request_carries_no_session(memory_store: Store) -> None:
    server = FakeAuthServer()
    middleware = SessionMiddleware(manager(memory_store, server))

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        assert "Authorization" not in request.headers
        return make_response(200, {})

    await middleware(XrpcRequest("GET", "app.bsky.actor.getProfile", "https://public.test"), call_next)
    assert server.calls == []


async def test_expired_token_refreshes_once_and_replays(memory_store: Store) -> None:
    server = FakeAuthServer()
    mgr = manager(memory_store, server)
    middleware = SessionMiddleware(mgr)
    await mgr.current()
    assert mgr.session is not None
    first_token = mgr.session.access_jwt
    attempts: list[str] = []

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        attempts.append(token)
        if token == first_token:
            return make_response(400, {"error": "ExpiredToken", "message": "Token has expired"})
        return make_response(200, {"ok": True})

    pipeline = Pipeline([middleware], call_next)  # the pipeline sends the call again after the refresh
    requests = [XrpcRequest("GET", "a.b.c", AUTH) for _ in range(50)]
    responses = await asyncio.gather(*(pipeline(r) for r in requests))
    assert all(r.status_code == 200 for r in responses)
    assert server.calls.count("com.atproto.server.refreshSession") == 1
    assert len(attempts) == 100
    assert all(r.context.session_was_refreshed for r in requests)


async def test_expiring_token_is_refreshed_before_the_call(memory_store: Store) -> None:
    server = FakeAuthServer(lifetime=1)  # within 10% of its lifetime from the start? no: 1 s left
    mgr = manager(memory_store, server)
    await mgr.current()
    server.lifetime = 3600
    await asyncio.sleep(1.1)
    await asyncio.gather(*(mgr.current() for _ in range(20)))
    assert server.calls == ["com.atproto.server.createSession", "com.atproto.server.refreshSession"]


async def test_dead_refresh_token_logs_in_again(memory_store: Store) -> None:
    server = FakeAuthServer()
    mgr = manager(memory_store, server)
    session = await mgr.current()
    server.refresh_dead = True
    new = await mgr.refresh(session.access_jwt)
    assert new.access_jwt != session.access_jwt
    assert server.calls == ["com.atproto.server.createSession", "com.atproto.server.refreshSession",
                            "com.atproto.server.createSession"]


async def test_dead_refresh_token_without_password_says_what_to_set(memory_store: Store) -> None:
    server = FakeAuthServer()
    session = await manager(memory_store, server).current()
    server.refresh_dead = True
    no_password = manager(memory_store, server, password=None)
    await no_password.current()  # the stored session is reused
    with pytest.raises(NotAuthenticated, match="BSKY_AUTH_PASSWORD"):
        await no_password.refresh(session.access_jwt)


async def test_no_credentials_raises_not_authenticated(memory_store: Store) -> None:
    with pytest.raises(NotAuthenticated, match="BSKY_AUTH_USERNAME"):
        await manager(memory_store, FakeAuthServer(), identifier=None, password=None).current()


async def test_wrong_password_is_a_login_failure(memory_store: Store) -> None:
    with pytest.raises(LoginFailed, match="app password"):
        await manager(memory_store, FakeAuthServer(password="right"), password="wrong").current()
    assert await memory_store.execute_sql("SELECT * FROM bsky_session") == []


async def test_second_manager_reuses_the_stored_session(memory_store: Store) -> None:
    server = FakeAuthServer()
    await manager(memory_store, server).current()
    again = await manager(memory_store, server).current()
    assert again.did == "did:plc:me"
    assert server.calls == ["com.atproto.server.createSession"]
    [row] = await memory_store.execute_sql("SELECT * FROM bsky_session")
    assert "pw" not in [str(v) for v in row]


async def test_a_refresh_cancelled_half_way_still_stores_the_rotated_tokens(memory_store: Store) -> None:
    """Bluesky's refresh tokens are single use: once the server has rotated it, the new pair must be
    kept even if the caller that started the refresh is cancelled (a timeout, a client gone)."""
    server = FakeAuthServer(lifetime=3600)
    sessions = manager(memory_store, server)
    old = await sessions.current()
    answered = asyncio.Event()
    rotated: list[XrpcResponse] = []

    async def slow_refresh(request: XrpcRequest) -> XrpcResponse:
        response = await FakeAuthServer.__call__(server, request)
        if request.nsid.endswith("refreshSession"):
            rotated.append(response)  # the server has rotated the token now
            answered.set()
            await asyncio.sleep(0.2)  # ... and the answer is still on its way when the caller gives up
        return response

    sessions.send = slow_refresh
    caller = asyncio.create_task(sessions.refresh(old.access_jwt))
    await answered.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0.4)
    new_refresh = rotated[0].raw["refreshJwt"]
    assert sessions.session is not None and sessions.session.refresh_jwt == new_refresh
    stored = await sessions.stored()
    assert stored is not None and stored.refresh_jwt == new_refresh, "the rotated token was stored"


async def test_a_refreshed_pair_the_database_cannot_store_is_kept_in_memory(
        memory_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Refresh tokens are single use: once the server rotated one, losing the new pair logs the account out."""
    server = FakeAuthServer()
    mgr = manager(memory_store, server, password=None)
    mgr.renew_on_refusal_interval = 0  # this test has valid sessions "refused" twice in a few seconds
    await mgr.adopt(Session("did:plc:me", "me.test", "https://pds.test", fake_jwt(), fake_jwt(lifetime=86400)))
    assert mgr.session is not None
    stale = mgr.session.access_jwt

    async def database_down(*args: object, **kwargs: object) -> None:
        raise StorageError("the database is unreachable")

    monkeypatch.setattr(SessionRepository, "save", database_down)
    await asyncio.sleep(1.1)  # tokens carry whole-second iat: the refreshed pair is issued later
    refreshed = await mgr.refresh(stale)
    assert server.calls == ["com.atproto.server.refreshSession"]
    assert refreshed.access_jwt != stale and mgr.session is refreshed, "the rotated pair is in use"
    assert "could not be stored" in caplog.text
    monkeypatch.undo()  # the database is back: the next refresh uses the pair in memory, not the stale row
    await asyncio.sleep(1.1)  # a later iat
    again = await mgr.refresh(refreshed.access_jwt)
    assert server.calls == ["com.atproto.server.refreshSession"] * 2
    assert server.refreshed_with[-1] == refreshed.refresh_jwt
    assert (await mgr.stored()) == again


async def test_an_endpoint_that_always_refuses_costs_one_renewal_not_one_per_call(memory_store: Store) -> None:
    """Issue 19: an endpoint answering 401 to every token while the password is accepted cost one
    refresh or login per call (21 for 20 calls). One renewal a minute, then a clear error."""
    server = FakeAuthServer()
    mgr = manager(memory_store, server)
    pipeline = Pipeline([SessionMiddleware(mgr)], refuse_everything)
    errors = []
    for _ in range(20):
        try:
            response = await pipeline(XrpcRequest("GET", "a.b.c", AUTH))
        except NotAuthenticated as exc:
            errors.append(str(exc))
        else:
            assert response.status_code == 401  # the replay after the one renewal: the server's answer
    assert server.calls == ["com.atproto.server.createSession", "com.atproto.server.refreshSession"]
    assert len(errors) == 19 and "at most once every 60 s" in errors[0]


async def test_a_refused_session_is_renewed_again_after_a_minute(memory_store: Store) -> None:
    server = FakeAuthServer()
    mgr = manager(memory_store, server)
    pipeline = Pipeline([SessionMiddleware(mgr)], refuse_everything)
    await pipeline(XrpcRequest("GET", "a.b.c", AUTH))
    with pytest.raises(NotAuthenticated):
        await pipeline(XrpcRequest("GET", "a.b.c", AUTH))
    assert mgr._renewed_on_refusal is not None
    token, at = mgr._renewed_on_refusal
    mgr._renewed_on_refusal = (token, at - 61)  # a minute later
    await pipeline(XrpcRequest("GET", "a.b.c", AUTH))
    assert server.calls.count("com.atproto.server.refreshSession") == 2


async def refuse_everything(request: XrpcRequest) -> XrpcResponse:
    return make_response(401, {"error": "AuthenticationRequired", "message": "Invalid token"})


def test_only_calls_that_cannot_happen_twice_are_sent_again_after_the_account_was_forgotten() -> None:
    from pysky_async._session import _safe_to_send_again

    def post(nsid: str, body: dict[str, object]) -> XrpcRequest:
        return XrpcRequest("POST", nsid, AUTH, json=body)

    create = {"$type": "com.atproto.repo.applyWrites#create", "collection": "c.d.e", "value": {}}
    assert _safe_to_send_again(XrpcRequest("GET", "a.b.c", AUTH))
    assert _safe_to_send_again(post("com.atproto.repo.putRecord", {}))
    assert _safe_to_send_again(post("com.atproto.repo.deleteRecord", {}))
    assert _safe_to_send_again(post("com.atproto.repo.createRecord", {"rkey": "3k"}))
    assert not _safe_to_send_again(post("com.atproto.repo.createRecord", {}))
    assert _safe_to_send_again(post("com.atproto.repo.applyWrites", {"writes": [{**create, "rkey": "3k"}]}))
    assert not _safe_to_send_again(post("com.atproto.repo.applyWrites", {"writes": [create]}))
    assert not _safe_to_send_again(post("app.example.doSomething", {}))


async def test_a_wrong_password_is_refused_even_with_a_stored_session(memory_store: Store) -> None:
    """Issue 19: AsyncBskyClient(password="wrong") with a stored session never checked the password."""
    server = FakeAuthServer(password="pw")
    await manager(memory_store, server, password="pw").current()
    with pytest.raises(LoginFailed, match="refused the login"):
        await manager(memory_store, server, password="wrong").current()
    assert server.calls == ["com.atproto.server.createSession"] * 2
    reused = await manager(memory_store, server, password="pw").current()  # the stored session is still there
    assert server.calls == ["com.atproto.server.createSession"] * 2 and reused.did == "did:plc:me"
    [(check,)] = await memory_store.execute_sql("SELECT password_check FROM bsky_session")
    assert check.startswith("scrypt$") and "pw" not in check.split("$")


async def test_a_changed_password_logs_in_with_it_and_is_remembered(memory_store: Store) -> None:
    server = FakeAuthServer(password="old")
    await manager(memory_store, server, password="old").current()
    server.password = "new"  # the user changed (or re-issued) the app password
    await manager(memory_store, server, password="new").current()
    await manager(memory_store, server, password="new").current()
    assert server.calls == ["com.atproto.server.createSession"] * 2


async def test_a_session_adopted_from_elsewhere_is_used_whatever_the_password(memory_store: Store) -> None:
    server = FakeAuthServer()
    await manager(memory_store, server, password="pw").current()
    adopted = Session("did:plc:me", "me.test", "https://pds.test", fake_jwt(), fake_jwt(lifetime=86400))
    await manager(memory_store, server, password=None).adopt(adopted)
    assert await manager(memory_store, server, password="other").current() == adopted
    assert server.calls == ["com.atproto.server.createSession"]
