"""Retries and idempotent creates through a fault-injecting proxy in front of the real PDS.

The PDS listens on a private port and advertises the proxy's port, so every call after login
(which follows the DID document) passes through the proxy. Session calls are not faulted.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from pysky_async import AsyncBskyClient, RetryPolicy

from .realnet.fault_proxy import FaultProxy
from .realnet.pds import PdsServer

pytestmark = pytest.mark.anyio

COLLECTION = "com.example.faulty"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def proxied_pds(pds: PdsServer) -> Iterator[tuple[PdsServer, int, int]]:  # pds: the same skip policy
    public, private = free_port(), free_port()
    server = PdsServer.start(port=public, listen_port=private)
    yield server, public, private
    server.stop()


@pytest.fixture
async def proxy(proxied_pds: tuple[PdsServer, int, int]) -> AsyncIterator[FaultProxy]:
    _, public, private = proxied_pds
    fault_proxy = FaultProxy(private, rate=0.2, delay=1.5, seed=20261123)
    await fault_proxy.start(public)
    yield fault_proxy
    await fault_proxy.stop()


async def test_200_creates_through_a_faulty_proxy_make_exactly_200_records(
        proxied_pds: tuple[PdsServer, int, int], proxy: FaultProxy, tmp_path: object) -> None:
    pds, public, _ = proxied_pds
    account = pds.create_account(f"f{secrets.token_hex(5)}.test", secrets.token_urlsafe(12))
    retry = RetryPolicy(attempts=10, initial_delay=0.01, max_delay=0.05)
    async with httpx.AsyncClient(timeout=1.0) as http, AsyncBskyClient(
            username=account.handle, password=account.password, auth_host=f"http://localhost:{public}",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/faulty.sqlite3", http_client=http, retry=retry) as bsky:
        refs = [await bsky.create_record(COLLECTION, {"n": n}, validate=False) for n in range(200)]
        assert len({ref.uri for ref in refs}) == 200
        records = await bsky.list_records(COLLECTION).collect()  # reads through the proxy too
        await bsky.flush_call_log()
        attempts = await bsky.store.execute_sql(
            "SELECT count(*) FROM bsky_api_call_log WHERE endpoint = 'com.atproto.repo.createRecord'")
    assert sorted(r.value.n for r in records) == list(range(200)), "exactly 200 records, no duplicates"
    assert set(proxy.faults) == {"drop", "bad_gateway", "slow", "close_after"}, proxy.faults
    assert sum(proxy.faults.values()) >= 30
    sent = proxy.counts["/xrpc/com.atproto.repo.createRecord"]
    assert sent > 200, "faults forced retries"
    assert attempts[0][0] == sent, "every attempt is in the call log"
