"""``pysky-async backfill``: verified repos to JSON Lines, one line per record, resumably.

Each repo's lines are written and flushed inside the transaction that marks the repo done, so a
rerun under the same ``--consumer`` skips the repos done; lines of a repo whose transaction did
not commit (a kill in between) are dropped from the file before the rerun writes them again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from .._exceptions import InvalidInput, PyskyError
from .._storage.repo_revs import DONE, RepoRevRepository
from .._syntax import Did, Nsid
from .backfill import Backfill, BackfillStats
from .backfill_workers import check_budgets, output_label, supervise

INTERRUPTED = 130


def check_collections(collections: list[str] | None) -> list[str] | None:
    """Each ``--collection`` is an NSID or ``prefix.*`` (``InvalidInput`` says which is not)."""
    for each in collections or ():
        try:
            Nsid(each[:-1] + "x" if each.endswith(".*") else each)
        except PyskyError as exc:
            raise InvalidInput(f"--collection {each!r} is neither an NSID (app.bsky.feed.post) nor a prefix "
                               "ending in .* (app.bsky.feed.*)") from exc
    return collections


def drop_uncommitted(path: str, done: set[str]) -> int:
    """Remove the lines of repos not in ``done`` (written before a kill, not committed); returns how many."""
    if not os.path.exists(path):
        return 0
    kept: list[bytes] = []
    dropped = 0
    with open(path, "rb") as source:
        for line in source:
            try:
                did = json.loads(line)["did"]
            except (ValueError, KeyError, TypeError):
                did = None  # a torn last line: dropped
            if did in done:
                kept.append(line)
            else:
                dropped += 1
    if dropped:
        temporary = f"{path}.resume"
        with open(temporary, "wb") as target:
            target.writelines(kept)
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, path)
    return dropped


def _progress(stats: BackfillStats, out: TextIO) -> None:
    out.write(f"\r{stats.finished}/{stats.repos} repos, {stats.records} records, "
              f"{stats.records_per_second:.0f} records/s, {len(stats.failed)} failed   ")
    out.flush()


async def run(args: argparse.Namespace) -> int:
    """Backfill; exit 0 when every repo is done, 1 naming the repos that failed, 130 when interrupted."""
    from .._client import AsyncBskyClient
    from .._json_body import atproto_json
    from .._streams.consumer import EventContext
    from .._streams.events import CommitEvent, StreamEvent

    dids = [Did(d) for d in args.did] if args.did else None
    collections = check_collections(args.collection)
    shared = args.workers is not None
    if shared and args.workers < 1:
        raise InvalidInput("--workers must be at least 1")
    if args.relist and (not shared or args.did):
        raise InvalidInput("--relist applies to a job of --workers that lists the service's repos (no --did): "
                           "a backfill without --workers lists them at every run")
    budgets = check_budgets(args) if shared else None
    async with AsyncBskyClient(auth_host=args.auth_host, database_url=args.database_url) as bsky:
        await bsky.store.ensure_ready()
        if shared and args.workers > 1 and bsky.store.dialect == "sqlite":
            raise InvalidInput("--workers above 1 needs a database every worker can write to at once: pass a "
                               "PostgreSQL --database-url (SQLite runs one worker: --workers 1)")
        label = output_label(args.out)
        if not args.job_worker:
            async with bsky.store.transaction() as session:
                if shared:
                    from .._crawl.jobs import CrawlJobs

                    done = await CrawlJobs(session, args.consumer).done_by(label)
                else:
                    done = {d for d, row in (await RepoRevRepository(session).backfilled(args.consumer)).items()
                            if row.backfill == DONE}
            if args.relist:
                from .._crawl.enumeration import relist

                await relist(bsky.store, args.consumer)  # the workers (started below) list again
            dropped = await asyncio.to_thread(drop_uncommitted, args.out, done)
            if dropped:
                print(f"dropped {dropped} lines of repos whose backfill had not committed; they are written again",
                      file=sys.stderr)
        if shared and args.workers > 1:
            return await supervise(args, bsky.store)
        crawler = bsky
        if budgets is not None:
            from .._crawl.middleware import SharedBudgetMiddleware

            crawler = bsky.with_options(middleware=[*bsky.config.middleware, SharedBudgetMiddleware(bsky.store,
                                                                                                   budgets)])
        with open(args.out, "a", encoding="utf-8") as out:  # noqa: ASYNC230
            buffers: dict[str, list[str]] = {}

            async def handler(event: StreamEvent, ctx: EventContext) -> None:
                if not isinstance(event, CommitEvent):
                    return
                buffer = buffers.get(event.did)
                if buffer is None:  # the repo's first record: its lines are written when it commits
                    buffer = buffers[event.did] = []

                    async def write(session: AsyncSession, did: str = event.did) -> None:
                        # one append: the lines of a repo stay together beside other worker processes'
                        os.write(out.fileno(), "".join(buffers.pop(did, ())).encode())
                        os.fsync(out.fileno())

                    ctx.on_commit(write)
                buffer.extend(json.dumps({"did": event.did, "path": op.path, "cid": op.cid,
                                          "record": atproto_json(op.record), "rev": event.rev, "live": event.live},
                                         ensure_ascii=False) + "\n" for op in event.ops)

            job: Backfill = crawler.sync.backfill(handler, name=args.consumer, dids=dids, service=args.service,
                                                  collections=collections, concurrency=args.concurrency,
                                                  per_host=args.per_host, rate=args.rate, shared=shared,
                                                  claim_ttl=args.claim_ttl, label=label)
            interrupted: list[int] = []
            loop = asyncio.get_running_loop()

            def interrupt() -> None:
                interrupted.append(signal.SIGINT)
                job.stop()  # the repos in progress finish and commit

            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, interrupt)
            task = asyncio.ensure_future(job.run())
            while not task.done():
                await asyncio.wait([task], timeout=1.0)
                if not args.job_worker:
                    _progress(job.stats, sys.stderr)
            stats = await task
    if not args.job_worker:
        sys.stderr.write("\n")
    print(f"backfill {args.consumer}: {stats.summary()}")
    if stats.failed:
        names = "; ".join(f"{did}: {reason}" for did, reason in sorted(stats.failed.items()))
        print(f"error: {len(stats.failed)} of {stats.repos} repos failed (a rerun with --consumer "
              f"{args.consumer} retries them): {names}", file=sys.stderr)
        return 1
    if interrupted:
        print(f"pysky-async: interrupted; rerun with --consumer {args.consumer} to finish", file=sys.stderr)
        return INTERRUPTED
    return 0
