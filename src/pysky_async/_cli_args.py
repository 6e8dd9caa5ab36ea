"""The arguments of the ``stream``, ``group`` and ``backfill`` subcommands, apart from the code that
runs them: ``pysky-async --help`` and the other subcommands start without importing the streams, the
group or the backfill machinery (each subcommand's runtime is imported when it runs)."""

from __future__ import annotations

import argparse
from typing import Any

from ._exceptions import InvalidInput
from ._group import DEFAULT_PARTITIONS


def add_stream_parser(commands: Any) -> None:
    """Register the ``stream`` subcommand."""
    sub = commands.add_parser("stream", help="write record operations from the firehose or Jetstream to JSON Lines")
    sub.add_argument("--source", choices=["firehose", "jetstream"], default="jetstream")
    sub.add_argument("--service", default="wss://bsky.network", help="firehose: the relay or PDS")
    sub.add_argument("--instance", action="append", help="jetstream: an instance (repeat for failover)")
    sub.add_argument("--collection", action="append", type=_collection,
                     help="only this collection: an NSID, or a prefix such as app.bsky.feed.* (repeatable)")
    sub.add_argument("--did", action="append", help="only these repos (repeatable)")
    sub.add_argument("--out", required=True, help="the JSON Lines file (appended to)")
    sub.add_argument("--consumer", required=True, help="the name the cursor is stored under; a rerun resumes "
                     "(with --group: this worker's name, stable across restarts)")
    sub.add_argument("--group", help="run as a worker of this consumer group (PostgreSQL: any number of processes "
                     "share the partitions; the one that wins the lock also reads the source); each line is "
                     "written exactly once across the workers' files")
    sub.add_argument("--partitions", type=partitions, help=f"with --group: partitions of the group's log, by "
                     f"hash of the repo (1..{MAX_PARTITIONS}; fixed once the log exists; default: the log's, and "
                     f"{DEFAULT_PARTITIONS} for a new log)")
    sub.add_argument("--lease", type=float, default=10.0, help="with --group: seconds a worker's partition lease "
                     "lasts (heartbeats renew it every half of that); a dead worker's partitions move after "
                     "about this long (default 10)")
    sub.add_argument("--start-cursor", type=int, help="where a first run starts (default: now); on a consumer with "
                     "a stored cursor only together with --reset-cursor; with --group: where a new group's log "
                     "starts (a log that exists resumes at its stored cursor)")
    sub.add_argument("--reset-cursor", action="store_true", help="forget the consumer's stored cursor and start "
                     "over at --start-cursor (default: now), e.g. after the server refused it (FutureCursor)")
    sub.add_argument("--compress", action="store_true", help="jetstream: zstd-compressed messages")
    sub.add_argument("--limit", type=int, help="stop (gracefully) after at least this many lines; the events "
                     "already read are finished too, and at most this many are read ahead")
    sub.add_argument("--concurrency", type=int, default=32)


MAX_PARTITIONS = 1024
"""More partitions than this is a typo, not a plan: each costs a lease row and a watermark."""


def partitions(value: str) -> int:
    """``--partitions``: an integer from 1 to ``MAX_PARTITIONS``."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PARTITIONS:
        raise argparse.ArgumentTypeError(f"{value!r} is not a partition count: give a whole number from 1 to "
                                         f"{MAX_PARTITIONS} (e.g. 16; a few per worker process you plan to run)")
    return number


def _collection(value: str) -> str:
    from ._streams.collection_filter import check_collection

    try:
        return check_collection(value)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_group_parser(commands: Any) -> None:
    """Register the ``group`` subcommand."""
    sub = commands.add_parser("group", help="consumer groups of `stream --group`: their state in the database")
    sub.add_argument("action", choices=["status", "drop"], help="status: leader, upstream cursor, and per "
                     "partition its owner, lease, watermark and lag; drop: delete the group (its partitions, "
                     "members and rev guard) so the shared log is trimmed without waiting for it")
    sub.add_argument("group", help="the group's name (stream --group)")
    sub.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    sub.add_argument("--yes", action="store_true", help="drop: do not ask for confirmation")
    sub.add_argument("--force", action="store_true", help="drop: even while members of the group are live "
                     "(they lose their partitions and idle)")


def add_backfill_parser(commands: Any) -> None:
    """Register the ``backfill`` subcommand."""
    sub = commands.add_parser("backfill", help="write every record of whole repos (verified) to JSON Lines")
    sub.add_argument("--service", required=True, help="the PDS or relay to fetch repos from (and list them)")
    sub.add_argument("--did", action="append", help="a repo to backfill (repeatable); default: every active "
                     "repo the service lists (listRepos)")
    sub.add_argument("--collection", action="append", help="only these collections (prefix.* allowed; repeatable)")
    sub.add_argument("--out", required=True, help="the JSON Lines file (appended to)")
    sub.add_argument("--consumer", required=True, help="the name the job's state is stored under; a rerun resumes")
    sub.add_argument("--concurrency", type=int, default=8, help="repos at once")
    sub.add_argument("--per-host", type=int, default=4, help="repos at once from one host")
    sub.add_argument("--rate", type=float, help="repo fetches per second per host (default: unbounded)")
    sub.add_argument("--workers", type=int, help="run N worker PROCESSES (they use every core to verify) of "
                     "the crawl job named --consumer, kept in the database: the same command on other "
                     "machines with the same --consumer and a shared PostgreSQL --database-url joins the "
                     "job, and a dead worker's repos are taken over once its claims expire. Each machine "
                     "writes its own --out. Without it, one process backfills alone")
    sub.add_argument("--budget", action="append", metavar="NSID=LIMIT/SECONDS[/BURST]",
                     help="with --workers: the request budget per host shared by every worker in the "
                     "database (repeatable; NSID * is any other method). Default: Bluesky's limits per "
                     "IP, com.atproto.sync.getRepo=6000/300/100 and *=3000/300/50")
    sub.add_argument("--no-budget", action="store_true", help="with --workers: no shared request budget")
    sub.add_argument("--relist", action="store_true", help="with --workers and no --did: list the service's "
                     "repos again (a job lists them once; the repos new since join it, those done stay done)")
    sub.add_argument("--claim-ttl", type=float, default=60.0, help="with --workers: seconds a worker's "
                     "claims last after its last heartbeat (a dead worker's repos wait this long)")
    sub.add_argument("--job-worker", action="store_true", help=argparse.SUPPRESS)
