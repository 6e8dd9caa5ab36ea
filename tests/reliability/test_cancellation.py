"""Cancelled calls never leave a unit of work half-done: no "database is locked" afterwards."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy.pool import QueuePool

from pysky_async import AsyncBskyClient

from ..conftest import fake_jwt

pytestmark = pytest.mark.anyio

PDS = "https://pds.example.com"


class FastPds:
    """Answers createSession and createRecord after a short random delay (seeded)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.creates = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1]
        await asyncio.sleep(self.random.uniform(0, 0.004))
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(200, json={
                "did": "did:plc:me", "handle": "me.test", "accessJwt": fake_jwt(), "refreshJwt": fake_jwt(),
                "didDoc": {"service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                        "serviceEndpoint": PDS}]}})
        body = json.loads(request.content)
        self.creates += 1
        return httpx.Response(200, json={"uri": f"at://did:plc:me/{body['collection']}/{body['rkey']}",
                                         "cid": "bafyfake"})


def assert_not_locked(path: Path) -> None:
    """Another connection can take the write lock at once."""
    connection = sqlite3.connect(path, timeout=1, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    finally:
        connection.close()


POST = {"text": "storm", "createdAt": "2026-01-01T00:00:00Z"}


async def storm(database_url: str, seed: int, calls: int = 300, log_interval: float = 0.25) -> AsyncBskyClient:
    """Create records with a random timeout around each call (as a web framework cancels a
    request whose client went away); returns the still-open client for checks."""
    timeouts = random.Random(seed)
    http = httpx.AsyncClient(transport=httpx.MockTransport(FastPds(seed)))
    bsky = AsyncBskyClient(username="me.test", password="pw", database_url=database_url, http_client=http,
                           auto_migrate=True)
    bsky.call_log.interval = log_interval
    await bsky.login()
    cancelled = 0
    for _ in range(calls):
        try:
            await asyncio.wait_for(bsky.create_record("app.bsky.feed.post", POST), timeouts.uniform(0, 0.006))
        except asyncio.TimeoutError:  # wait_for's; not the builtin TimeoutError before 3.11
            cancelled += 1
    assert cancelled > calls // 6, "the storm should cancel calls at every stage"
    await bsky.call_log.flush()
    pool = bsky.store.engine.sync_engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedout() == 0
    return bsky


async def assert_still_writes(bsky: AsyncBskyClient) -> None:
    ref = await asyncio.wait_for(bsky.create_record("app.bsky.feed.post", POST), 10)
    assert ref.uri.startswith("at://did:plc:me/app.bsky.feed.post/")
    await bsky.aclose()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_storm_of_cancelled_creates_leaves_sqlite_usable(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "storm.sqlite3"
    bsky = await storm(f"sqlite+aiosqlite:///{path}", seed)
    assert_not_locked(path)
    await assert_still_writes(bsky)


async def test_a_storm_of_cancelled_creates_leaves_no_postgresql_transaction_open(pg_database_url: str) -> None:
    # rows flushed only by the storm's end, so no flush is in a transaction while we look
    bsky = await storm(pg_database_url, 4, calls=150, log_interval=3600)
    [(open_transactions,)] = await bsky.store.execute_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")
    assert open_transactions == 0
    await assert_still_writes(bsky)
