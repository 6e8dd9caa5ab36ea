"""What survives what: the storage layer under cancellation storms, a PostgreSQL outage, and
the event-loop time of the first call's schema check/upgrade. Prints markdown tables.

    .venv/bin/python benchmarks/bench_storage_reliability.py            # ~1 min
    .venv/bin/python benchmarks/bench_storage_reliability.py --outage 10 --storm-calls 300

Needs the PostgreSQL server binaries (as the tests do); the PDS is a fast in-process fake.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.realnet.postgres import PostgresServer  # noqa: E402
from tests.reliability.pg_outage import OwnPostgres  # noqa: E402
from tests.reliability.test_cancellation import POST, FastPds  # noqa: E402

from pysky_async import StorageError  # noqa: E402
from pysky_async._call_log import CallLogWriter  # noqa: E402
from pysky_async._storage.repositories import CursorRepository  # noqa: E402
from pysky_async._storage.store import Store  # noqa: E402


async def loop_block(work: Awaitable[Any]) -> tuple[float, float]:
    """(total seconds, longest stretch the event loop could not run a 1 ms ticker)."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    await work
    total = time.perf_counter() - start
    done = True
    await task
    return total, worst


async def startup(pg: OwnPostgres, tmp: Path) -> None:
    print("\n## First call: schema check/upgrade\n")
    print("| database | case | total ms | event loop blocked, ms (worst) |\n|---|---|---|---|")
    for name, url in (("SQLite", f"sqlite+aiosqlite:///{tmp}/startup.sqlite3"), ("PostgreSQL", pg.url("startup"))):
        for case in ("fresh: upgrade", "current: check"):
            store = Store(url, auto_migrate=True)
            total, worst = await loop_block(store.ensure_ready())
            await store.aclose()
            print(f"| {name} | {case} | {total * 1000:.0f} | {worst * 1000:.1f} |")


async def storm(tmp: Path, seeds: int, calls: int) -> None:
    import random

    import httpx

    from pysky_async import AsyncBskyClient

    print(f"\n## Cancellation storm: {calls} create_record calls, a random 0-6 ms timeout around each (SQLite)\n")
    print("| seed | cancelled | errors | slowest call, s | \"database is locked\" afterwards |\n|---|---|---|---|---|")
    for seed in range(1, seeds + 1):
        timeouts = random.Random(seed)
        http = httpx.AsyncClient(transport=httpx.MockTransport(FastPds(seed)))
        path = tmp / f"storm{seed}.sqlite3"
        async with AsyncBskyClient(username="me.test", password="pw", database_url=f"sqlite+aiosqlite:///{path}",
                                   http_client=http) as bsky:
            await bsky.login()
            cancelled = errors = 0
            slowest = 0.0
            for _ in range(calls):
                start = time.perf_counter()
                try:
                    await asyncio.wait_for(bsky.create_record("app.bsky.feed.post", POST), timeouts.uniform(0, 0.006))
                except asyncio.TimeoutError:  # wait_for's; not the builtin TimeoutError before 3.11
                    cancelled += 1
                except Exception:
                    errors += 1
                slowest = max(slowest, time.perf_counter() - start)
            try:
                await asyncio.wait_for(bsky.create_record("app.bsky.feed.post", POST), 5)
                locked = "no"
            except Exception as exc:
                locked = f"yes ({type(exc).__name__})"
        print(f"| {seed} | {cancelled} | {errors} | {slowest:.2f} | {locked} |")


async def outage(pg: OwnPostgres, seconds: float, max_pending: int) -> None:
    url = pg.url(f"outage{max_pending}")
    store = Store(url, auto_migrate=True)
    await store.ensure_ready()
    writer = CallLogWriter(store, max_pending=max_pending)
    errors: dict[str, int] = {}
    added = 0
    most_pending = 0

    def row() -> dict[str, Any]:
        return {"timestamp": dt.datetime.now(dt.timezone.utc), "endpoint": f"x.y.call{added}", "method": "GET",
                "write_op_points_consumed": 0, "session_was_refreshed": False}

    async def load(duration: float) -> None:
        nonlocal added, most_pending
        end = time.monotonic() + duration
        while time.monotonic() < end:
            for _ in range(10):
                writer.add(row())
                added += 1
            try:
                async with store.transaction() as db:
                    await CursorRepository(db).save("did:plc:me", "x.y.z", "", str(added))
            except Exception as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            most_pending = max(most_pending, writer.pending)
            await asyncio.sleep(0.01)

    await load(1)
    await asyncio.to_thread(pg.down)
    await load(seconds)
    await asyncio.to_thread(pg.up)
    back = time.monotonic()
    await load(1)
    for _ in range(1200):  # the writer retries on its own; give it up to a minute
        if not writer.pending:
            break
        await asyncio.sleep(0.05)
    drained = time.monotonic() - back
    await writer.aclose()
    [(written,)] = await store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
    await store.aclose()
    print(f"\n## PostgreSQL stopped for {seconds:g} s under load (~1,000 call-log rows/s + a cursor save every "
          f"10 ms), max_pending={max_pending:,}\n")
    print("| rows added | rows written | dropped (counted) | most rows held | written again after restart, s "
          "| errors raised by the store |\n|---|---|---|---|---|---|")
    raised = ", ".join(f"{n} {name}" for name, n in sorted(errors.items())) or "none"
    print(f"| {added} | {written} | {writer.rows_dropped} | {most_pending} | {drained:.1f} | {raised} |")
    assert set(errors) <= {StorageError.__name__}, errors


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds PostgreSQL is stopped")
    parser.add_argument("--max-pending", type=int, default=100_000)
    parser.add_argument("--storm-calls", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pysky-bench-"))
    server = PostgresServer.start()
    try:
        pg = OwnPostgres(server)
        await startup(pg, tmp)
        await storm(tmp, args.seeds, args.storm_calls)
        await outage(pg, args.outage, args.max_pending)
        if args.max_pending > 2_000:
            await outage(pg, args.outage, 2_000)  # the cap at work
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
