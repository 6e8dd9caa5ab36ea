"""``pysky-async stream``: write a stream's record operations to JSON Lines, resumably."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import signal
import sys
from typing import Any, TextIO

import libipld

from .._cid import CID
from .._storage.store import Store
from .connection import Source
from .consumer import EventContext, StreamConsumer
from .events import CommitEvent, StreamEvent
from .firehose import FirehoseSource
from .jetstream import PUBLIC_INSTANCES, JetstreamSource


def add_parser(commands: Any) -> None:
    """Register the ``stream`` subcommand."""
    sub = commands.add_parser("stream", help="write record operations from the firehose or Jetstream to JSON Lines")
    sub.add_argument("--source", choices=["firehose", "jetstream"], default="jetstream")
    sub.add_argument("--service", default="wss://bsky.network", help="firehose: the relay or PDS")
    sub.add_argument("--instance", action="append", help="jetstream: an instance (repeat for failover)")
    sub.add_argument("--collection", action="append", help="only these collections (prefix.* allowed; repeatable)")
    sub.add_argument("--did", action="append", help="only these repos (repeatable)")
    sub.add_argument("--out", required=True, help="the JSON Lines file (appended to)")
    sub.add_argument("--consumer", required=True, help="the name the cursor is stored under; a rerun resumes")
    sub.add_argument("--start-cursor", type=int, help="first run only: where to start (default: now)")
    sub.add_argument("--compress", action="store_true", help="jetstream: zstd-compressed messages")
    sub.add_argument("--limit", type=int, help="stop (gracefully) after at least this many lines; the events "
                     "already read are finished too, and at most this many are read ahead")
    sub.add_argument("--concurrency", type=int, default=32)


def json_value(value: Any) -> Any:
    """A DAG-CBOR value as atproto JSON: ``CID`` values and CID links as ``{"$link"}``, bytes as
    ``{"$bytes"}``."""
    if isinstance(value, CID):
        return value.json()
    if isinstance(value, bytes):
        if value[:2] == b"\x01q" or value[:2] == b"\x01U":
            with contextlib.suppress(ValueError):
                return {"$link": libipld.encode_cid(value)}
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}  # unpadded, as the data model says
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


def _source(args: argparse.Namespace) -> Source:
    if args.source == "firehose":
        return FirehoseSource(args.service)
    return JetstreamSource(args.instance or PUBLIC_INSTANCES, collections=args.collection, dids=args.did,
                           compress=args.compress)


def _progress(consumer: StreamConsumer, lines: int, out: TextIO) -> None:
    lag = consumer.stats.lag
    out.write(f"\r{lines} lines, {consumer.stats.handled} events, {consumer.stats.events_per_second:.0f} events/s, "
              f"lag {'-' if lag is None else f'{lag:.1f} s'}, cursor {consumer.cursor}   ")
    out.flush()


async def run(args: argparse.Namespace) -> int:
    """Consume until Ctrl-C / SIGTERM (or ``--limit``), then drain, commit and return."""
    store = Store(args.database_url)
    written = 0
    stops: list[asyncio.Future[None]] = []
    # small buffered appends (flushed once a second) cost less than a thread hop per line
    with open(args.out, "a", encoding="utf-8") as out:  # noqa: ASYNC230
        async def handler(event: StreamEvent, ctx: EventContext) -> None:
            nonlocal written
            if not isinstance(event, CommitEvent):
                return
            for op in event.ops:
                out.write(json.dumps({"cursor": event.cursor, "did": event.did, "time": event.time,
                                      "action": op.action, "path": op.path, "cid": op.cid,
                                      "record": json_value(op.record)}, ensure_ascii=False) + "\n")
                written += 1
            if args.limit is not None and written >= args.limit and not stops:
                stops.append(asyncio.ensure_future(consumer.stop()))

        consumer = StreamConsumer(_source(args), handler, store=store, name=args.consumer,
                                  collections=args.collection, dids=args.did, start_cursor=args.start_cursor,
                                  concurrency=args.concurrency,
                                  # with a limit, read ahead at most that many events: a stop then writes
                                  # at most about twice the limit, not everything already buffered
                                  **({"max_pending": max(1, min(args.limit, 2000))} if args.limit else {}))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: stops.append(asyncio.ensure_future(consumer.stop())))
        task = asyncio.ensure_future(consumer.run())
        try:
            while not task.done():
                await asyncio.wait([task], timeout=1.0)
                consumer.stats.mark()
                out.flush()
                _progress(consumer, written, sys.stderr)
            await task
            await asyncio.gather(*stops)
        finally:
            await store.aclose()
    sys.stderr.write("\n")
    print(consumer.stats.summary())
    return 0
