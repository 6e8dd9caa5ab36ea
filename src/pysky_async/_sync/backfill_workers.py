"""``pysky-async backfill --workers N``: N worker processes of one shared crawl job, and their budget.

The command starts N copies of itself as workers of the job named ``--consumer`` (each claims
repos from the job table, verifies them on its own core and appends each repo's lines to
``--out`` in one write), shows the job's progress, passes Ctrl-C / SIGTERM on (each worker
finishes the repos it holds and gives the rest back) and exits as ``backfill`` does.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from .._exceptions import InvalidInput

if TYPE_CHECKING:
    from .._crawl.middleware import HostBudgets
    from .._storage.store import Store

INTERRUPTED = 130


def output_label(out: str) -> str:
    """Who wrote a repo's lines: this machine and the output file (stored with each repo done)."""
    return f"{socket.gethostname()}:{os.path.realpath(out)}"[:255]


def check_budgets(args: argparse.Namespace) -> HostBudgets | None:
    """The shared budget of ``--budget`` / ``--no-budget`` (``InvalidInput`` says which one is malformed)."""
    from .._crawl.budget import RequestBudget
    from .._crawl.middleware import HostBudgets

    if args.no_budget:
        if args.budget:
            raise InvalidInput("--budget and --no-budget contradict each other: pass one")
        return None
    defaults = HostBudgets()
    default, methods = defaults.default, dict(defaults.methods)
    for each in args.budget or ():
        nsid, _, spec = each.partition("=")
        parts = spec.split("/")
        try:
            if not nsid or len(parts) not in (2, 3):
                raise ValueError(each)
            budget = RequestBudget(int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else 1)
        except ValueError as exc:
            raise InvalidInput(f"--budget {each!r}: write NSID=LIMIT/SECONDS[/BURST], e.g. "
                               "com.atproto.sync.getRepo=6000/300/100 or *=3000/300/50") from exc
        if nsid == "*":
            default = budget
        else:
            methods[nsid] = budget
    return HostBudgets(default=default, methods=methods)


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The command line of one worker process: this command's, as one ``--job-worker``."""
    argv = [f"--{name.replace('_', '-')}={value}" for name in ("auth_host", "public_host", "database_url")
            if (value := getattr(args, name, None))]
    argv += ["backfill", "--service", args.service, "--out", args.out, "--consumer", args.consumer,
             "--concurrency", str(args.concurrency), "--per-host", str(args.per_host), "--workers", "1",
             "--claim-ttl", str(args.claim_ttl), "--job-worker"]
    for did in args.did or ():
        argv += ["--did", did]
    for collection in args.collection or ():
        argv += ["--collection", collection]
    for budget in args.budget or ():
        argv += ["--budget", budget]
    if args.rate is not None:
        argv += ["--rate", str(args.rate)]
    if args.no_budget:
        argv.append("--no-budget")
    return argv


async def supervise(args: argparse.Namespace, store: Store) -> int:
    """Run ``args.workers`` worker processes of the job to the end; exit as ``backfill`` does."""
    from .._crawl.jobs import CrawlJobs
    from .._crawl.worker_processes import start_worker_processes

    async def progress() -> None:
        async with store.transaction() as session:
            counts = await CrawlJobs(session, args.consumer).counts()
        sys.stderr.write(f"\r{counts.done}/{counts.total} repos done, {counts.claimed} in progress, "
                         f"{counts.failed} failed ({args.workers} workers here)   ")
        sys.stderr.flush()

    # on Ctrl-C / SIGTERM each worker finishes the repos in progress and gives the rest back
    async with start_worker_processes([worker_argv(args)] * args.workers, signal.SIGTERM) as workers:
        codes = await workers.wait(progress)
        sys.stderr.write("\n")
        async with store.transaction() as session:
            jobs = CrawlJobs(session, args.consumer)
            counts, failures = await jobs.counts(), await jobs.failures()
        interrupted = workers.interrupted
    print(f"backfill {args.consumer}: {counts.done}/{counts.total} repos done, {counts.failed} failed, "
          f"{counts.open} left; worker exit codes {codes}")
    if interrupted or INTERRUPTED in codes:
        print(f"pysky-async: interrupted; rerun with --consumer {args.consumer} to finish", file=sys.stderr)
        return INTERRUPTED
    if failures:
        names = "; ".join(f"{did}: {reason}" for did, reason in sorted(failures.items()))
        print(f"error: {len(failures)} of {counts.total} repos failed (a rerun with --consumer "
              f"{args.consumer} retries them): {names}", file=sys.stderr)
        return 1
    if any(codes) or counts.open:
        print(f"error: a worker exited with {[c for c in codes if c]} and {counts.open} repos are left: rerun "
              f"with --consumer {args.consumer} to finish them", file=sys.stderr)
        return 1
    return 0
