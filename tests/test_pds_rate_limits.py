"""Write budget and server rate limits against the reference PDS with PDS_RATE_LIMITS_ENABLED=true.

Each test sends its own X-Forwarded-For, so it gets fresh per-IP buckets on the server.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pysky_async import AsyncBskyClient, RateLimitExceeded, WriteBudget, WriteBudgetExhausted

from .realnet.pds import Account, PdsServer
from .test_pds_sessions import ROOT, listen_host, release

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def limited_pds(pds: PdsServer) -> Iterator[PdsServer]:
    server = PdsServer.start(rate_limits=True)
    yield server
    server.stop()


@pytest.fixture
def limited_account(limited_pds: PdsServer) -> Account:
    return limited_pds.create_account(f"r{secrets.token_hex(5)}.test", secrets.token_urlsafe(12))


@pytest.fixture
async def fresh_ip_http() -> AsyncIterator[httpx.AsyncClient]:
    ip = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    async with httpx.AsyncClient(headers={"X-Forwarded-For": ip}, timeout=30) as http:
        yield http


def client(pds: PdsServer, account: Account, http: httpx.AsyncClient, database_url: str,
           **kwargs: Any) -> AsyncBskyClient:
    return AsyncBskyClient(username=account.handle, password=account.password, auth_host=listen_host(pds),
                           database_url=database_url, http_client=http, auto_migrate=True, **kwargs)


async def test_budget_refuses_the_write_before_it_is_sent(limited_pds: PdsServer, limited_account: Account,
                                                         fresh_ip_http: httpx.AsyncClient, database_url: str) -> None:
    before = limited_pds.request_count("com.atproto.repo.createRecord")
    async with client(limited_pds, limited_account, fresh_ip_http, database_url,
                      write_budget=WriteBudget(hourly_points=30)) as bsky:
        for n in range(10):
            await bsky.create_record("com.example.note", {"n": n}, validate=False)
        with pytest.raises(WriteBudgetExhausted, match=r"was not sent.*fits again at") as info:
            await bsky.create_record("com.example.note", {"n": 10}, validate=False)
        assert info.value.retry_after is not None and info.value.retry_after > 3000
        assert limited_pds.request_count("com.atproto.repo.createRecord") == before + 10
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql(
            "SELECT http_status_code, write_op_points_consumed, exception_class FROM bsky_api_call_log "
            "WHERE endpoint = 'com.atproto.repo.createRecord' ORDER BY id")
    assert [row[0] for row in rows] == [200] * 10 + [None], "the server never had to answer 429"
    assert rows[-1][2] == "WriteBudgetExhausted", "the refused write is logged, though never sent"
    assert sum(row[1] for row in rows) == 30


async def test_31st_login_in_5_minutes_is_a_429_with_its_reset_time(
        limited_pds: PdsServer, limited_account: Account, fresh_ip_http: httpx.AsyncClient, tmp_path: Path) -> None:
    async with client(limited_pds, limited_account, fresh_ip_http, f"sqlite+aiosqlite:///{tmp_path}/l.sqlite3") as bsky:
        login = {"identifier": limited_account.handle, "password": limited_account.password}
        # an explicit host that is not auth_host: raw calls without the client's own session
        for _ in range(30):
            await bsky.post("com.atproto.server.createSession", hostname=limited_pds.base_url, data=login)
        with pytest.raises(RateLimitExceeded, match="the limit resets at") as info:
            await bsky.post("com.atproto.server.createSession", hostname=limited_pds.base_url, data=login)
        assert info.value.status_code == 429 and info.value.retry_after is not None
        assert 0 < info.value.retry_after <= 300
        limits = bsky.rate_limits[limited_pds.base_url.split("://")[1]]
        assert "30;w=300" in limits, limits
        assert limits["30;w=300"].remaining == 0


async def test_rate_limit_headers_show_up_in_rate_limits(limited_pds: PdsServer, limited_account: Account,
                                                        fresh_ip_http: httpx.AsyncClient, tmp_path: Path) -> None:
    async with client(limited_pds, limited_account, fresh_ip_http, f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        await bsky.create_record("com.example.note", {"n": 1}, validate=False)
        await bsky.create_record("com.example.note", {"n": 2}, validate=False)
        pds_host = limited_pds.base_url.split("://")[1]
        policies = bsky.rate_limits[pds_host]
    # the PDS reports the limit closest to exhaustion: here the global 3000 per 5 minutes per IP,
    # after this test's three requests (login and two creates) from its own X-Forwarded-For
    latest = policies["3000;w=300"]
    assert (latest.limit, latest.remaining, latest.window_seconds) == (3000, 2997, 300)
    assert latest.endpoint == "com.atproto.repo.createRecord" and 0 < latest.seconds_until_reset <= 300


def budget_worker(config: dict[str, object]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.budget_worker", json.dumps(config)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_two_processes_sharing_a_database_share_one_budget(
        limited_pds: PdsServer, limited_account: Account, database_url: str) -> None:
    config = {"username": limited_account.handle, "password": limited_account.password,
              "auth_host": listen_host(limited_pds), "database_url": database_url, "points": 30, "attempts": 10}
    before = limited_pds.request_count("com.atproto.repo.createRecord")
    workers = [budget_worker(config) for _ in range(2)]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    results = release(workers, timeout=120)
    created = [int(out.split()[1]) for out, _ in results]
    refused = [int(out.split()[3]) for out, _ in results]
    assert sum(created) == 10 and sum(refused) == 10, results
    assert limited_pds.request_count("com.atproto.repo.createRecord") == before + 10
