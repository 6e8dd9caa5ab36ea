"""Smoke test of the real-server harness itself (tests/realnet)."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
import httpx

from .pds import Account, PdsServer
from .postgres import PostgresServer


def test_pds_and_postgres_harness(
    pds: PdsServer, pds_account: Account, postgres_server: PostgresServer, pg_database_url: str
) -> None:
    assert pds.base_url.startswith("http://localhost:")
    assert pds_account.handle.endswith(".test") and pds_account.did.startswith("did:plc:")

    before = pds.request_count("com.atproto.server.createSession")
    with httpx.Client(base_url=pds.base_url, timeout=30) as client:
        for _ in range(2):
            r = client.post(
                "/xrpc/com.atproto.server.createSession",
                json={"identifier": pds_account.handle, "password": pds_account.password},
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["did"] == pds_account.did
            assert body["didDoc"]["id"] == pds_account.did  # PDS_ENABLE_DID_DOC_WITH_SESSION
    assert pds.request_count("com.atproto.server.createSession") - before == 2

    assert pg_database_url.startswith(f"postgresql+asyncpg://postgres@127.0.0.1:{postgres_server.port}/")

    async def select_one() -> int:
        conn = await asyncpg.connect(pg_database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return int(await conn.fetchval("select 1"))
        finally:
            await conn.close()

    assert asyncio.run(select_one()) == 1

