"""Log in with Bluesky through the FastAPI and aiohttp examples (in-process), end to end
against the reference PDS: login redirect, sign-in and consent on the PDS, callback with the
signed login cookie, posting as the user, logout (revoked)."""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pysky_async import OAuthApp
from tests.example_apps import APPS
from tests.realnet.pds import Account, PdsServer

from .conftest import REDIRECT_URI, client_options
from .provider_ui import approve

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", APPS)
async def test_log_in_with_bluesky_post_and_log_out(kind: str, pds: PdsServer, pds_account: Account,
                                                    tmp_path: Path) -> None:
    options = {**client_options(pds, f"sqlite+aiosqlite:///{tmp_path}/app.db"),
               "oauth_app": OAuthApp.loopback(REDIRECT_URI), "cookie_secret": "s" * 32}
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
               "oauth_app": OAuthApp.loopback(REDIRECT_URI), "cookie_secret": "s" * 32}
    async with APPS[kind](options) as call:
        status, headers, _ = await call("GET", f"/oauth/login?identifier={pds_account.handle}"
                                                "&next=https://evil.example/")
        back = urlsplit(await approve(headers["location"], pds_account.handle, pds_account.password))
        status, headers, _ = await call("GET", f"{back.path}?{back.query}")
        assert status == 303 and headers["location"] == "/"
        status, _, _ = await call("GET", "/oauth/login?identifier=not a handle")
        assert status == 400
