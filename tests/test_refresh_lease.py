"""Single-flight refresh (``_refresh_lease``): the lease row on SQLite and PostgreSQL, no database
lock over a slow token endpoint, one refresh across two stores of one file, and an OAuth refresh
that survives its caller's cancellation. Stub servers: no HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from pysky_async import OAuthSessionExpired, RequestTimeout, _refresh_lease
from pysky_async._oauth._dpop import NonceCache, generate_key
from pysky_async._oauth._secrets import SecretBox
from pysky_async._oauth._server import AuthServer
from pysky_async._oauth._sessions import OAuthSession, OAuthSessionStore
from pysky_async._refresh_lease import SingleFlight, hold_lease
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse
from pysky_async._session import SessionManager
from pysky_async._storage.repositories import LeaseRepository
from pysky_async._storage.store import Store

from .test_session_unit import FakeAuthServer

pytestmark = pytest.mark.anyio


async def test_a_lease_has_one_holder_until_it_is_released_or_expires(store: Store) -> None:
    async with store.transaction() as db:
        assert await LeaseRepository(db).take("session:me", "a", ttl=60)
    async with store.transaction() as db:
        assert not await LeaseRepository(db).take("session:me", "b", ttl=60), "a holds it"
        assert await LeaseRepository(db).take("oauth:me", "b", ttl=60), "another name is free"
    async with store.transaction() as db:
        await LeaseRepository(db).release("session:me", "b")  # not b's: no effect
    async with store.transaction() as db:
        assert not await LeaseRepository(db).take("session:me", "b", ttl=60)
        await LeaseRepository(db).release("session:me", "a")
    async with store.transaction() as db:
        assert await LeaseRepository(db).take("session:me", "b", ttl=-1), "released: b takes it"
    async with store.transaction() as db:
        assert await LeaseRepository(db).take("session:me", "c", ttl=60), "b's lease expired (its holder died)"


async def test_a_waiter_gets_the_lease_when_the_holder_gives_it_back(store: Store) -> None:
    order: list[str] = []
    async with hold_lease(store, "session:me"):
        waiter = asyncio.create_task(_hold_and_note(store, order))
        await asyncio.sleep(0.1)
        order.append("first done")
    await waiter
    assert order == ["first done", "second holds it"]


async def _hold_and_note(store: Store, order: list[str]) -> None:
    async with hold_lease(store, "session:me"):
        order.append("second holds it")


async def test_single_flight_runs_one_task_that_outlives_a_cancelled_caller() -> None:
    flight: SingleFlight[str] = SingleFlight()
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def work() -> str:
        runs.append("ran")
        started.set()
        await release.wait()
        return "done"

    first = asyncio.create_task(flight.run("k", work))
    await started.wait()
    second = asyncio.create_task(flight.run("k", work))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == "done"
    assert runs == ["ran"]


def file_store(tmp_path: Path) -> Store:
    return Store(f"sqlite+aiosqlite:///{tmp_path}/pysky.sqlite3")


async def test_a_trickling_refresh_endpoint_does_not_lock_other_writers_out_of_the_sqlite_file(
        tmp_path: Path) -> None:
    """Issue 19: a refresh held the database lock over the token request, so while a token endpoint
    trickled, every other writer on the SQLite file failed with "database is locked"."""
    store = file_store(tmp_path)
    server = FakeAuthServer()
    sessions = SessionManager(store, server, auth_host="https://entryway.test", identifier="me.test", password="pw")
    old = await sessions.current()
    on_the_wire, writer_done = asyncio.Event(), asyncio.Event()

    async def trickling(request: XrpcRequest) -> XrpcResponse:
        if request.nsid.endswith("refreshSession"):
            on_the_wire.set()
            await writer_done.wait()  # the answer trickles in until the other writer has had its turn
        return await server(request)

    sessions.send = trickling
    refresh = asyncio.create_task(sessions.refresh(old.access_jwt))
    await on_the_wire.wait()
    try:
        connection = sqlite3.connect(tmp_path / "pysky.sqlite3", timeout=0.5)  # another process's writer
        with connection:
            connection.execute("CREATE TABLE app_rows (value TEXT)")
            connection.execute("INSERT INTO app_rows VALUES ('written while the refresh was on the wire')")
        connection.close()
    finally:
        writer_done.set()
    fresh = await refresh
    assert fresh.access_jwt != old.access_jwt and (await sessions.stored()) == fresh
    await store.aclose()


async def test_a_slow_login_does_not_lock_other_writers_out_either(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    await store.ensure_ready()
    server = FakeAuthServer()
    on_the_wire, writer_done = asyncio.Event(), asyncio.Event()

    async def trickling(request: XrpcRequest) -> XrpcResponse:
        on_the_wire.set()
        await writer_done.wait()
        return await server(request)

    sessions = SessionManager(store, trickling, auth_host="https://entryway.test", identifier="me.test", password="pw")
    login = asyncio.create_task(sessions.current())
    await on_the_wire.wait()
    try:
        connection = sqlite3.connect(tmp_path / "pysky.sqlite3", timeout=0.5)
        with connection:
            connection.execute("CREATE TABLE app_rows (value TEXT)")
            connection.execute("INSERT INTO app_rows VALUES ('written while the login was on the wire')")
        connection.close()
    finally:
        writer_done.set()
    assert (await login).did == "did:plc:me"
    await store.aclose()


async def test_two_stores_on_one_file_refresh_once(tmp_path: Path) -> None:
    """Two processes (here: two stores with their own connections) refresh the same stale session at
    once: one token request; the second takes the pair the first stored."""
    server = FakeAuthServer()
    stores = [file_store(tmp_path), file_store(tmp_path)]
    managers = [SessionManager(s, server, auth_host="https://entryway.test", identifier="me.test", password="pw")
                for s in stores]
    old = await managers[0].current()
    await managers[1].current()
    assert server.calls == ["com.atproto.server.createSession"]
    results = await asyncio.gather(*(m.refresh(old.access_jwt) for m in managers))
    assert server.calls == ["com.atproto.server.createSession", "com.atproto.server.refreshSession"]
    assert results[0] == results[1] == await managers[0].stored()
    for s in stores:
        await s.aclose()


# -- OAuth ---------------------------------------------------------------------------

ISSUER = "https://auth.test"


class FakeTokenEndpoint:
    """The parts of ``AuthServerClient`` a refresh uses; rotates the refresh token like the PDS."""

    def __init__(self) -> None:
        self.nonces = NonceCache()
        self.valid = "r0"
        self.requests: list[str] = []
        self.answered = asyncio.Event()
        self.delay = 0.0

    async def metadata(self, issuer: str) -> AuthServer:
        return AuthServer(issuer, f"{issuer}/authorize", f"{issuer}/token", f"{issuer}/par", None)

    async def post(self, server: AuthServer, url: str, form: Mapping[str, str], key: ECKey) -> dict[str, Any]:
        from pysky_async import OAuthError

        self.requests.append(form["refresh_token"])
        if form["refresh_token"] != self.valid:
            raise OAuthError("POST token answered HTTP 400 invalid_grant", error="invalid_grant", status_code=400)
        self.valid = f"r{len(self.requests)}"  # rotated on the server: the old one is dead now
        self.answered.set()
        await asyncio.sleep(self.delay)  # ... and the answer is still on its way
        return {"access_token": f"a{len(self.requests)}", "refresh_token": self.valid, "sub": "did:plc:alice",
                "token_type": "DPoP", "scope": "atproto", "expires_in": 3600}


@pytest.fixture
async def oauth_sessions(tmp_path: Path) -> AsyncIterator[tuple[OAuthSessionStore, FakeTokenEndpoint]]:
    store = file_store(tmp_path)
    server = FakeTokenEndpoint()
    sessions = OAuthSessionStore(store, SecretBox(None), server, "http://localhost")  # type: ignore[arg-type]
    await sessions.save(OAuthSession(did="did:plc:alice", handle="alice.test", pds_endpoint="https://pds.test",
                                     issuer=ISSUER, scope="atproto", access_token="a0", refresh_token="r0",
                                     dpop_key=generate_key(),
                                     expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)))
    yield sessions, server
    await store.aclose()


async def test_an_oauth_refresh_whose_caller_is_cancelled_keeps_the_user_logged_in(
        oauth_sessions: tuple[OAuthSessionStore, FakeTokenEndpoint]) -> None:
    """Issue 19 (5 of 5): a caller cancelled during the token request rolled the rotated refresh token
    back; the next call replayed the old one, got invalid_grant, and the session was deleted."""
    sessions, server = oauth_sessions
    server.delay = 0.05
    caller = asyncio.create_task(sessions.refresh("did:plc:alice", "a0"))
    await server.answered.wait()
    caller.cancel()  # the web framework's client went away
    with pytest.raises(asyncio.CancelledError):
        await caller
    server.delay = 0.0
    after = await sessions.refresh("did:plc:alice", "a0")  # the next request, with what it had
    assert after.access_token == "a1" and after.refresh_token == "r1"
    assert server.requests == ["r0"], "one token request; the old refresh token was never replayed"
    sessions._current.clear()  # another worker: reads the database
    stored = await sessions.load("did:plc:alice")
    assert stored.refresh_token == "r1", "the rotated refresh token was stored"
    again = await sessions.refresh("did:plc:alice", "a1")
    assert again.refresh_token == "r2" and server.requests == ["r0", "r1"]


async def test_a_dead_oauth_grant_still_logs_the_user_out(
        oauth_sessions: tuple[OAuthSessionStore, FakeTokenEndpoint]) -> None:
    sessions, server = oauth_sessions
    server.valid = "revoked"
    with pytest.raises(OAuthSessionExpired, match="log in again"):
        await sessions.refresh("did:plc:alice", "a0")
    with pytest.raises(OAuthSessionExpired, match="logged out"):
        await sessions.refresh("did:plc:alice", "a0")


async def test_a_refresh_that_gets_no_answer_fails_within_the_deadline_and_frees_the_account(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_refresh_lease, "NETWORK_DEADLINE", 0.2)
    store = file_store(tmp_path)
    server = FakeAuthServer()
    sessions = SessionManager(store, server, auth_host="https://entryway.test", identifier="me.test", password="pw")
    old = await sessions.current()
    never = asyncio.Event()

    async def silent(request: XrpcRequest) -> XrpcResponse:
        await never.wait()
        return await server(request)

    sessions.send = silent
    with pytest.raises(RequestTimeout, match=r"no answer within 0\.2 s"):
        await sessions.refresh(old.access_jwt)
    sessions.send = server
    fresh = await sessions.refresh(old.access_jwt)  # the lease was given back: no wait for its expiry
    assert fresh.access_jwt != old.access_jwt
    await store.aclose()
