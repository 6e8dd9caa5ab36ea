"""The FastAPI and aiohttp examples against the real reference PDS.

Both share one AsyncBskyClient across requests: concurrent requests after the access token
expired cause exactly one refreshSession on the server. Served on real sockets (uvicorn,
aiohttp's runner), they answer what the user got wrong with 4xx and an unreachable Bluesky with
503 — never 500.
"""

from __future__ import annotations

import asyncio
import json as json_module
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples import aiohttp_app, fastapi_app

from pysky_async import AsyncBskyClient, WriteBudget

from .example_apps import APPS
from .realnet.pds import Account, PdsServer
from .test_fault_proxy import free_port
from .test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def json_app(kind: str, options: dict[str, Any]) -> AsyncIterator[Callable[..., Any]]:
    """``call(method, path, json=None) -> (status, body)``, the body decoded when it is JSON."""
    async with APPS[kind](options) as call:

        async def json_call(method: str, path: str, json: Any = None) -> tuple[int, Any]:
            status, headers, text = await call(method, path, json)
            is_json = headers.get("content-type", "").startswith("application/json")
            return status, json_module.loads(text) if is_json else text

        yield json_call


@pytest.mark.parametrize("kind", APPS)
async def test_profile_and_post_endpoints(kind: str, pds_short_ttl: PdsServer, short_ttl_account: Account,
                                          tmp_path: Path) -> None:
    options: dict[str, Any] = {"username": short_ttl_account.handle, "password": short_ttl_account.password,
               "auth_host": listen_host(pds_short_ttl), "database_url": f"sqlite+aiosqlite:///{tmp_path}/app.db"}
    async with json_app(kind, options) as call:
        status, created = await call("POST", "/posts", {"text": f"hello from {kind}"})
        assert status == 201 and created["uri"].startswith(f"at://{short_ttl_account.did}/app.bsky.feed.post/")
        status, _ = await call("GET", f"/profile/{short_ttl_account.handle}")
        assert status == 404, "no profile record yet"
        async with AsyncBskyClient(**options) as bsky:  # a second client on the same database
            await bsky.put_record("app.bsky.actor.profile", "self", {"displayName": "Short TTL"})
        status, profile = await call("GET", f"/profile/{short_ttl_account.handle}")
        assert status == 200 and profile == {"did": short_ttl_account.did, "displayName": "Short TTL",
                                             "description": None}
        await asyncio.sleep(3.5)  # the shared session's access token expires
        refreshes = pds_short_ttl.request_count("com.atproto.server.refreshSession")
        results = await asyncio.gather(*(call("POST", "/posts", {"text": f"post {n}"}) for n in range(20)))
        assert [status for status, _ in results] == [201] * 20
        assert len({body["uri"] for _, body in results}) == 20
        assert pds_short_ttl.request_count("com.atproto.server.refreshSession") == refreshes + 1
        status, _ = await call("POST", "/posts", {"text": "x" * 400})
        assert status == 422


@asynccontextmanager
async def serving(kind: str, options: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """The example app listening on a real loopback port, and an HTTP client for it."""
    port = free_port()
    if kind == "fastapi":
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(fastapi_app.make_app(**options), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.02)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                yield http
        finally:
            server.should_exit = True
            await task
    else:
        from aiohttp import web

        runner = web.AppRunner(aiohttp_app.make_app(**options))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                yield http
        finally:
            await runner.cleanup()


@pytest.mark.parametrize("kind", APPS)
async def test_mistakes_get_4xx_and_outages_503_never_500(kind: str, pds: PdsServer, pds_account: Account,
                                                          tmp_path: Path) -> None:
    options = {"username": pds_account.handle, "password": pds_account.password, "auth_host": listen_host(pds),
               "database_url": f"sqlite+aiosqlite:///{tmp_path}/app.db",
               "write_budget": WriteBudget(hourly_points=6)}  # two posts an hour
    async with serving(kind, options) as http:
        answers = [await http.get("/profile/nobody-here.test"), await http.get("/profile/not a handle"),
                   await http.post("/posts", content=b"{not json", headers={"Content-Type": "application/json"}),
                   await http.post("/posts", json={"txt": "no text field"}),
                   await http.post("/posts", json={"text": "x" * 400}), await http.get("/no-such-page"),
                   await http.get("/posts")]
        statuses = [answer.status_code for answer in answers]
        assert statuses[0] == 404 and statuses[1] in (404, 422) and statuses[2] in (400, 422)
        assert statuses[3:] == [422, 422, 404, 405]
        for answer in answers:  # every error is JSON with a "detail", as FastAPI answers
            assert answer.headers["content-type"].startswith("application/json"), (answer.status_code, answer.text)
            assert answer.json()["detail"], answer.text
        assert [(await http.post("/posts", json={"text": f"post {n}"})).status_code for n in range(2)] == [201, 201]
        spent = await http.post("/posts", json={"text": "one too many"})
        assert spent.status_code == 429 and int(spent.headers["Retry-After"]) > 0, spent.text
    unreachable = {**options, "auth_host": f"http://127.0.0.1:{free_port()}",
                   "database_url": f"sqlite+aiosqlite:///{tmp_path}/down.db"}
    async with serving(kind, unreachable) as http:
        down = await http.post("/posts", json={"text": "hello?"})
        assert down.status_code == 503 and "Retry-After" in down.headers, down.text
        assert "127.0.0.1" in down.json()["detail"], "the message names the host"
