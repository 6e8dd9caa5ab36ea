"""The server's answer wins: concurrent ``create_record`` calls against the reference PDS while
the client's PostgreSQL is stopped and started again. Prints a markdown table, one row per run.

    .venv/bin/python benchmarks/bench_outage_creates.py                 # 5 runs, ~1 min
    .venv/bin/python benchmarks/bench_outage_creates.py --runs 3 --down 10 --workers 16
    .venv/bin/python benchmarks/bench_outage_creates.py --call create_post   # bsky.create_post instead

"raised, on the PDS" must be 0: a caller that retries those would post twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.realnet.pds import PdsServer  # noqa: E402
from tests.realnet.postgres import PostgresServer  # noqa: E402
from tests.reliability.pg_outage import OwnPostgres  # noqa: E402
from tests.reliability.test_outage_creates import create_record, create_under_outage, pds_texts  # noqa: E402

from pysky_async import AsyncBskyClient  # noqa: E402


class Count(logging.Handler):
    """Counts the warnings that say the ledger could not record a write's outcome."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.unrecorded = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "could not record the outcome" in record.getMessage():
            self.unrecorded += 1


async def one_run(n: int, pds: PdsServer, pg: OwnPostgres, args: argparse.Namespace) -> None:
    account = pds.create_account(f"o{secrets.token_hex(5)}.test", secrets.token_hex(8))
    bsky = AsyncBskyClient(username=account.handle, password=account.password,
                           auth_host=pds.listen_url, database_url=pg.url(f"bench{n}"), auto_migrate=True)
    await bsky.login()
    count = Count()
    logging.getLogger("pysky_async").addHandler(count)
    sent_before = pds.request_count("com.atproto.repo.createRecord")
    try:
        create = bsky.create_post if args.call == "create_post" else create_record(bsky)
        outcomes, outage = await create_under_outage(create, pg, workers=args.workers, before=args.before,
                                                     down_for=args.down, after=args.after)
    finally:
        logging.getLogger("pysky_async").removeHandler(count)
    await bsky.aclose()
    sent = pds.request_count("com.atproto.repo.createRecord") - sent_before
    on_pds = pds_texts(pds, account.did)
    by_type = Counter(type(e).__name__ for e in outcomes.raised.values())
    raised = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())) or "none"
    twice = sum(text in on_pds for text in outcomes.raised)
    missing = sum(text not in on_pds for text in outcomes.returned)
    print(f"| {n} | {outcomes.attempted} | {len(outcomes.returned)} | {raised} | {twice} | {missing} | "
          f"{len(on_pds)} | {sent} | {count.unrecorded} | {outage:.1f} |", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=12, help="concurrent create loops")
    parser.add_argument("--before", type=float, default=1.5, help="seconds of creates before the stop")
    parser.add_argument("--down", type=float, default=3.0, help="seconds PostgreSQL is stopped (plus pg_ctl's time)")
    parser.add_argument("--after", type=float, default=1.5, help="seconds of creates after the restart")
    parser.add_argument("--call", choices=("create_record", "create_post"), default="create_record")
    args = parser.parse_args()
    pds = PdsServer.start()
    server = PostgresServer.start()
    try:
        print(f"\n## {args.workers} concurrent {args.call} loops; PostgreSQL stopped {args.before:g} s in, "
              f"started again after {args.down:g} s; {args.after:g} s more\n")
        print("| run | creates attempted | returned | raised (by type) | raised, on the PDS | returned, not on "
              "the PDS | records on the PDS | createRecord requests at the PDS | outcomes the ledger could not "
              "record | outage, s |\n|---|---|---|---|---|---|---|---|---|---|")
        for n in range(1, args.runs + 1):
            await one_run(n, pds, OwnPostgres(server), args)
    finally:
        server.stop()
        pds.stop()


if __name__ == "__main__":
    asyncio.run(main())
