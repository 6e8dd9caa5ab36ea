"""A real browser logs in with Bluesky through the FastAPI and aiohttp examples: headless
Chromium (Debian's package) opens the app's login route, signs in and consents on the
reference PDS's own pages, comes back through the callback, and posts as the user with the
app's login cookie; logout revokes the session."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from aiohttp import web
from examples import aiohttp_app, fastapi_app

from pysky_async import OAuthApp
from tests.realnet.fixtures import _unavailable
from tests.realnet.pds import Account, PdsServer

from .browser import Chromium, chromium_path
from .conftest import client_options

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve_aiohttp(app: web.Application, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_fastapi(app: Any, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task


SERVERS: dict[str, tuple[Callable[..., Any], Callable[[Any, int], Any]]] = {
    "fastapi": (fastapi_app.make_app, serve_fastapi),
    "aiohttp": (aiohttp_app.make_app, serve_aiohttp),
}

FETCH = """fetch({path!r}, {{method: 'POST', headers: {{'content-type': 'application/json'}},
    body: JSON.stringify({body})}}).then(async (r) => [r.status, await r.text()])"""


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_browser_logs_in_with_bluesky_and_posts(kind: str, pds: PdsServer, pds_account: Account,
                                                        tmp_path: object) -> None:
    if chromium_path() is None:
        _unavailable("chromium not found: apt-get install chromium (.ci/run installs it)")
    port = free_port()
    make_app, serve = SERVERS[kind]
    app = make_app(oauth_app=OAuthApp.loopback(f"http://127.0.0.1:{port}/oauth/callback"), cookie_secret="s" * 32,
                   **client_options(pds, f"sqlite+aiosqlite:///{tmp_path}/app.db"))
    async with serve(app, port), Chromium.launch() as browser:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/oauth/login?identifier={pds_account.handle}&next=/welcome")
        # the PDS's own sign-in page (the handle is prefilled from login_hint), then its consent page
        await page.fill('input[autocomplete="current-password"]', pds_account.password)
        assert (await page.url()).startswith(f"{pds.base_url}/oauth/authorize?")
        await page.click_text("button[type=submit]", "Sign in")
        await page.click_text("button", "Authorize")
        await page.wait_for(f"location.href === 'http://127.0.0.1:{port}/welcome'", "the redirect back to the app")

        status, body = await page.evaluate(FETCH.format(path="/me/posts", body="{text: 'posted from Chromium'}"))
        assert status == 201, body
        assert f"at://{pds_account.did}/app.bsky.feed.post/" in body
        records = pds_xrpc_list(pds, pds_account.did)
        assert [r["value"]["text"] for r in records] == ["posted from Chromium"]

        status, body = await page.evaluate(FETCH.format(path="/oauth/logout", body="{}"))
        assert status == 200 and pds_account.did in body
        status, _ = await page.evaluate(FETCH.format(path="/me/posts", body="{text: 'after logout'}"))
        assert status == 401


def pds_xrpc_list(pds: PdsServer, did: str) -> list[dict[str, Any]]:
    url = f"{pds.listen_url}/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post"
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.loads(response.read())["records"])
