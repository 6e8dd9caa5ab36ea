"""No secret in any log line, at any level, whatever the configuration: DEBUG on every logger
while sessions (app-password and OAuth, no ``encryption_key``), a login in progress and call-log
rows are stored and read back, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import traceback
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from pysky_async import PyskyError
from pysky_async._call_log import CallLogMiddleware, CallLogWriter
from pysky_async._oauth._dpop import NonceCache, generate_key, key_to_json
from pysky_async._oauth._secrets import SecretBox
from pysky_async._oauth._sessions import OAuthSession, OAuthSessionStore
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse
from pysky_async._storage.oauth_repository import OAuthStateRepository
from pysky_async._storage.repositories import SessionRepository
from pysky_async._storage.store import Store, resolve_database_url

from .conftest import fake_jwt, make_response

pytestmark = pytest.mark.anyio

LOGGERS = ("", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.engine.Engine", "sqlalchemy.pool", "aiosqlite",
           "asyncpg", "httpx", "httpcore", "pysky_async")


class Everything(logging.Handler):
    """Keeps each record's message, arguments, exception and stack, as any handler could show them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.shown: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), repr(record.msg), repr(record.args), record.stack_info or ""]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        parts.append(record.exc_text or "")
        self.shown.append((record.name, "\n".join(parts)))


@pytest.fixture
def every_log_line() -> Iterator[Everything]:
    handler = Everything()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def secret_values() -> dict[str, str]:
    key = generate_key()
    return {
        "refresh_token": "ref-" + secrets.token_urlsafe(32),  # opaque, not a JWT
        "oauth_access_token": fake_jwt(sub="did:plc:oauth"),
        "dpop_private_d": json.loads(key_to_json(key))["d"],
        "pkce_verifier": secrets.token_urlsafe(48),
        "client_assertion": fake_jwt(sub="https://app.example/client-metadata.json"),
        "app_password": "-".join(secrets.token_hex(2) for _ in range(4)),
        "access_jwt": fake_jwt(sub="did:plc:app"),
        "refresh_jwt": fake_jwt(sub="did:plc:app", lifetime=90 * 86400),
        "authorization_code": "cod-" + secrets.token_urlsafe(24),
    }


@pytest.fixture(params=["own engine", "user's engine with echo"])
async def store(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Store]:
    if request.param == "own engine":
        store = Store(database_url, auto_migrate=True)
    else:  # an engine the application made itself, parameters not hidden, echo on
        engine = create_async_engine(resolve_database_url(database_url), echo="debug")
        store = Store(engine=engine, auto_migrate=True)
    await store.ensure_ready()
    yield store
    await store.aclose()
    if request.param != "own engine":
        await store.engine.dispose()


async def store_and_read_everything(store: Store, s: dict[str, str]) -> None:
    key = generate_key()
    s["dpop_private_d"] = json.loads(key_to_json(key))["d"]
    server: Any = SimpleNamespace(nonces=NonceCache())
    session = OAuthSession(did="did:plc:oauth", handle="user.test", pds_endpoint="https://pds.test",
                           issuer="https://pds.test", scope="atproto transition:generic",
                           access_token=s["oauth_access_token"], refresh_token=s["refresh_token"], dpop_key=key,
                           expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30))
    await OAuthSessionStore(store, SecretBox(None), server, "http://localhost").save(session)
    loaded = await OAuthSessionStore(store, SecretBox(None), server, "http://localhost").load("did:plc:oauth")
    assert loaded.refresh_token == s["refresh_token"]

    async with store.transaction() as db:
        await OAuthStateRepository(db).add(state="st-1", issuer="https://pds.test", did=None, handle=None,
                                           pds_endpoint=None, redirect_uri="http://127.0.0.1/cb",
                                           pkce_verifier=s["pkce_verifier"], dpop_key=key_to_json(key),
                                           app_state=None)
    async with store.transaction() as db:
        login = await OAuthStateRepository(db).take("st-1")
    assert login is not None and login.pkce_verifier == s["pkce_verifier"]

    async with store.transaction() as db:
        await SessionRepository(db).save("app:user.test", did="did:plc:app", handle="user.test",
                                         pds_endpoint="https://pds.test", access_jwt=s["access_jwt"],
                                         refresh_jwt=s["refresh_jwt"])
    async with store.transaction() as db:
        row = await SessionRepository(db).get("app:user.test")
    assert row is not None and row.refresh_jwt == s["refresh_jwt"]

    writer = CallLogWriter(store, interval=60)
    middleware = CallLogMiddleware(writer)

    async def answered(request: XrpcRequest) -> XrpcResponse:
        return make_response(200, {"accessJwt": s["access_jwt"], "refreshJwt": s["refresh_jwt"]})

    async def refused(request: XrpcRequest) -> XrpcResponse:
        raise PyskyError("the token endpoint refused the code")

    await middleware(XrpcRequest("POST", "com.atproto.server.createSession", "https://pds.test",
                                 json={"identifier": "user.test", "password": s["app_password"]}), answered)
    token_request = XrpcRequest("POST", "oauth.token", "https://pds.test", path="/oauth/token", json={
        "grant_type": "authorization_code", "code": s["authorization_code"], "code_verifier": s["pkce_verifier"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": s["client_assertion"], "refresh_token": s["refresh_token"]})
    with pytest.raises(PyskyError):
        await middleware(token_request, refused)
    await writer.aclose()
    await store.execute_sql("SELECT * FROM bsky_api_call_log")
    await store.execute_sql("SELECT * FROM bsky_oauth_session")


async def test_no_secret_reaches_any_log_line(store: Store, every_log_line: Everything) -> None:
    s = secret_values()
    await store_and_read_everything(store, s)
    names = {name for name, _ in every_log_line.shown}
    assert {"sqlalchemy.engine.Engine"} <= names, "the engine's DEBUG lines must be captured"
    if store.dialect == "sqlite":
        assert "aiosqlite" in names, "aiosqlite's DEBUG lines must be captured"
    leaks = sorted({(what, name, shown[:400]) for name, shown in every_log_line.shown
                    for what, value in s.items() if value in shown})
    assert sorted({what for what, _, _ in leaks}) == [], leaks[:5]


async def test_call_log_rows_keep_no_secret_of_an_oauth_token_request(store: Store) -> None:
    s = secret_values()
    await store_and_read_everything(store, s)
    rows = await store.execute_sql("SELECT * FROM bsky_api_call_log")
    assert len(rows) == 2
    stored = " ".join(str(value) for row in rows for value in row)
    assert [what for what in ("app_password", "authorization_code", "pkce_verifier", "client_assertion",
                              "refresh_token", "access_jwt", "refresh_jwt") if s[what] in stored] == []


def test_a_private_jwk_is_redacted_wherever_it_appears() -> None:
    from pysky_async._redact import REDACTED, redact

    jwk = json.loads(key_to_json(generate_key()))
    assert redact({"jwk": jwk})["jwk"] == {**jwk, "d": REDACTED}
    assert redact({"d": "a date, not a key"}) == {"d": "a date, not a key"}
