"""Log in with Bluesky through the FastAPI and aiohttp examples (in-process), end to end
against the reference PDS: login redirect, sign-in and consent on the PDS, callback with the
signed login cookie, posting as the user, logout (revoked)."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pysky_async import AsyncBskyClient, OAuth, OAuthApp
from pysky_async.fastapi_oauth import LoginCookie
from tests.example_apps import APPS
from tests.realnet.pds import Account, PdsServer

from .conftest import REDIRECT_URI, client_options
from .provider_ui import approve

pytestmark = pytest.mark.anyio

SECRET = "s" * 32


async def log_in(call: Any, account: Account) -> tuple[str, str]:
    """Log in through the app (sign-in and consent on the PDS): ``(cookie header, Set-Cookie)``."""
    status, headers, _ = await call("GET", f"/oauth/login?identifier={account.handle}")
    assert status == 303, headers
    back = urlsplit(await approve(headers["location"], account.handle, account.password))
    status, headers, _ = await call("GET", f"{back.path}?{back.query}")
    assert status == 303, headers
    jar: SimpleCookie = SimpleCookie()
    jar.load(headers["set-cookie"])
    return f"pysky_did={jar['pysky_did'].value}", headers["set-cookie"]


@pytest.mark.parametrize("kind", APPS)
async def test_the_login_cookie_is_bound_to_its_login_expires_and_ends_at_logout(
        kind: str, pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    options = {**client_options(pds, database_url), "oauth_app": OAuthApp.loopback(REDIRECT_URI),
               "cookie_secret": SECRET, "encryption_key": OAuth.generate_encryption_key()}
    async with APPS[kind](options) as call:
        first, set_cookie = await log_in(call, pds_account)
        assert "max-age=2592000" in set_cookie.lower(), "the cookie says its lifetime (30 days)"
        second, _ = await log_in(call, pds_account)
        assert first != second, "each login gets its own value"
        for cookie in (first, second):
            status, _, body = await call("POST", "/me/posts", {"text": f"as {kind}"}, cookie)
            assert status == 201, body
        async with AsyncBskyClient(database_url=database_url) as bsky:  # the app's own database
            month_ago = LoginCookie(SECRET, clock=lambda: time.time() - 31 * 24 * 3600)
            expired = f"pysky_did={await month_ago.issue(bsky.oauth, pds_account.did)}"
        did, issued, nonce, mac = first.removeprefix("pysky_did=").rsplit("|", 3)
        tampered = [f"pysky_did={did}|{issued}|{nonce[::-1]}|{mac}", f"pysky_did={did}|{'0' * 64}", expired]
        for cookie in tampered:
            status, _, body = await call("POST", "/me/posts", {"text": "refused"}, cookie)
            assert status == 401, (cookie, body)

        status, _, _ = await call("POST", "/oauth/logout", None, second)
        assert status == 200
        third, _ = await log_in(call, pds_account)  # the user has a session again...
        for replayed in (first, second):  # ...but the cookies of the earlier logins stay refused
            status, _, _ = await call("POST", "/me/posts", {"text": "replayed"}, replayed)
            assert status == 401
        status, _, body = await call("POST", "/me/posts", {"text": "the new login"}, third)
        assert status == 201, body


@pytest.mark.parametrize("kind", APPS)
async def test_log_in_with_bluesky_post_and_log_out(kind: str, pds: PdsServer, pds_account: Account,
                                                    tmp_path: Path) -> None:
    options = {**client_options(pds, f"sqlite+aiosqlite:///{tmp_path}/app.db"),
               "oauth_app": OAuthApp.loopback(REDIRECT_URI), "cookie_secret": SECRET}
    async with APPS[kind](options) as call:
        status, headers, body = await call("GET", "/oauth/client-metadata.json")
        assert status == 200 and '"dpop_bound_access_tokens":true' in body.replace(" ", "")

        status, headers, _ = await call("GET", f"/oauth/login?identifier={pds_account.handle}&next=/welcome")
        assert status == 303 and headers["location"].startswith(f"{pds.base_url}/oauth/authorize?")
        back = urlsplit(await approve(headers["location"], pds_account.handle, pds_account.password))
        assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI

        status, headers, _ = await call("GET", f"{back.path}?{back.query}")
        assert status == 303 and headers["location"] == "/welcome"
        jar: SimpleCookie = SimpleCookie()
        jar.load(headers["set-cookie"])
        cookie = f"pysky_did={jar['pysky_did'].value}"
        assert jar["pysky_did"].value.startswith(pds_account.did + "|")

        status, _, body = await call("POST", "/me/posts", {"text": f"hello from {kind} via OAuth"}, cookie)
        assert status == 201 and f"at://{pds_account.did}/app.bsky.feed.post/" in body
        status, _, _ = await call("POST", "/me/posts", {"text": "who am I?"})
        assert status == 401
        forged = f"pysky_did={pds_account.did}|{'0' * 64}"
        status, _, _ = await call("POST", "/me/posts", {"text": "forged"}, forged)
        assert status == 401
        status, _, _ = await call("GET", f"{back.path}?{back.query}")  # the callback replayed
        assert status == 400

        revocations = pds.path_request_count("/oauth/revoke")
        status, _, body = await call("POST", "/oauth/logout", None, cookie)
        assert status == 200 and pds_account.did in body
        assert pds.path_request_count("/oauth/revoke") == revocations + 1
        status, _, _ = await call("POST", "/me/posts", {"text": "after logout"}, cookie)
        assert status == 401


@pytest.mark.parametrize("kind", APPS)
async def test_login_redirects_only_within_the_site(kind: str, pds: PdsServer, pds_account: Account,
                                                    tmp_path: Path) -> None:
    options = {**client_options(pds, f"sqlite+aiosqlite:///{tmp_path}/app.db"),
               "oauth_app": OAuthApp.loopback(REDIRECT_URI), "cookie_secret": SECRET}
    async with APPS[kind](options) as call:
        status, headers, _ = await call("GET", f"/oauth/login?identifier={pds_account.handle}"
                                                "&next=https://evil.example/")
        back = urlsplit(await approve(headers["location"], pds_account.handle, pds_account.password))
        status, headers, _ = await call("GET", f"{back.path}?{back.query}")
        assert status == 303 and headers["location"] == "/"
        status, _, _ = await call("GET", "/oauth/login?identifier=not a handle")
        assert status == 400
