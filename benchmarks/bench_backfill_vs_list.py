"""Every post of K accounts: a verified backfill (``bsky.sync.backfill``) vs paginating ``listRecords``.

    .venv/bin/python benchmarks/bench_backfill_vs_list.py [--accounts 200] [--median 250] [--rtt 0,50]
        [--repeats 3] [--likes-per-post 0.1] [--posts N]

A fresh reference PDS (tests/realnet) gets ``--accounts`` accounts. Posts per account follow a long
tail, as real accounts do: a log-normal with median ``--median`` (250) and sigma 1.0, capped at
5,000 (with the defaults: mean ~410, 10 % of accounts above ~900, 10 % below ~70; a fixed seed, so
every run writes the same counts); ``--posts N`` gives every account exactly N instead. Each repo
also holds ``--likes-per-post`` likes per post (records of another collection, which ``getRepo``
carries and ``listRecords`` skips; real repos hold more likes than posts). Seeding is
``applyWrites`` batches of 200, 16 accounts at once.

Then, on the same PDS, each way collects every post of every account, with at most 8 requests in
flight to the PDS either way:

- ``backfill``: ``bsky.sync.backfill(handler, dids=..., service=pds, collections=[post],
  per_host=8, concurrency=C)``: one ``getRepo`` per account, the CAR verified (every block
  hashed, the signature by the DID document's key, the whole MST walked), each post handed to a
  handler; each repo's state committed in SQLite. ``C`` 8 and 16 (with 16, eight repos download
  while others verify and commit; the PDS still sees at most 8 requests);
- ``listRecords``: ``bsky.paginate("com.atproto.repo.listRecords", repo=did, collection=post,
  limit=100)`` by 8 workers (nothing verified).

Every configuration is a row: seconds (median of ``--repeats``), posts/s, the PDS process's CPU
seconds (``/proc/<pid>/stat``) and the client process's CPU seconds over the run; both ways must
see the same set of (did, rkey, cid). ``--rtt`` lists the round trips to measure (milliseconds,
comma-separated; default ``0,50``): above 0 a proxy in its own process, in front of the PDS,
answers each request that much later (a client far from its PDS; loopback has no round trip).
The ratio is printed for every row; the target (>= 5x) is meant for the realistic 50 ms row.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
IN_FLIGHT = 8
"""Requests in flight to the PDS at most, either way (listRecords workers; the backfill's per_host)."""
BATCH = 200
"""applyWrites takes at most 200 writes."""


def post_counts(accounts: int, median: float, fixed: int | None) -> list[int]:
    """Posts per account: ``fixed`` each, else a seeded log-normal long tail (median, sigma 1.0, <= 5,000)."""
    if fixed is not None:
        return [fixed] * accounts
    rng = random.Random(20)
    return [max(1, min(5000, round(rng.lognormvariate(math.log(median), 1.0)))) for _ in range(accounts)]


async def seed(pds: Any, accounts: list[Any], posts: list[int], likes_per_post: float) -> None:
    import httpx

    async def one(account: Any, count: int) -> None:
        writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": f"p{i:06d}",
                   "value": {"$type": POST, "text": f"post {i} " + "x" * 60, "createdAt": "2026-12-04T00:00:00Z"}}
                  for i in range(count)]
        likes = max(1, round(count * likes_per_post))
        writes += [{"$type": "com.atproto.repo.applyWrites#create", "collection": LIKE, "rkey": f"l{i:06d}",
                    "value": {"$type": LIKE, "createdAt": "2026-12-04T00:00:00Z",
                              "subject": {"uri": f"at://{account.did}/{POST}/p{i % count:06d}",
                                          "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}}}
                   for i in range(likes)]
        async with httpx.AsyncClient(base_url=pds.listen_url, timeout=300) as http:
            r = await http.post("/xrpc/com.atproto.server.createSession",
                                json={"identifier": account.handle, "password": account.password})
            auth = {"authorization": f"Bearer {r.json()['accessJwt']}"}
            for start in range(0, len(writes), BATCH):
                r = await http.post("/xrpc/com.atproto.repo.applyWrites", headers=auth,
                                    json={"repo": account.did, "writes": writes[start:start + BATCH],
                                          "validate": False})
                r.raise_for_status()

    pending = list(zip(accounts, posts, strict=True))

    async def worker() -> None:
        while pending:
            await one(*pending.pop())

    await asyncio.gather(*(worker() for _ in range(16)))


async def by_backfill(bsky: Any, service: str, dids: list[str], run: str,
                      concurrency: int) -> set[tuple[str, str, str]]:
    from pysky_async._streams import CommitEvent, EventContext, StreamEvent

    seen: set[tuple[str, str, str]] = set()

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        assert isinstance(event, CommitEvent)
        for op in event.ops:
            seen.add((event.did, op.rkey, str(op.cid)))

    job = bsky.sync.backfill(handler, name=f"bench-{run}", dids=dids, service=service,
                             collections=[POST], concurrency=concurrency, per_host=IN_FLIGHT)
    stats = await job.run()
    assert not stats.failed, stats.failed
    return seen


async def by_list_records(bsky: Any, service: str, dids: list[str]) -> set[tuple[str, str, str]]:
    seen: set[tuple[str, str, str]] = set()
    queue = list(dids)

    async def worker() -> None:
        while queue:
            did = queue.pop()
            async for record in bsky.paginate("com.atproto.repo.listRecords", hostname=service,
                                              repo=did, collection=POST, limit=100):
                seen.add((did, record["uri"].rsplit("/", 1)[1], record["cid"]))

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return seen


def _proxy_main(upstream: str, rtt: float, ready: Any) -> None:
    """A loopback HTTP proxy to ``upstream`` answering each GET ``rtt`` seconds later (own process)."""
    import aiohttp
    from aiohttp import web
    from tests.streams.loopback import start_app

    async def serve() -> None:
        session = aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(limit=64))

        async def forward(request: web.Request) -> web.Response:
            await asyncio.sleep(rtt)
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept-encoding", "authorization")}
            async with session.get(upstream + request.path_qs, headers=headers) as r:
                body = await r.read()
                out = {k: v for k, v in r.headers.items() if k.lower() in ("content-type", "content-encoding")}
                return web.Response(body=body, status=r.status, headers=out)

        app = web.Application()
        app.router.add_get("/{tail:.*}", forward)
        _runner, port = await start_app(app)
        ready.send(port)
        await asyncio.Event().wait()

    asyncio.run(serve())


def start_proxy(upstream: str, rtt: float) -> tuple[Any, str]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=_proxy_main, args=(upstream, rtt, child),
                                                          daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{parent.recv()}"


def pds_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    rtt: float
    way: str
    seconds: list[float]
    pds_cpu: list[float]
    client_cpu: list[float]


async def measure(pds: Any, dids: list[str], repeats: int, rtts: list[float],
                  concurrencies: list[int]) -> list[Row]:
    from pysky_async import AsyncBskyClient

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncBskyClient(auth_host=pds.listen_url, public_host=pds.listen_url,
                                   plc_directory=pds.plc_url, request_limit=(10**9, 300.0),
                                   database_url=f"sqlite+aiosqlite:///{tmp}/bench.sqlite3") as bsky:
            for rtt in rtts:
                service, proxy = pds.listen_url, None
                if rtt:
                    proxy, service = start_proxy(pds.listen_url, rtt / 1000)
                ways: dict[str, Row] = {}
                for c in concurrencies:
                    ways[f"backfill c={c}"] = Row(rtt, f"backfill (getRepo, verified), per_host {IN_FLIGHT}, "
                                                       f"concurrency {c}", [], [], [])
                ways["list"] = Row(rtt, f"listRecords pages of 100, {IN_FLIGHT} workers", [], [], [])
                for run in range(repeats):
                    via: dict[str, set[tuple[str, str, str]]] = {}
                    for key, row in ways.items():
                        print(f"rtt {rtt:.0f} ms, run {run + 1}: {key}", file=sys.stderr)
                        cpu0, proc0, t0 = pds_cpu(pds.pid), time.process_time(), time.perf_counter()
                        if key == "list":
                            via[key] = await by_list_records(bsky, service, dids)
                        else:
                            via[key] = await by_backfill(bsky, service, dids, f"{rtt}-{key}-{run}",
                                                         int(key.split("=")[1]))
                        row.seconds.append(time.perf_counter() - t0)
                        row.pds_cpu.append(pds_cpu(pds.pid) - cpu0)
                        row.client_cpu.append(time.process_time() - proc0)
                    first = next(iter(via.values()))
                    assert all(seen == first for seen in via.values()), {k: len(v) for k, v in via.items()}
                rows.extend(ways.values())
                if proxy is not None:
                    proxy.kill()
                    proxy.join()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--median", type=float, default=250.0, help="median posts per account (log-normal)")
    parser.add_argument("--posts", type=int, default=None, help="exactly this many posts per account instead")
    parser.add_argument("--likes-per-post", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rtt", default="0,50", help="milliseconds added to each request, comma-separated")
    parser.add_argument("--concurrency", default="8,16", help="backfill concurrency values, comma-separated")
    args = parser.parse_args()
    from tests.realnet.pds import PdsServer

    counts = post_counts(args.accounts, args.median, args.posts)
    rtts = [float(x) for x in args.rtt.split(",")]
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    pds = PdsServer.start()
    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            accounts = list(pool.map(lambda _: pds.create_account(f"b{secrets.token_hex(5)}.test",
                                                                   secrets.token_urlsafe(12)), range(args.accounts)))
        asyncio.run(seed(pds, accounts, counts, args.likes_per_post))
        print(f"{args.accounts} accounts, {sum(counts):,} posts written in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        rows = asyncio.run(measure(pds, [a.did for a in accounts], args.repeats, rtts, concurrencies))
    finally:
        pds.stop()
    posts = sum(counts)
    ordered = sorted(counts)
    pages = sum(c // 100 + 1 for c in counts)
    print(f"\nevery post of {args.accounts} accounts: {posts:,} posts (per account: median "
          f"{statistics.median(ordered):.0f}, mean {posts / len(counts):.0f}, max {ordered[-1]:,}; "
          f"{args.likes_per_post:g} likes per post beside), {pages:,} listRecords pages; reference PDS on "
          f"loopback, {IN_FLIGHT} requests in flight at most; median of {args.repeats}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| round trip | way | seconds | posts/s | PDS CPU s | client CPU s | backfill faster |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rtt in rtts:
        group = [row for row in rows if row.rtt == rtt]
        listing = statistics.median(group[-1].seconds)
        for row in group:
            seconds = statistics.median(row.seconds)
            ratio = f"{listing / seconds:.1f}x" if row is not group[-1] else ""
            print(f"| {rtt:.0f} ms | {row.way} | {seconds:.2f} | {posts / seconds:,.0f} | "
                  f"{statistics.median(row.pds_cpu):.2f} | {statistics.median(row.client_cpu):.2f} | {ratio} |")
    print(f"\nlistRecords makes {pages / len(counts):.1f} requests per account, backfill 1: with the same requests in "
          "flight, and the PDS not the bottleneck, that bounds the ratio at a long round trip; where the PDS's CPU "
          "is the bottleneck, the ratio of the PDS CPU columns bounds it")
    print("target: backfill >= 5x faster than listRecords at a 50 ms round trip")


if __name__ == "__main__":
    main()
