"""``pysky-async stream``: write a stream's record operations to JSON Lines, resumably."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from .._exceptions import InvalidInput
from .._json_body import atproto_json
from .._storage.store import Store
from .committed_file import CommittedFile
from .connection import Source
from .consumer import EventContext, StreamConsumer
from .events import CommitEvent, RepoOp, StreamEvent
from .firehose import FirehoseSource
from .jetstream import PUBLIC_INSTANCES, JetstreamSource


def _source(args: argparse.Namespace) -> Source:
    if args.source == "firehose":
        return FirehoseSource(args.service)
    return JetstreamSource(args.instance or PUBLIC_INSTANCES, collections=args.collection, dids=args.did,
                           compress=args.compress)


def _line(event: CommitEvent, op: RepoOp) -> str:
    return json.dumps({"cursor": event.cursor, "did": event.did, "time": event.time, "action": op.action,
                       "path": op.path, "cid": op.cid, "record": atproto_json(op.record)}, ensure_ascii=False)


def _progress(consumer: StreamConsumer, lines: int, out: TextIO) -> None:
    lag = consumer.stats.lag
    out.write(f"\r{lines} lines, {consumer.stats.handled} events, {consumer.stats.events_per_second:.0f} events/s, "
              f"lag {'-' if lag is None else f'{lag:.1f} s'}, cursor {consumer.cursor}   ")
    out.flush()


async def _refuse_start_cursor_on_a_stored_one(consumer: StreamConsumer, args: argparse.Namespace) -> None:
    if args.start_cursor is None or args.reset_cursor:
        return
    stored = await consumer.load_cursor()
    if stored is not None:
        raise InvalidInput(f"consumer {args.consumer!r} already has a stored cursor ({stored}) and would resume "
                           f"there; --start-cursor only sets where a first run starts. Add --reset-cursor to start "
                           f"over at {args.start_cursor}, or drop --start-cursor to resume at {stored}")


def _read_ahead(args: argparse.Namespace) -> dict[str, Any]:
    # with a limit, read ahead at most that many events: a stop then writes
    # at most about twice the limit, not everything already buffered
    return {"max_pending": max(1, min(args.limit, 2000))} if args.limit else {}


async def run(args: argparse.Namespace) -> int:
    """Consume until Ctrl-C / SIGTERM (or ``--limit``), then drain, commit and return."""
    if args.group is not None:
        return await _run_group(args)
    if args.partitions is not None:
        raise InvalidInput("--partitions needs --group: partitions belong to a consumer group (add --group NAME)")
    store = Store(args.database_url)
    written = 0
    stops: list[asyncio.Future[None]] = []
    # small buffered appends (flushed once a second) cost less than a thread hop per line
    try:
        with open(args.out, "a", encoding="utf-8") as out:  # noqa: ASYNC230
            async def handler(event: StreamEvent, ctx: EventContext) -> None:
                nonlocal written
                if not isinstance(event, CommitEvent):
                    return
                for op in event.ops:
                    out.write(_line(event, op) + "\n")
                    written += 1
                if args.limit is not None and written >= args.limit and not stops:
                    stops.append(asyncio.ensure_future(consumer.stop()))

            consumer = StreamConsumer(_source(args), handler, store=store, name=args.consumer,
                                      collections=args.collection, dids=args.did, start_cursor=args.start_cursor,
                                      reset_cursor=args.reset_cursor, concurrency=args.concurrency,
                                      **_read_ahead(args))
            await _refuse_start_cursor_on_a_stored_one(consumer, args)
            await _until_stopped(consumer, stops, lambda: written, out.flush)
    finally:
        await store.aclose()
    print(consumer.stats.summary())
    return 0


async def _run_group(args: argparse.Namespace) -> int:
    """A worker of ``--group``: lines go out in each event's commit, so every line is in exactly one file."""
    if args.reset_cursor:
        raise InvalidInput("--reset-cursor does not apply to a group: its workers share one stored upstream "
                           "cursor. Start a new group (another --group name) to start over")
    if not args.lease > 0:
        raise InvalidInput(f"--lease must be a number of seconds above 0, not {args.lease} (default 10)")
    store = Store(args.database_url)
    partitions = args.partitions
    if store.engine.dialect.name != "postgresql":
        sys.stderr.write(f"note: {store.engine.url.render_as_string(hide_password=True)} is not PostgreSQL: "
                         f"group {args.group!r} runs in this one process with one partition. To share it among "
                         "processes or machines, give --database-url postgresql+asyncpg://...\n")
        partitions = 1
    out = CommittedFile(args.out, f"{args.group}/{args.consumer}")
    handled_lines = 0
    stops: list[asyncio.Future[None]] = []
    try:
        await out.open(store)

        async def handler(event: StreamEvent, ctx: EventContext) -> None:
            nonlocal handled_lines
            if not isinstance(event, CommitEvent) or not event.ops:
                return
            lines = [_line(event, op) for op in event.ops]
            ctx.on_commit(lambda session: out.append(session, lines))
            handled_lines += len(lines)
            if args.limit is not None and handled_lines >= args.limit and not stops:
                stops.append(asyncio.ensure_future(consumer.stop()))

        consumer = StreamConsumer(_source(args), handler, store=store, name=args.consumer, group=args.group,
                                  partitions=partitions, heartbeat_interval=args.lease / 2,
                                  lease_duration=args.lease, collections=args.collection, dids=args.did,
                                  start_cursor=args.start_cursor, concurrency=args.concurrency, **_read_ahead(args))
        await _until_stopped(consumer, stops, lambda: out.lines, lambda: None)
    finally:
        try:
            await out.close(store)
        finally:
            await store.aclose()
    print(consumer.stats.summary())
    return 0


async def _until_stopped(consumer: StreamConsumer, stops: list[asyncio.Future[None]], lines: Callable[[], int],
                         flush: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: stops.append(asyncio.ensure_future(consumer.stop())))
    task = asyncio.ensure_future(consumer.run())
    try:
        while not task.done():
            await asyncio.wait([task], timeout=1.0)
            consumer.stats.mark()
            flush()
            _progress(consumer, lines(), sys.stderr)
    finally:
        sys.stderr.write("\n")  # end the progress line (before an error, too)
    await task
    await asyncio.gather(*stops)
