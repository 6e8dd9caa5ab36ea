"""Every post of K accounts: a verified backfill (``bsky.sync.backfill``) vs paginating ``listRecords``.

    .venv/bin/python benchmarks/bench_backfill_vs_list.py [--accounts 200] [--posts 50] [--repeats 3]

A fresh reference PDS (tests/realnet) gets ``--accounts`` accounts with ``--posts`` posts each
(applyWrites) plus a few records of another collection. Then, in the same process and on the same
PDS, with the same concurrency (8 repos at once), each way collects every post of every account:

- ``backfill``: ``bsky.sync.backfill(handler, dids=..., service=pds, collections=[post])``: one
  ``getRepo`` per account, the CAR verified (blocks, signature by the DID document's key, the whole
  MST), each post handed to a handler; each repo's state committed in SQLite;
- ``listRecords``: ``bsky.paginate("com.atproto.repo.listRecords", repo=did, collection=post,
  limit=100)`` for each account (nothing verified).

The table shows the median seconds of ``--repeats`` runs and posts per second; both must see the
same set of (did, rkey, cid). ``--rtt MS`` puts a loopback proxy in front of the PDS that delays
each request by that many milliseconds (a network round trip, which loopback does not have); the
default 0 measures the PDS and the client alone.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POST = "app.bsky.feed.post"
CONCURRENCY = 8


async def seed(pds: Any, accounts: list[Any], posts: int) -> None:
    import httpx

    async def one(account: Any) -> None:
        async with httpx.AsyncClient(base_url=pds.listen_url, timeout=120) as http:
            r = await http.post("/xrpc/com.atproto.server.createSession",
                                json={"identifier": account.handle, "password": account.password})
            auth = {"authorization": f"Bearer {r.json()['accessJwt']}"}
            for start in range(0, posts, 199):  # applyWrites takes at most 200 writes
                writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": f"p{i:06d}",
                           "value": {"$type": POST, "text": f"post {i} " + "x" * 60,
                                     "createdAt": "2026-12-04T00:00:00Z"}}
                          for i in range(start, min(posts, start + 199))]
                writes.append({"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.like",
                               "rkey": f"l{start:06d}", "value": {"$type": "app.bsky.feed.like",
                                                                  "createdAt": "2026-12-04T00:00:00Z"}})
                r = await http.post("/xrpc/com.atproto.repo.applyWrites", headers=auth,
                                    json={"repo": account.did, "writes": writes, "validate": False})
                r.raise_for_status()

    for start in range(0, len(accounts), 16):
        await asyncio.gather(*(one(a) for a in accounts[start:start + 16]))


async def by_backfill(bsky: Any, service: str, dids: list[str], run: int) -> set[tuple[str, str, str]]:
    from pysky_async._streams import CommitEvent, EventContext, StreamEvent

    seen: set[tuple[str, str, str]] = set()

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        assert isinstance(event, CommitEvent)
        for op in event.ops:
            seen.add((event.did, op.rkey, str(op.cid)))

    job = bsky.sync.backfill(handler, name=f"bench-{run}", dids=dids, service=service,
                             collections=[POST], concurrency=CONCURRENCY, per_host=CONCURRENCY)
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

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return seen


async def delaying_proxy(upstream: str, rtt: float) -> tuple[Any, str]:
    """A loopback HTTP proxy to ``upstream`` that answers each request ``rtt`` seconds later."""
    import httpx
    from aiohttp import web
    from tests.streams.loopback import start_app

    http = httpx.AsyncClient(base_url=upstream, timeout=120, limits=httpx.Limits(max_connections=64))

    async def forward(request: web.Request) -> web.Response:
        await asyncio.sleep(rtt)
        r = await http.get(request.path, params=dict(request.query))
        return web.Response(body=r.content, status=r.status_code,
                            content_type=r.headers.get("content-type", "application/octet-stream").split(";")[0])

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    app.on_cleanup.append(lambda _app: http.aclose())
    runner, port = await start_app(app)
    return runner, f"http://127.0.0.1:{port}"


async def measure(pds: Any, dids: list[str], repeats: int, rtt: float) -> dict[str, list[float]]:
    from pysky_async import AsyncBskyClient

    times: dict[str, list[float]] = {"backfill": [], "listRecords": []}
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncBskyClient(auth_host=pds.listen_url, public_host=pds.listen_url,
                                   plc_directory=pds.plc_url,
                                   database_url=f"sqlite+aiosqlite:///{tmp}/bench.sqlite3") as bsky:
            service = pds.listen_url
            proxy = None
            if rtt:
                proxy, service = await delaying_proxy(pds.listen_url, rtt)
            for run in range(repeats):
                t0 = time.perf_counter()
                via_backfill = await by_backfill(bsky, service, dids, run)
                times["backfill"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                via_list = await by_list_records(bsky, service, dids)
                times["listRecords"].append(time.perf_counter() - t0)
                assert via_backfill == via_list, (len(via_backfill), len(via_list))
            if proxy is not None:
                await proxy.cleanup()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rtt", type=float, default=0.0, help="milliseconds added to each request (0: none)")
    args = parser.parse_args()
    from tests.realnet.pds import PdsServer

    pds = PdsServer.start()
    try:
        t0 = time.perf_counter()
        accounts = [pds.create_account(f"b{secrets.token_hex(5)}.test", secrets.token_urlsafe(12))
                    for _ in range(args.accounts)]
        asyncio.run(seed(pds, accounts, args.posts))
        print(f"{args.accounts} accounts x {args.posts} posts written in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        times = asyncio.run(measure(pds, [a.did for a in accounts], args.repeats, args.rtt / 1000))
    finally:
        pds.stop()
    posts = args.accounts * args.posts
    backfill, listing = statistics.median(times["backfill"]), statistics.median(times["listRecords"])
    print(f"\nevery post of {args.accounts} accounts ({posts:,} posts), reference PDS on loopback"
          f"{f' + {args.rtt:.0f} ms per request' if args.rtt else ''}, {CONCURRENCY} repos at once, "
          f"median of {args.repeats}\n")
    print("| way | seconds | posts/s |")
    print("|---|---:|---:|")
    print(f"| backfill (getRepo, verified) | {backfill:.2f} | {posts / backfill:,.0f} |")
    print(f"| listRecords pages of 100 | {listing:.2f} | {posts / listing:,.0f} |")
    print(f"\nbackfill is {listing / backfill:.1f}x faster (target >= 5x)")


if __name__ == "__main__":
    main()
