"""The FastAPI and aiohttp examples served in-process, for tests: ``APPS[kind](options)`` yields
``call(method, path, json=None, cookie="") -> (status, headers, text)``. Cookies are never kept
between calls (a test passes the one it means to), and redirects are not followed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp.test_utils import TestClient, TestServer
from examples import aiohttp_app, fastapi_app

Call = Callable[..., Any]


@asynccontextmanager
async def fastapi_client(options: dict[str, Any]) -> AsyncIterator[Call]:
    app = fastapi_app.make_app(**options)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://app") as http:

        async def call(method: str, path: str, json: Any = None, cookie: str = "") -> tuple[int, Any, str]:
            http.cookies.clear()
            response = await http.request(method, path, json=json, headers={"cookie": cookie} if cookie else {})
            return response.status_code, response.headers, response.text

        yield call


@asynccontextmanager
async def aiohttp_client(options: dict[str, Any]) -> AsyncIterator[Call]:
    async with TestClient(TestServer(aiohttp_app.make_app(**options))) as http:

        async def call(method: str, path: str, json: Any = None, cookie: str = "") -> tuple[int, Any, str]:
            http.session.cookie_jar.clear()
            response = await http.request(method, path, json=json, allow_redirects=False,
                                          headers={"cookie": cookie} if cookie else {})
            return response.status, response.headers, await response.text()

        yield call


APPS = {"fastapi": fastapi_client, "aiohttp": aiohttp_client}
