"""``pysky-async graph --workers N``: N worker processes of the shared export ``graph:<query>``.

Each worker writes the follows of the authors it claims to a part file of its own
(``<out>.part<i>``); once all of them ended, their rows are merged into ``--out`` (each
(source, target) once, rows already there kept). The same command on other machines, with the
same query and database, joins the job and merges its own parts into its own ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import signal
import sys
from pathlib import Path

from .._graph import COLUMNS
from .worker_processes import start_worker_processes

INTERRUPTED = 130


def part_path(out: str, index: int) -> str:
    """The part file of worker ``index``."""
    return f"{out}.part{index}"


def worker_argv(args: argparse.Namespace, index: int) -> list[str]:
    """One worker's command line: this command's, writing its own part file."""
    argv = [f"--{name.replace('_', '-')}={value}" for name in ("auth_host", "public_host", "database_url")
            if (value := getattr(args, name, None))]
    argv += ["graph", "--query", args.query, "--out", part_path(args.out, index), "--concurrency",
             str(args.concurrency), "--workers", "1", "--claim-ttl", str(args.claim_ttl)]
    if args.include_outsiders:
        argv.append("--include-outsiders")
    for budget in args.budget or ():
        argv += ["--budget", budget]
    if args.no_budget:
        argv.append("--no-budget")
    return argv


def merge(out: str, parts: list[str]) -> int:
    """Append the rows of ``parts`` not in ``out`` yet to ``out``; returns how many were added."""
    target = Path(out)
    seen: set[tuple[str, str]] = set()
    if target.exists() and target.stat().st_size:
        with target.open(newline="") as existing:
            seen = {(row["source"], row["target"]) for row in csv.DictReader(existing)}
    added = 0
    new_file = not target.exists() or target.stat().st_size == 0
    with target.open("a", newline="") as sink:
        writer = csv.writer(sink)
        if new_file:
            writer.writerow(COLUMNS)
        for part in parts:
            if not Path(part).exists():
                continue
            with open(part, newline="") as source:
                for row in csv.DictReader(source):
                    key = (row["source"], row["target"])
                    if key not in seen:
                        seen.add(key)
                        writer.writerow([row[column] for column in COLUMNS])
                        added += 1
    return added


async def supervise(args: argparse.Namespace) -> int:
    """Run ``args.workers`` worker processes of the export to the end, then merge their parts."""
    argvs = [worker_argv(args, i) for i in range(args.workers)]
    async with start_worker_processes(argvs, signal.SIGINT) as workers:  # each worker stops as on Ctrl-C
        codes = await workers.wait()
        added = await asyncio.to_thread(merge, args.out, [part_path(args.out, i) for i in range(args.workers)])
        interrupted = workers.interrupted
    print(f"graph {args.query}: {args.workers} workers ended with {list(codes)}; {added} edges merged into {args.out}")
    if interrupted or INTERRUPTED in codes:
        print("pysky-async: interrupted; run the same command again to finish", file=sys.stderr)
        return INTERRUPTED
    if any(codes):
        print("error: a worker failed (its output is above); run the same command again to finish",
              file=sys.stderr)
        return 1
    return 0
