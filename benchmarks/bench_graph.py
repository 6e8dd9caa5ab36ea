"""The follow-graph export over a seeded network: default concurrency against one call at a time.

    .venv/bin/python benchmarks/bench_graph.py [--authors 40] [--concurrency 8]

Starts a real network on loopback (PostgreSQL + ``@atproto/dev-env``: PLC, PDS, the bsky
AppView; see tests/realnet/), seeds ``--authors`` accounts that each post the query and follow
some of the others, then runs ``export_follow_graph`` twice in the same run — with
``concurrency=1`` and with the default — each from a fresh database and output file, and prints
wall time, API calls and edges. The two runs must produce the same edges.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.realnet.devenv import DevEnv
from tests.realnet.postgres import PostgresServer
from tests.test_graph_and_bot import seed_community

from pysky_async import AsyncBskyClient


async def run(devenv: DevEnv, query: str, concurrency: int, workdir: Path) -> tuple[float, int, set[tuple[str, str]]]:
    runner, _ = devenv.new_account("r")
    out = workdir / f"graph-{concurrency}.csv"
    async with AsyncBskyClient(username=runner.handle, password=runner.password, auth_host=devenv.pds_listen_url,
                               database_url=f"sqlite+aiosqlite:///{workdir}/graph-{concurrency}.sqlite3",
                               plc_directory=devenv.plc_url) as bsky:
        await bsky.login()
        started = time.perf_counter()
        report = await bsky.export_follow_graph(query, str(out), concurrency=concurrency, progress=False)
        seconds = time.perf_counter() - started
    with out.open(newline="") as f:
        edges = {(row["source"], row["target"]) for row in csv.DictReader(f)}
    return seconds, report.calls, edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    postgres = PostgresServer.start()
    devenv = DevEnv.start(postgres.create_database("bench_graph"))
    try:
        query = f"#dataBS{secrets.token_hex(3)}"
        print(f"seeding {args.authors} authors ...", file=sys.stderr)
        _, expected = seed_community(devenv, query, size=args.authors)
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for concurrency in (1, args.concurrency):
                seconds, calls, edges = asyncio.run(run(devenv, query, concurrency, Path(tmp)))
                if edges != expected:
                    raise SystemExit(f"concurrency {concurrency}: wrong edges ({len(edges)} vs {len(expected)})")
                rows.append((concurrency, seconds, calls, len(edges)))
        print(f"{args.authors} authors, {len(expected)} edges among them\n")
        print("| concurrency | wall seconds | API calls | edges | speed-up |")
        print("|---|---|---|---|---|")
        for concurrency, seconds, calls, edges_count in rows:
            print(f"| {concurrency} | {seconds:.2f} | {calls} | {edges_count} | {rows[0][1] / seconds:.1f}× |")
    finally:
        devenv.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
