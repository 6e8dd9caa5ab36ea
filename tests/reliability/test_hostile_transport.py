"""Servers that trickle, bomb, flood or hang up: a fake on loopback misbehaves on purpose (the
reference PDS never does this), and the client bounds the time, the memory and the attempts.

Each case runs on both transports: the aiohttp fast path, and the httpx path that a caller's own
``http_client=`` (and every streamed upload) takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from pysky_async import AsyncBskyClient, NetworkError, RequestTimeout, ResponseTooLarge, RetryPolicy

from ..streams.loopback import start_app

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MiB = 1 << 20


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """0.5 MB of gzip that inflates to 512 MiB of zeros (the issue's bomb)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    return b"".join(packer.compress(zeros) for _ in range(512)) + packer.flush()


@contextlib.contextmanager
def traced_peak() -> Iterator[list[int]]:
    """``[peak]``: the most memory traced while the block ran (filled in when it ends)."""
    gc.collect()
    tracemalloc.start()
    peak = [0]
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes([web.get("/xrpc/{nsid}", handler)])
    runner, port = await start_app(app)
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client_for(transport: str, tmp_path: Path) -> AsyncIterator[Callable[..., AsyncBskyClient]]:
    """Makes a client for a base URL on the transport under test; closes what it made."""
    made: list[AsyncBskyClient] = []
    own_http: list[httpx.AsyncClient] = []

    def make(base: str, **options: Any) -> AsyncBskyClient:
        if transport == "httpx":
            own_http.append(httpx.AsyncClient())
            options["http_client"] = own_http[-1]
        bsky = AsyncBskyClient(public_host=base, database_url=f"sqlite+aiosqlite:///{tmp_path}/h{len(made)}.sqlite3",
                               **options)
        made.append(bsky)
        return bsky

    yield make
    for bsky in made:
        await bsky.aclose()
    for http in own_http:
        await http.aclose()


def trickling(requests_seen: list[int]) -> Handler:
    """A server that sends headers, then a byte every 0.2 s for 120 s (no single read waits long)."""
    async def trickle(request: web.Request) -> web.StreamResponse:
        requests_seen.append(1)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client gave up
            await response.write(b'{"padding": "')
            for _ in range(600):
                await response.write(b"x")
                await asyncio.sleep(0.2)
            await response.write(b'"}')
        return response

    return trickle


async def test_retries_of_a_trickling_server_fit_in_the_calls_deadline(
        client_for: Callable[..., AsyncBskyClient]) -> None:
    requests_seen: list[int] = []
    runner, base = await serve(trickling(requests_seen))
    try:
        bsky = client_for(base, timeout=2, deadline=3)  # the default retry: 4 attempts (each took 3 s before)
        with pytest.raises(RequestTimeout) as caught:
            await asyncio.wait_for(bsky.get("com.example.slow"), 60)
        assert len(requests_seen) == 1, "the call's deadline had passed: no attempt after it"
        assert str(caught.value).startswith(f"com.example.slow to {base} did not finish within its 3 s deadline "
                                            "(1 attempt;"), str(caught.value)
        assert "raise the client's deadline= (PYSKY_DEADLINE)" in str(caught.value), "it says what to change"
    finally:
        await runner.cleanup()


async def test_an_attempt_deadline_bounds_each_attempt_and_the_call_is_retried_within_its_deadline(
        client_for: Callable[..., AsyncBskyClient]) -> None:
    requests_seen: list[int] = []
    runner, base = await serve(trickling(requests_seen))
    try:
        bsky = client_for(base, timeout=2, attempt_deadline=0.5, deadline=60, retry=RetryPolicy(attempts=3))
        with pytest.raises(RequestTimeout, match=r"com\.example\.slow .* attempt 3 within its 0\.5 s attempt deadline"
                                                 r".*attempt_deadline= \(PYSKY_ATTEMPT_DEADLINE\)"):
            await asyncio.wait_for(bsky.get("com.example.slow"), 60)
        assert len(requests_seen) == 3
    finally:
        await runner.cleanup()


async def test_a_gzip_bomb_is_refused_without_inflating_it(client_for: Callable[..., AsyncBskyClient],
                                                           gzip_bomb: bytes, transport: str) -> None:
    async def bomb(request: web.Request) -> web.StreamResponse:
        return web.Response(body=gzip_bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    runner, base = await serve(bomb)
    try:
        bsky = client_for(base, retry=None, max_response_bytes=4 * MiB)
        with traced_peak() as peak, pytest.raises(ResponseTooLarge, match=r"bomb .*4194304 bytes.*max_response_bytes"):
            await bsky.get("com.example.bomb")
        # aiohttp inflates in bounded steps; httpx inflates one network read (up to 64 KiB) at a time, which
        # a bomb turns into up to 64 MiB: bounded either way, and far from the 512 MiB (2.1 GB before)
        bound = 64 * MiB if transport == "aiohttp" else 192 * MiB
        assert peak[0] < bound, f"{peak[0] / MiB:.0f} MiB held while refusing a 512 MiB bomb"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_50_mb_body_is_refused_past_the_bound(client_for: Callable[..., AsyncBskyClient], framing: str) -> None:
    body = b'{"padding": "' + b"x" * (50 * MiB) + b'"}'

    async def flood(request: web.Request) -> web.StreamResponse:  # written in slices: the server holds no copy
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if framing == "content-length":
            response.content_length = len(body)
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), MiB):
            await response.write(body[start:start + MiB])
        return response

    runner, base = await serve(flood)
    try:
        bsky = client_for(base, retry=None, max_response_bytes=8 * MiB)
        with traced_peak() as peak, pytest.raises(ResponseTooLarge, match=r"flood answered more than 8388608 bytes"):
            await bsky.get("com.example.flood")
        assert peak[0] < 32 * MiB, f"{peak[0] / MiB:.0f} MiB held while refusing a 50 MiB body"
        ok = client_for(base, retry=None, max_response_bytes=64 * MiB)
        assert len((await ok.get("com.example.flood")).raw["padding"]) == 50 * MiB, "within the bound it is read"
    finally:
        await runner.cleanup()


async def test_a_get_to_a_server_that_resets_connections_is_sent_attempts_times(
        client_for: Callable[..., AsyncBskyClient]) -> None:
    requests_seen = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests_seen
        while await reader.readuntil(b"\r\n\r\n"):
            requests_seen += 1
            writer.transport.abort()  # a reset, not an answer
            return

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        bsky = client_for(f"http://127.0.0.1:{port}")
        with pytest.raises(NetworkError):
            await bsky.get("com.example.reset")
        assert bsky.config.retry is not None and requests_seen == bsky.config.retry.attempts == 4
    finally:
        server.close()
        await server.wait_closed()
