"""Shared fixtures. The real servers (reference PDS, PostgreSQL) come from tests/realnet."""

from __future__ import annotations

import base64
import datetime as dt
import gc
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from pysky_async._response import HttpInfo, XrpcResponse, decode_body
from pysky_async._retry import set_testing
from pysky_async._storage.store import Store

pytest_plugins = ["tests.realnet.fixtures", "tests.realnet.devenv_fixtures"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_finish(session: pytest.Session) -> None:
    """What exists once the tests are collected (the modules imported, the test items) lives all session:
    frozen out of the collector, so the collection after each test only walks what came after (a
    leaked file, socket or connection of a test or fixture still warns at the collection after it)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def collect_garbage_after_each_test() -> Iterator[None]:
    """A leaked file, socket or connection warns when it is collected: collect after every test, so
    the warning (an error here) fails the test that leaked it, not whichever test runs next."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def no_retry_sleep() -> Iterator[None]:
    """Retries happen at once in tests (the back-off itself is tested in test_retry.py)."""
    set_testing(True)
    yield
    set_testing(False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A fresh, empty database: an SQLite file, or a new database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/pysky.sqlite3"
    return str(request.getfixturevalue("pg_database_url"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store(database_url, auto_migrate=True)
    await store.ensure_ready()
    yield store
    await store.aclose()


def fake_jwt(*, lifetime: float = 3600, sub: str = "did:plc:test") -> str:
    """An unsigned JWT-shaped token with the given remaining lifetime (for unit tests)."""

    def segment(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = time.time()
    header = segment({"alg": "HS256", "typ": "at+jwt"})
    return f"{header}.{segment({'sub': sub, 'iat': int(now), 'exp': now + lifetime})}.c2ln"


def make_response(status: int = 200, body: object = None, url: str = "https://pds.test/xrpc/x.y.z",
                  headers: dict[str, str] | None = None) -> XrpcResponse:
    response = httpx.Response(status, json=body if body is not None else {}, headers=headers)
    info = HttpInfo(status, response.headers, dt.timedelta(0), url)
    return XrpcResponse(decode_body(response.content, response.headers), info, response.content)
