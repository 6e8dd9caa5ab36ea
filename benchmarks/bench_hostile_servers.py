"""Hostile servers: how long a call is held and how much memory it takes when a server trickles,
sends a gzip bomb or a 50 MB body, or resets every connection. Prints a markdown table.

    .venv/bin/python benchmarks/bench_hostile_servers.py [WORD...]     # ~60 s; only cases naming a WORD

Each case on both transports: the client's own (aiohttp) and a caller's ``http_client=`` (httpx).
Memory is the traced peak (tracemalloc) while the call runs; the servers run in this process but
write in slices, so they hold no copy.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.test_hostile_transport import serve  # noqa: E402

from pysky_async import AsyncBskyClient, PyskyError, RetryPolicy  # noqa: E402
from pysky_async._retry import set_testing  # noqa: E402

MiB = 1 << 20


def gzip_bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(packer.compress(bytes(MiB)) for _ in range(512)) + packer.flush()


BOMB = gzip_bomb()
BODY = b'{"padding": "' + b"x" * (50 * MiB) + b'"}'


async def trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        await response.write(b'{"padding": "')
        for _ in range(600):
            await response.write(b"x")
            await asyncio.sleep(0.2)
    except ConnectionError:  # the client gave up: what we measure
        pass
    return response


async def bomb(request: web.Request) -> web.StreamResponse:
    return web.Response(body=BOMB, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})


async def flood(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(BODY)
    await response.prepare(request)
    try:
        for start in range(0, len(BODY), MiB):
            await response.write(BODY[start:start + MiB])
    except ConnectionError:
        pass
    return response


CASES: dict[str, tuple[Callable[[web.Request], Awaitable[web.StreamResponse]], dict[str, object]]] = {
    "trickle: 1 byte / 0.2 s (timeout=2, deadline=5, retry=None)": (trickle, {"timeout": 2, "deadline": 5}),
    "trickle, the default 4 attempts (timeout=2, deadline=5)": (trickle, {"timeout": 2, "deadline": 5,
                                                                          "retry": RetryPolicy()}),
    "trickle, 4 attempts (attempt_deadline=1, deadline=5)": (trickle, {"timeout": 2, "attempt_deadline": 1,
                                                                       "deadline": 5, "retry": RetryPolicy()}),
    "gzip bomb: 0.5 MB → 512 MiB": (bomb, {}),
    "50 MiB body": (flood, {}),
}


async def measure(case: str, transport: str, folder: str) -> str:
    handler, options = CASES[case]
    runner, base = await serve(handler)
    own = httpx.AsyncClient() if transport == "httpx" else None
    try:
        options = {"retry": None, **options}
        async with AsyncBskyClient(public_host=base, database_url=f"sqlite+aiosqlite:///{folder}/b.db",
                                   http_client=own, **options) as bsky:  # type: ignore[arg-type]
            gc.collect()
            tracemalloc.start()
            started = time.perf_counter()
            try:
                await bsky.get("com.example.hostile")
                outcome = "read"
            except PyskyError as exc:
                outcome = type(exc).__name__
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        if own is not None:
            await own.aclose()
        await runner.cleanup()
    return f"| {case} | {transport} | {outcome} | {seconds:.2f} | {peak / MiB:.1f} |"


async def resets(transport: str, folder: str) -> str:
    seen = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        await reader.readuntil(b"\r\n\r\n")
        seen += 1
        writer.transport.abort()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    own = httpx.AsyncClient() if transport == "httpx" else None
    try:
        async with AsyncBskyClient(public_host=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}",
                                   database_url=f"sqlite+aiosqlite:///{folder}/r.db", http_client=own) as bsky:
            try:
                await bsky.get("com.example.reset")
            except PyskyError as exc:
                outcome = type(exc).__name__
    finally:
        if own is not None:
            await own.aclose()
        server.close()
    return f"| connection reset on every request (4 attempts) | {transport} | {outcome}, {seen} requests sent | – | – |"


async def main() -> None:
    set_testing(True)  # retries without sleeping
    print("| server | transport | outcome | seconds | peak MiB |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        chosen = sys.argv[1:]
        for case in CASES:
            if chosen and not any(word in case for word in chosen):
                continue
            for transport in ("aiohttp", "httpx"):
                print(await measure(case, transport, folder), flush=True)
        for transport in ("aiohttp", "httpx") if not chosen or "reset" in chosen else ():
            print(await resets(transport, folder), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
