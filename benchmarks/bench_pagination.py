"""Paginating 10,000 records: ``bsky.paginate()`` against a hand-written raw httpx cursor loop.

    .venv/bin/python benchmarks/bench_pagination.py [--records 10000] [--work-ms 5] [--repeats 3]

A fake ``com.atproto.repo.listRecords`` server (its own process, raw asyncio, pages of 100
records of ~600 bytes, built once) serves both clients. Each variant runs in a fresh process;
the table shows wall-clock records per second from the first request to the last page
(median of the repeats; the raw loop's httpx client and pysky_async's client and database
are set up before the clock starts) and the ratio to the raw
loop, first with the caller doing nothing per page, then with the caller spending ``--work-ms``
per page (where paginate's one-page prefetch overlaps the next request with the caller's work).
pysky_async logs every call to SQLite, as it does by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PAGE = 100


def record(n: int) -> dict[str, object]:
    return {"uri": f"at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.example.note/{n:013d}",
            "cid": "bafyreib2rxk3rybloqtqwbo4mgfk3eaaqcxl6kp4jqmrjsh6a4jvffq7pq",
            "value": {"$type": "com.example.note", "n": n, "createdAt": "2026-11-23T09:32:00.000Z",
                      "text": "x" * 420}}


def serve(total: int) -> None:
    """The fake server: prints its port, answers listRecords?cursor=<offset>."""
    pages: dict[str, bytes] = {}
    for start in range(0, total + 1, PAGE):
        body: dict[str, object] = {"records": [record(n) for n in range(start, min(total, start + PAGE))]}
        if start + PAGE < total:
            body["cursor"] = str(start + PAGE)
        data = json.dumps(body, separators=(",", ":")).encode()
        pages[str(start)] = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(data)).encode() + b"\r\n\r\n" + data)

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                target = head.split(b" ", 2)[1].decode()
                cursor = "0"
                if "cursor=" in target:
                    cursor = target.split("cursor=", 1)[1].split("&", 1)[0]
                self.transport.write(pages.get(cursor, pages["0"]))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    asyncio.run(main())


async def raw_loop(port: int, work: float) -> tuple[int, float]:
    import httpx

    count = 0
    async with httpx.AsyncClient() as http:
        started = time.perf_counter()
        cursor = None
        while True:
            params: dict[str, str | int] = {"repo": "did:plc:x", "collection": "com.example.note", "limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            response = await http.get(f"http://127.0.0.1:{port}/xrpc/com.atproto.repo.listRecords", params=params)
            page = json.loads(response.content)
            count += len(page["records"])
            if work:
                await asyncio.sleep(work)
            cursor = page.get("cursor")
            if not cursor:
                return count, time.perf_counter() - started


async def paginate(port: int, work: float) -> tuple[int, float]:
    """The client is created (and its database migrated) before the clock starts; closing it,
    which writes the rest of the call log, is timed."""
    from pysky_async import AsyncBskyClient

    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        bsky = AsyncBskyClient(public_host=f"http://127.0.0.1:{port}",
                               database_url=f"sqlite+aiosqlite:///{tmp}/bench.sqlite3")
        await bsky.store.ensure_ready()
        started = time.perf_counter()
        async with bsky:
            async for page in bsky.paginate("com.atproto.repo.listRecords", repo="did:plc:x",
                                            collection="com.example.note", limit=PAGE).pages():
                count += len(page.raw["records"])
                if work:
                    await asyncio.sleep(work)
        return count, time.perf_counter() - started


def worker(variant: str, port: int, work: float) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    run = {"raw": raw_loop, "paginate": paginate}[variant]
    count, seconds = asyncio.run(run(port, work))
    print(json.dumps({"records": count, "seconds": seconds}))


def measure(variant: str, port: int, work: float, repeats: int, expected: int) -> float:
    rates: list[float] = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--worker", variant, str(port), str(work)],
                             capture_output=True, text=True, check=True).stdout
        result = json.loads(out)
        if result["records"] != expected:
            raise SystemExit(f"{variant} returned {result['records']} records, expected {expected}")
        rates.append(result["records"] / result["seconds"])
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--work-ms", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), float(args.worker[2]))
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(args.records)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        print(f"{args.records} records, pages of {PAGE}, median of {args.repeats} runs each\n")
        print("| caller work per page | raw httpx loop (records/s) | paginate() with SQLite logging (records/s) "
              "| paginate / raw |")
        print("|---|---|---|---|")
        for work in (0.0, args.work_ms / 1000):
            raw = measure("raw", port, work, args.repeats, args.records)
            ours = measure("paginate", port, work, args.repeats, args.records)
            print(f"| {work * 1000:.0f} ms | {raw:,.0f} | {ours:,.0f} | {ours / raw:.2f}× |")
        print("\ntargets: ≥ 0.90× with no caller work; > 1.00× when the caller works per page (prefetch)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
