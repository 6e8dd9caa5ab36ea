"""One worker process of a shared backfill into the ``mirror`` table, for the crawl tests.

    python -m tests.crawl.crawl_worker <pds url> <plc url> <database url> <job> <ip> <budget> <label>

``ip``: sent as X-Forwarded-For (the PDS, behind a trusted loopback proxy, rate-limits that
address); ``budget``: ``shared`` (the job's PostgreSQL) or an SQLite URL of this worker's own.
"""

from __future__ import annotations

import asyncio
import sys

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import AsyncBskyClient, HostBudgets, RequestBudget, SharedBudgetMiddleware
from pysky_async._storage.store import Store
from pysky_async._streams import CommitEvent, EventContext, StreamEvent

GET_REPO_BUDGET = RequestBudget(24, 4.0, 2)
"""5.5 getRepo a second with bursts of 2: at most 24 in any 4 s (29.5 in 5 s: a second of slack for
the way to the server) where the PDS allows 32 per 4 s. Two workers each on a budget of its own
ask 11 a second: above the PDS's 8."""


async def handler(event: StreamEvent, ctx: EventContext) -> None:
    if not isinstance(event, CommitEvent):
        return
    for op in event.ops:
        async def effect(session: AsyncSession, did: str = event.did, path: str = op.path,
                         cid: str | None = op.cid) -> None:
            await session.execute(text("INSERT INTO mirror (did, path, cid, live) VALUES (:did, :path, :cid, 0)"),
                                  {"did": did, "path": path, "cid": cid})

        ctx.on_commit(effect)


async def main(service: str, plc: str, database_url: str, job: str, ip: str, budget: str, label: str) -> None:
    async with httpx.AsyncClient(headers={"X-Forwarded-For": ip}, timeout=60) as http, \
            AsyncBskyClient(auth_host=service, plc_directory=plc, database_url=database_url, http_client=http) as bsky:
        own = None if budget == "shared" else Store(budget, auto_migrate=True)
        try:
            budgets = HostBudgets(methods={"com.atproto.sync.getRepo": GET_REPO_BUDGET})
            crawler = bsky.with_options(middleware=[SharedBudgetMiddleware(own or bsky.store, budgets)])
            backfill = crawler.sync.backfill(handler, name=job, service=service, shared=True, claim_ttl=3.0,
                                             label=label, concurrency=16, per_host=16)
            stats = await backfill.run()
            print(f"{label}: {stats.summary()}", flush=True)
        finally:
            if own is not None:
                await own.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:8]))
