"""Crawl jobs: how fast workers drain the job table, and how fast the shared budget hands out tokens.

    .venv/bin/python benchmarks/bench_crawl_jobs.py [--dids 20000] [--workers 1 2 4] [--batch 50]

On SQLite (a file) and on a throwaway PostgreSQL (tests/realnet/postgres.py), each in its own
engine per worker as separate processes would have: ``--dids`` rows added to a job, then the
workers drain it (claim a batch, mark each batch done in one transaction: the bookkeeping of a
backfill without its fetch) and the jobs/s is printed per database and number of workers; then
``SharedBuckets.take`` on one key (one upsert per request: the cost the budget adds to each
request). Wall time; the load average is printed beside (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.realnet.postgres import PostgresServer

from pysky_async._crawl.budget import RequestBudget, SharedBuckets
from pysky_async._crawl.jobs import CrawlJobs
from pysky_async._storage.store import Store


async def drain(url: str, dids: int, workers: int, batch: int, job: str) -> float:
    setup = Store(url, auto_migrate=True)
    await setup.ensure_ready()
    async with setup.transaction() as session:
        await CrawlJobs(session, job).add(f"did:plc:{n:024d}" for n in range(dids))
    await setup.aclose()
    stores = [Store(url) for _ in range(workers)]

    async def worker(store: Store, name: str) -> int:
        done = 0
        while True:
            async with store.transaction() as session:
                jobs = CrawlJobs(session, job)
                claimed = await jobs.claim(name, batch, 60)
            if not claimed:
                return done
            async with store.transaction() as session:
                jobs = CrawlJobs(session, job)
                await jobs.lock(claimed)
                await jobs.mark_done(claimed, by=name)
            done += len(claimed)

    started = time.perf_counter()
    counts = await asyncio.gather(*(worker(s, f"w{i}") for i, s in enumerate(stores)))
    elapsed = time.perf_counter() - started
    for store in stores:
        await store.aclose()
    assert sum(counts) == dids, counts
    return dids / elapsed


async def takes(url: str, n: int) -> float:
    store = Store(url, auto_migrate=True)
    await store.ensure_ready()
    buckets = SharedBuckets(store)
    budget = RequestBudget(10**9, 1.0, 10**6)
    started = time.perf_counter()
    for _ in range(n):
        await buckets.take("bench", budget)
    elapsed = time.perf_counter() - started
    await store.aclose()
    return n / elapsed


async def main(args: argparse.Namespace) -> None:
    postgres = PostgresServer.start()
    try:
        with tempfile.TemporaryDirectory() as temporary:
            urls = {"sqlite": f"sqlite+aiosqlite:///{temporary}/bench.sqlite3",
                    "postgresql": postgres.create_database("bench_crawl")}
            print(f"load average {os.getloadavg()[0]:.1f}; {args.dids} DIDs, batches of {args.batch}")
            print(f"{'database':<12}{'workers':>8}{'jobs/s':>10}")
            for name, url in urls.items():
                for workers in args.workers:
                    if name == "sqlite" and workers > 1:
                        continue  # one process on SQLite
                    rate = await drain(url, args.dids, workers, args.batch, f"bench{workers}")
                    print(f"{name:<12}{workers:>8}{rate:>10.0f}")
            print(f"{'database':<12}{'budget takes/s':>18}")
            for name, url in urls.items():
                print(f"{name:<12}{await takes(url, 2000):>18.0f}")
    finally:
        postgres.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dids", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
