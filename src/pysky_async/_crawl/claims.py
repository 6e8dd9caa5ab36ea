"""Work through the DIDs of a crawl job as one worker: claim in batches, renew, mark done, take over.

``work_through`` is the loop of a worker whose work is not a backfill (the follow-graph export):
it claims up to ``concurrency`` DIDs at a time, runs ``handle(did)`` on each with that many at
once, marks each done (by ``label``) once ``handle`` returned, and gives a failed one back to the
job (``PyskyError``; retried while attempts are left). It returns when no DID of the job is
pending or claimed; while other workers hold the last ones it waits, and takes over those whose
claims expire.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .._exceptions import PyskyError
from .jobs import CrawlJobs

if TYPE_CHECKING:
    from .._storage.store import Store

logger = logging.getLogger("pysky_async")


async def work_through(store: Store, job: str, worker: str, handle: Callable[[str], Awaitable[object]], *,
                       label: str, concurrency: int = 8, claim_ttl: float = 60.0, max_attempts: int = 3,
                       poll: float = 2.0) -> dict[str, str]:
    """Run ``handle`` on the job's DIDs as ``worker`` until none is left; returns the DIDs this
    worker saw fail for good, with why."""
    local: collections.deque[str] = collections.deque()
    claiming = asyncio.Lock()
    failed: dict[str, str] = {}

    async def next_did() -> str | None:
        while True:
            if local:
                return local.popleft()
            async with claiming:
                if local:
                    continue
                async with store.transaction() as session:
                    jobs = CrawlJobs(session, job)
                    claimed = await jobs.claim(worker, concurrency, claim_ttl)
                    waiting = None if claimed else (await jobs.counts(), await jobs.next_expiry())
                if waiting is None:
                    local.extend(claimed)
                    continue
                counts, expiry = waiting
                if counts.open == 0:
                    return None
                now = dt.datetime.now(dt.timezone.utc)
                await asyncio.sleep(poll if expiry is None else min(poll, max(0.05, (expiry - now).total_seconds())))

    async def loop() -> None:
        while (did := await next_did()) is not None:
            try:
                await handle(did)
            except PyskyError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                logger.warning("%s: %s failed: %s", job, did, reason)
                async with store.transaction() as session:
                    if await CrawlJobs(session, job).mark_failed(did, reason, max_attempts=max_attempts):
                        failed[did] = reason
                continue
            async with store.transaction() as session:
                await CrawlJobs(session, job).mark_done([did], by=label)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(claim_ttl / 3)
            try:
                async with store.transaction() as session:
                    await CrawlJobs(session, job).extend(worker, claim_ttl)
            except PyskyError:  # the next beat tries again
                logger.warning("%s: worker %s could not renew its claims", job, worker, exc_info=True)

    beating = asyncio.create_task(heartbeat())
    try:
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    finally:
        beating.cancel()
        async with store.transaction() as session:
            await CrawlJobs(session, job).release(worker)
    return failed
