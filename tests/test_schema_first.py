"""On a database that was never upgraded (PostgreSQL: ``auto_migrate`` is off), the first call
raises one clear StorageError before anything goes to the network, and nothing is lost."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from pysky_async import AsyncBskyClient, StorageError

from .realnet.pds import Account, PdsServer
from .test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("first_call", ["login", "authenticated query", "query without an account"])
async def test_an_unmigrated_postgresql_database_stops_the_first_call_before_it_goes_out(
        pg_database_url: str, pds: PdsServer, pds_account: Account, caplog: pytest.LogCaptureFixture,
        first_call: str) -> None:
    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(str(request.url))

    http = httpx.AsyncClient(event_hooks={"request": [count]})
    account: dict[str, Any] = {} if first_call == "query without an account" else {"username": pds_account.handle,
                                                                   "password": pds_account.password}
    bsky = AsyncBskyClient(**account, auth_host=listen_host(pds), database_url=pg_database_url,
                           http_client=http)
    try:
        with caplog.at_level(logging.DEBUG, logger="pysky_async"):
            for _ in range(2):
                with pytest.raises(StorageError) as refused:
                    if first_call == "login":
                        await bsky.login()
                    else:
                        await bsky.get("com.atproto.server.describeServer", hostname=listen_host(pds))
                message = str(refused.value)
                shown_url = make_url(pg_database_url).render_as_string(hide_password=True)
                assert f"pysky-async --database-url '{shown_url}' db upgrade" in message, message
                assert "has no pysky_async tables" in message
            await bsky.aclose()
    finally:
        await http.aclose()
    assert sent == [], "nothing may go to the network before the database is known to be usable"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or "lost" in r.getMessage()] == []
