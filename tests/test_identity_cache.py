"""The identity cache is bounded (size and TTL) and single-flight, against httpx.MockTransport."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from pysky_async import AsyncBskyClient, IdentityNotFound
from pysky_async._identity import IdentityResolver

pytestmark = pytest.mark.anyio


class Resolver:
    """Answers resolveHandle with ``did:plc:<first label>``; held at ``gate`` until it is set."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        handle = request.url.params["handle"]
        self.calls[handle] += 1
        await self.gate.wait()
        if handle.startswith("missing"):
            return httpx.Response(400, json={"error": "HandleNotFound", "message": "no such handle"})
        return httpx.Response(200, json={"did": f"did:plc:{handle.split('.')[0]}"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def settle() -> None:
    """Let every task run until it waits on something outside the event loop's ready queue."""
    for _ in range(200):
        await asyncio.sleep(0)


def client(server: Resolver) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, retry=None)


async def test_fifty_concurrent_resolves_of_one_handle_make_one_request() -> None:
    server = Resolver()
    server.gate.clear()
    async with client(server) as bsky:
        lookups = asyncio.gather(*(bsky.resolve_handle("alice.test") for _ in range(50)))
        await settle()
        server.gate.set()
        assert set(await lookups) == {"did:plc:alice"}
    assert server.calls == {"alice.test": 1}


async def test_a_cancelled_caller_does_not_fail_the_others_sharing_its_lookup() -> None:
    server = Resolver()
    server.gate.clear()
    async with client(server) as bsky:
        first = asyncio.ensure_future(bsky.resolve_handle("alice.test"))
        second = asyncio.ensure_future(bsky.resolve_handle("alice.test"))
        await settle()
        first.cancel()
        await settle()
        server.gate.set()
        assert await second == "did:plc:alice"
        assert first.cancelled()
        assert await bsky.resolve_handle("alice.test") == "did:plc:alice"
    assert server.calls == {"alice.test": 1}


async def test_a_failed_lookup_reaches_every_waiter_and_is_not_cached() -> None:
    server = Resolver()
    server.gate.clear()
    async with client(server) as bsky:
        lookups = asyncio.gather(*(bsky.resolve_handle("missing.test") for _ in range(5)), return_exceptions=True)
        await settle()
        server.gate.set()
        assert all(isinstance(error, IdentityNotFound) for error in await lookups)
        with pytest.raises(IdentityNotFound):
            await bsky.resolve_handle("missing.test")
    assert server.calls == {"missing.test": 2}


async def test_the_cache_never_exceeds_its_size() -> None:
    server = Resolver()
    async with client(server) as bsky:
        identity = IdentityResolver(bsky._xrpc, max_entries=10)
        for n in range(100):
            assert await identity.resolve_handle(f"user{n}.test") == f"did:plc:user{n}"
            assert len(identity._cache) <= 10
        assert len(identity._cache) == 10
        await identity.resolve_handle("user99.test")  # the newest is kept
        assert server.calls["user99.test"] == 1
        await identity.resolve_handle("user0.test")  # the oldest was evicted
        assert server.calls["user0.test"] == 2


async def test_an_entry_expires_after_its_ttl() -> None:
    server = Resolver()
    clock = Clock()
    async with client(server) as bsky:
        identity = IdentityResolver(bsky._xrpc, ttl=300.0, clock=clock)
        await identity.resolve_handle("alice.test")
        clock.now += 299.0
        await identity.resolve_handle("alice.test")
        assert server.calls["alice.test"] == 1
        clock.now += 1.0
        await identity.resolve_handle("alice.test")
        assert server.calls["alice.test"] == 2


async def test_the_client_default_bounds() -> None:
    async with client(Resolver()) as bsky:
        assert (bsky.identity.ttl, bsky.identity.max_entries) == (300.0, 10_000)


def test_the_least_recently_used_entry_goes_first() -> None:
    from pysky_async._ttl_cache import TtlCache

    cache: TtlCache[str, int] = TtlCache(ttl=60.0, max_entries=2, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
