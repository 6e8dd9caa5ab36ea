"""Bad input at every step: clear PyskyErrors, and nothing stored half-way."""

from __future__ import annotations

import pytest

from pysky_async import OAuthCallbackError
from pysky_async._identity import pds_endpoint_from_did_doc
from tests.realnet.pds import Account, PdsServer

from .conftest import OAuthHarness, query
from .provider_ui import ProviderUi, approve

pytestmark = pytest.mark.anyio


async def stored_sessions(oauth: OAuthHarness) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await oauth.bsky.store.execute_sql("SELECT did, version FROM bsky_oauth_session")]


async def test_wrong_state_is_refused_and_the_real_login_still_completes(
        oauth: OAuthHarness, pds_account: Account) -> None:
    url = await oauth.bsky.oauth.start(pds_account.handle)
    params = query(await approve(url, pds_account.handle, pds_account.password))
    with pytest.raises(OAuthCallbackError, match="unknown or already used OAuth state"):
        await oauth.bsky.oauth.callback({**params, "state": "forged"})
    with pytest.raises(OAuthCallbackError, match="no state"):
        await oauth.bsky.oauth.callback({k: v for k, v in params.items() if k != "state"})
    assert await stored_sessions(oauth) == []
    login = await oauth.bsky.oauth.callback(params)
    assert login.did == pds_account.did


async def test_a_replayed_callback_is_refused_and_changes_nothing(oauth: OAuthHarness, pds_account: Account) -> None:
    url = await oauth.bsky.oauth.start(pds_account.handle)
    params = query(await approve(url, pds_account.handle, pds_account.password))
    await oauth.bsky.oauth.callback(params)
    stored = await stored_sessions(oauth)
    with pytest.raises(OAuthCallbackError, match="already used"):
        await oauth.bsky.oauth.callback(params)
    assert await stored_sessions(oauth) == stored == [(pds_account.did, 1)]


async def test_a_code_replayed_into_another_login_is_refused_by_the_server(
        oauth: OAuthHarness, pds_account: Account) -> None:
    first = await oauth.bsky.oauth.start(pds_account.handle)
    second = await oauth.bsky.oauth.start(pds_account.handle)
    params = query(await approve(first, pds_account.handle, pds_account.password))
    assert "state" not in query(second)  # the second login's state is only in the store
    states = [row[0] for row in await oauth.bsky.store.execute_sql("SELECT state FROM bsky_oauth_state")]
    forged = {**params, "state": next(s for s in states if s != params["state"])}
    with pytest.raises(OAuthCallbackError, match="code was not accepted") as caught:
        await oauth.bsky.oauth.callback(forged)
    assert caught.value.error == "invalid_grant"
    assert await stored_sessions(oauth) == []


async def test_an_error_from_the_server_is_reported(oauth: OAuthHarness, pds_account: Account) -> None:
    url = await oauth.bsky.oauth.start(pds_account.handle)
    async with ProviderUi(url) as ui:
        params = query(await ui.reject())
    with pytest.raises(OAuthCallbackError, match="access_denied") as caught:
        await oauth.bsky.oauth.callback(params)
    assert caught.value.error == "access_denied"
    assert await stored_sessions(oauth) == []
    with pytest.raises(OAuthCallbackError, match="already used"):  # the state is used up
        await oauth.bsky.oauth.callback(params)


async def test_a_callback_naming_another_issuer_is_refused(oauth: OAuthHarness, pds_account: Account) -> None:
    url = await oauth.bsky.oauth.start(pds_account.handle)
    params = query(await approve(url, pds_account.handle, pds_account.password))
    with pytest.raises(OAuthCallbackError, match=r"issuer 'https://evil\.example'"):
        await oauth.bsky.oauth.callback({**params, "iss": "https://evil.example"})
    assert await stored_sessions(oauth) == []


async def test_tokens_for_a_did_served_by_another_issuer_are_refused_and_revoked(
        oauth: OAuthHarness, pds_account: Account, pds_short_ttl: PdsServer) -> None:
    url = await oauth.bsky.oauth.start(pds_account.handle)
    params = query(await approve(url, pds_account.handle, pds_account.password))
    # the user's DID document now names a PDS whose authorization server is another one
    identity = oauth.bsky.identity
    document = await identity.resolve_did(pds_account.did)
    moved = {**document, "service": [{**document["service"][0], "serviceEndpoint": pds_short_ttl.base_url}]}
    assert pds_endpoint_from_did_doc(moved) == pds_short_ttl.base_url
    oauth.bsky.oauth._identity._cache.put("did:" + pds_account.did, moved)
    revocations = oauth.pds.path_request_count("/oauth/revoke")
    with pytest.raises(OAuthCallbackError, match=f"served by {pds_short_ttl.base_url}, not by {oauth.pds.base_url}"):
        await oauth.bsky.oauth.callback(params)
    assert await stored_sessions(oauth) == []
    assert oauth.pds.path_request_count("/oauth/revoke") == revocations + 1


async def test_a_rotated_dpop_nonce_costs_one_retry(oauth: OAuthHarness, pds_account: Account) -> None:
    login = await oauth.login(pds_account)
    user = await oauth.bsky.oauth.client_for(login.did)
    nonces = oauth.bsky.oauth.nonces
    calls = oauth.pds.request_count("com.atproto.server.getSession")
    nonces._nonces[oauth.pds.base_url] = "an-old-nonce"  # the server has rotated past it
    assert (await user.get("com.atproto.server.getSession")).did == pds_account.did
    assert oauth.pds.request_count("com.atproto.server.getSession") == calls + 2
    assert nonces.get(oauth.pds.base_url) != "an-old-nonce"
    # the token endpoint follows the same rule
    session = await oauth.bsky.oauth.session(login.did)
    nonces._nonces[oauth.pds.base_url] = "an-old-nonce"
    tokens = oauth.pds.path_request_count("/oauth/token")
    await oauth.bsky.oauth._c.sessions.refresh(login.did, session.access_token)
    assert oauth.pds.path_request_count("/oauth/token") == tokens + 2
