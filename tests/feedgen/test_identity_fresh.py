"""``bsky.identity.resolve_did(did, fresh=True)``: fetched again past the cache, and the cache then
holds the new document (what the service-auth verifier relies on after a key rotation)."""

from __future__ import annotations

import httpx
import pytest

from pysky_async import AsyncBskyClient

pytestmark = pytest.mark.anyio

DID = "did:plc:rotating234567abcdefghij"


async def test_fresh_bypasses_the_cache_and_refreshes_it() -> None:
    served: list[int] = []

    async def plc(request: httpx.Request) -> httpx.Response:
        served.append(len(served))
        return httpx.Response(200, json={"id": DID, "version": len(served)})

    http = httpx.AsyncClient(transport=httpx.MockTransport(plc))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, retry=None,
                               plc_directory="https://plc.test") as bsky:
        assert (await bsky.identity.resolve_did(DID))["version"] == 1
        assert (await bsky.identity.resolve_did(DID))["version"] == 1  # cached
        assert (await bsky.identity.resolve_did(DID, fresh=True))["version"] == 2
        assert (await bsky.identity.resolve_did(DID))["version"] == 2  # the fresh answer is cached
    await http.aclose()
    assert len(served) == 2
