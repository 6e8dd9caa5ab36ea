"""The OAuth client flow against the reference PDS: discovery, PAR, PKCE, state, DPoP,
token exchange, issuer check, acting as the user, refresh, revocation on logout."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import text

from pysky_async import AsyncBskyClient, InvalidInput, NotAuthenticated, OAuthApp, OAuthSessionExpired
from pysky_async._oauth._dpop import make_proof
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse
from tests.realnet.pds import Account, PdsServer

from .conftest import REDIRECT_URI, OAuthHarness, client_options

pytestmark = pytest.mark.anyio


async def test_login_post_and_list_back_as_the_user(oauth: OAuthHarness, pds_account: Account) -> None:
    login = await oauth.login(pds_account, app_state="next=/home")
    assert login.did == pds_account.did
    assert login.app_state == "next=/home"
    assert login.session.handle == pds_account.handle
    assert login.session.issuer == oauth.pds.base_url
    assert "atproto" in login.session.scope.split()

    user = await oauth.bsky.oauth.client_for(login.did)
    assert user.did == pds_account.did
    me = await user.get("com.atproto.server.getSession")
    assert me.did == pds_account.did
    ref = await user.create_post("posted through OAuth")
    records = [r async for r in user.list_records("app.bsky.feed.post")]
    assert [r.uri for r in records] == [ref.uri]
    assert records[0].value["text"] == "posted through OAuth"

    # the calls ran through the shared pipeline: logged under the user's DID, with no secrets
    await oauth.bsky.flush_call_log()
    rows = await oauth.bsky.store.execute_sql(
        "SELECT endpoint, request_did, params, exception_text FROM bsky_api_call_log")
    mine = [row for row in rows if row[1] == pds_account.did]
    assert {"com.atproto.server.getSession", "com.atproto.repo.createRecord",
            "com.atproto.repo.listRecords"} <= {row[0] for row in mine}
    session = await oauth.bsky.oauth.session(login.did)
    assert session.access_token not in repr(rows)
    assert session.access_token not in repr(session)
    private = session.dpop_key.as_dict(private=True)["d"]
    assert isinstance(private, str) and private not in repr(session)
    assert session.refresh_token and session.refresh_token not in repr(session)


async def test_tokens_and_keys_at_rest_are_encrypted_with_the_apps_key(
        oauth: OAuthHarness, pds_account: Account) -> None:
    key = oauth.bsky.oauth.generate_encryption_key()
    oauth.bsky.oauth.configure(oauth.bsky.oauth.app, encryption_key=key)
    login = await oauth.login(pds_account)
    rows = await oauth.bsky.store.execute_sql(
        "SELECT access_token, refresh_token, dpop_key FROM bsky_oauth_session")
    assert len(rows) == 1
    assert all(value.startswith("fernet:") for value in rows[0])
    assert login.session.access_token not in repr(rows)
    user = await oauth.bsky.oauth.client_for(login.did)
    assert (await user.get("com.atproto.server.getSession")).did == pds_account.did


async def test_expired_access_token_is_refreshed_and_the_rotated_token_stored(
        oauth: OAuthHarness, pds_account: Account) -> None:
    login = await oauth.login(pds_account)
    before = await oauth.bsky.oauth.session(login.did)
    user = await oauth.bsky.oauth.client_for(login.did)
    tokens_before = oauth.pds.path_request_count("/oauth/token")
    # force expiry: the stored expiry is in the past and this process forgets its copy
    async with oauth.bsky.store.transaction() as db:
        await db.execute(text("UPDATE bsky_oauth_session SET expires_at = :t"),
                         {"t": dt.datetime(2000, 1, 1)})
    oauth.bsky.oauth._c.sessions._current.clear()

    assert (await user.get("com.atproto.server.getSession")).did == pds_account.did
    assert oauth.pds.path_request_count("/oauth/token") == tokens_before + 1
    async with oauth.bsky.store.transaction() as db:
        row = (await db.execute(text("SELECT refresh_token, access_token, version FROM bsky_oauth_session"))).one()
    assert row.refresh_token != before.refresh_token and row.access_token != before.access_token
    assert row.version == 2


async def test_logout_revokes_the_grant_at_the_server(oauth: OAuthHarness, pds_account: Account) -> None:
    login = await oauth.login(pds_account)
    session = await oauth.bsky.oauth.session(login.did)
    await oauth.bsky.oauth.logout(login.did)
    assert oauth.pds.path_request_count("/oauth/revoke") >= 1
    assert await oauth.bsky.store.execute_sql("SELECT did FROM bsky_oauth_session") == []
    with pytest.raises(NotAuthenticated, match="no OAuth session"):
        await oauth.bsky.oauth.client_for(login.did)
    # the revoked refresh token no longer works at the server
    c = oauth.bsky.oauth._c
    server = await c.server.metadata(session.issuer)
    with pytest.raises(Exception, match="invalid_grant"):
        await c.server.post(server, server.token_endpoint,
                            {"grant_type": "refresh_token", "refresh_token": session.refresh_token or ""},
                            session.dpop_key)
    # and neither does the access token at the PDS
    url = f"{session.pds_endpoint}/xrpc/com.atproto.server.getSession"
    for _ in range(2):
        proof = make_proof(session.dpop_key, "GET", url, nonce=oauth.bsky.oauth.nonces.get(url),
                           access_token=session.access_token)
        response = await oauth.bsky.http.get(url, headers={"Authorization": f"DPoP {session.access_token}",
                                                           "DPoP": proof})
        oauth.bsky.oauth.nonces.update(url, response.headers.get("DPoP-Nonce"))
    assert response.status_code == 401


async def test_a_refresh_token_used_elsewhere_ends_the_session_cleanly(
        oauth: OAuthHarness, pds_account: Account) -> None:
    login = await oauth.login(pds_account)
    session = await oauth.bsky.oauth.session(login.did)
    c = oauth.bsky.oauth._c
    server = await c.server.metadata(session.issuer)
    # someone else (a leaked copy, a buggy worker) uses the refresh token behind our back
    await c.server.post(server, server.token_endpoint,
                        {"grant_type": "refresh_token", "refresh_token": session.refresh_token or ""},
                        session.dpop_key)
    with pytest.raises(OAuthSessionExpired, match="log in again") as caught:
        await c.sessions.refresh(login.did, session.access_token)
    assert caught.value.error == "invalid_grant"
    assert await oauth.bsky.store.execute_sql("SELECT did FROM bsky_oauth_session") == []


async def test_the_sqlite_file_is_readable_by_its_owner_only(pds: PdsServer, pds_account: Account,
                                                             tmp_path: Path) -> None:
    database = tmp_path / "service.sqlite3"
    async with AsyncBskyClient(**client_options(pds, f"sqlite+aiosqlite:///{database}")) as bsky:
        bsky.oauth.configure(OAuthApp.loopback(REDIRECT_URI))
        await OAuthHarness(bsky, pds).login(pds_account)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


async def test_an_oauth_user_client_refuses_login_with_session(oauth: OAuthHarness, pds_account: Account) -> None:
    login = await oauth.login(pds_account)
    user = await oauth.bsky.oauth.client_for(login.did)
    with pytest.raises(InvalidInput, match=r"comes from bsky\.oauth"):
        await user.login_with_session({"did": "x", "handle": "h", "pds_endpoint": "p", "access_jwt": "a",
                                       "refresh_jwt": "r"})


async def test_a_refresh_whose_caller_is_cancelled_keeps_the_user_logged_in(
        oauth: OAuthHarness, pds_account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19 (5 of 5): a web request cancelled while its token request was on the wire rolled the
    rotated refresh token back; the next call replayed the old one (invalid_grant) and the user was
    logged out."""
    login = await oauth.login(pds_account)
    before = await oauth.bsky.oauth.session(login.did)
    c = oauth.bsky.oauth._c
    rotated = asyncio.Event()
    real_post = c.server.post

    async def answer_on_its_way(*args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = await real_post(*args, **kwargs)
        rotated.set()  # the server has rotated the refresh token; its answer is still in transit
        await asyncio.sleep(0.2)
        return answer

    monkeypatch.setattr(c.server, "post", answer_on_its_way)
    caller = asyncio.create_task(c.sessions.refresh(login.did, before.access_token))
    await rotated.wait()
    caller.cancel()  # the user's browser went away
    with pytest.raises(asyncio.CancelledError):
        await caller
    monkeypatch.undo()
    tokens = oauth.pds.path_request_count("/oauth/token")

    user = await oauth.bsky.oauth.client_for(login.did)  # the next request
    assert (await user.get("com.atproto.server.getSession")).did == pds_account.did
    c.sessions._current.clear()  # another worker, from the database: the rotated token was stored
    stored = await oauth.bsky.oauth.session(login.did)
    assert stored.refresh_token != before.refresh_token
    again = await c.sessions.refresh(login.did, stored.access_token)  # and it is the live one
    assert again.refresh_token != stored.refresh_token
    assert oauth.pds.path_request_count("/oauth/token") == tokens + 1


async def test_a_user_clients_logout_revokes_and_forgets_the_session(
        oauth: OAuthHarness, pds_account: Account) -> None:
    login = await oauth.login(pds_account)
    user = await oauth.bsky.oauth.client_for(login.did)
    assert user.did == login.did and user.sessions.pds_endpoint == oauth.pds.base_url
    await user.logout()
    assert oauth.pds.path_request_count("/oauth/revoke") >= 1
    assert await oauth.bsky.store.execute_sql("SELECT did FROM bsky_oauth_session") == []


async def test_authorization_server_calls_ride_the_pipeline_and_log_no_secret(
        oauth: OAuthHarness, pds_account: Account) -> None:
    """Issue 19: PAR, token, revocation and metadata calls went around the pipeline with raw httpx
    (no call-log rows, other bounds). Now they are logged, and no form value or proof is."""
    c = oauth.bsky.oauth  # configured by the fixture
    sent: list[XrpcRequest] = []
    server = c._c.server
    real_send = server.send

    async def recording(request: XrpcRequest) -> XrpcResponse:
        sent.append(request)
        return await real_send(request)

    server.send = recording
    login = await oauth.login(pds_account)
    session = await c.session(login.did)
    await c._c.sessions.refresh(login.did, session.access_token)
    await c.logout(login.did)
    await oauth.bsky.flush_call_log()

    rows = await oauth.bsky.store.execute_sql("SELECT * FROM bsky_api_call_log")
    endpoints = {row.endpoint for row in rows}
    assert {"oauth.protectedResource", "oauth.authorizationServer", "oauth.par", "oauth.token",
            "oauth.revoke"} <= endpoints
    secrets: set[str] = set()
    for request in sent:
        body = request.content or b""
        assert isinstance(body, bytes), "the OAuth calls send their body whole"
        secrets.update(value for _, value in parse_qsl(body.decode()) if len(value) > 20)
        secrets.update(value for name, value in request.headers.items() if name.lower() == "dpop")
    assert any(request.nsid == "oauth.token" for request in sent) and len(secrets) >= 5
    dump = "\n".join(str(tuple(row)) for row in rows)
    leaked = [secret[:12] for secret in secrets if secret in dump]
    assert leaked == [], "a token, verifier, code or DPoP proof reached the call log"
    assert "eyJ" not in dump
