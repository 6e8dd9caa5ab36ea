"""Firehose consumption: pysky_async's StreamConsumer against the ``atproto`` SDK's firehose client.

    .venv/bin/python benchmarks/bench_streams.py [--frames 30000] [--repeats 3]

Frames are recorded once from a real reference PDS (4 accounts creating, updating and deleting
records: single writes and applyWrites batches of 10; cached in the temp directory), then
renumbered (seq only) to ``--frames`` and replayed by a loopback websocket server in its own
process, as fast as the client reads. Each variant runs in a fresh process; the table shows
events per second (median of the repeats) and peak RSS:

- ``decode``: the frames decoded in memory, no socket: ``decode_frame`` (typed events with
  record values) vs the SDK's ``parse_subscribe_repos_message`` + ``CAR.from_bytes`` + the
  record of each op (what its firehose example does);
- ``end to end``: connect, read, decode and run a no-op handler for every frame: the SDK's
  ``AsyncFirehoseSubscribeReposClient`` with that handler vs ``StreamConsumer`` with its
  durable cursor on (SQLite, commits every 500 events / 1 s);
- ``slow handler``: StreamConsumer with a 1 ms handler, concurrency 8, ``max_pending`` 500 over
  5,000 frames: peak pending events (the bound) and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from firehose_recording import record, renumbered, replay_server

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "pysky_bench_streams_frames.bin"


# ---------------------------------------------------------------------------- the variants
def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_pysky(frames: list[bytes]) -> float:
    from pysky_async._streams import decode_frame

    t0 = time.perf_counter()
    for frame in frames:
        decode_frame(frame)
    return len(frames) / (time.perf_counter() - t0)


def atproto_handler() -> Callable[[object], None]:
    from atproto import CAR, models, parse_subscribe_repos_message

    def handle(message: object) -> None:
        commit = parse_subscribe_repos_message(message)
        if isinstance(commit, models.ComAtprotoSyncSubscribeRepos.Commit) and commit.blocks:
            car = CAR.from_bytes(commit.blocks)
            for op in commit.ops:
                if op.cid:
                    car.blocks.get(op.cid)

    return handle


def decode_atproto(frames: list[bytes]) -> float:
    from atproto_subscription.client import _get_message_frame_from_bytes_or_raise  # what its client runs

    handle = atproto_handler()
    t0 = time.perf_counter()
    for frame in frames:
        handle(_get_message_frame_from_bytes_or_raise(frame))
    return len(frames) / (time.perf_counter() - t0)


async def e2e_pysky(port: int, count: int, slow: bool) -> dict[str, float]:
    from pysky_async._storage.store import Store
    from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

    done = asyncio.Event()

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if slow:
            await asyncio.sleep(0.001)
        if event.cursor == count:
            done.set()

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", auto_migrate=True)
        await store.ensure_ready()
        consumer = StreamConsumer(FirehoseSource(f"http://127.0.0.1:{port}"), handler, store=store, name="bench",
                                  start_cursor=0, concurrency=8 if slow else 32,
                                  max_pending=500 if slow else 2000)
        t0 = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        await done.wait()
        elapsed = time.perf_counter() - t0
        await consumer.stop()
        await task
        await store.aclose()
    # the reference PDS follows an account's first #commit with a #sync at the same rev: the rev guard
    # skips that one (stats.stale_revs), the handler sees the rest
    assert consumer.stats.handled + consumer.stats.stale_revs >= count and consumer.cursor == count, \
        consumer.stats.summary()
    return {"eps": count / elapsed, "peak_pending": consumer.peak_pending, "rss": rss_mb()}


async def e2e_atproto(port: int, count: int) -> dict[str, float]:
    from atproto import AsyncFirehoseSubscribeReposClient, parse_subscribe_repos_message

    handle = atproto_handler()
    seen = 0
    client = AsyncFirehoseSubscribeReposClient(base_uri=f"ws://127.0.0.1:{port}/xrpc")

    async def on_message(message: object) -> None:
        nonlocal seen
        handle(message)
        seen += 1
        if seen == count:
            await client.stop()

    assert parse_subscribe_repos_message
    t0 = time.perf_counter()
    await client.start(on_message)
    return {"eps": count / (time.perf_counter() - t0), "rss": rss_mb()}


def run_variant(name: str, port: int, count: int) -> dict[str, float]:
    if name == "decode-pysky":
        return {"eps": decode_pysky(renumbered(CACHE, count)), "rss": rss_mb()}
    if name == "decode-atproto":
        return {"eps": decode_atproto(renumbered(CACHE, count)), "rss": rss_mb()}
    if name == "e2e-pysky":
        return asyncio.run(e2e_pysky(port, count, slow=False))
    if name == "e2e-atproto":
        return asyncio.run(e2e_atproto(port, count))
    if name == "slow-pysky":
        return asyncio.run(e2e_pysky(port, count, slow=True))
    raise SystemExit(f"unknown variant {name}")


# ---------------------------------------------------------------------------- the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.port, args.frames)))
        return
    if not CACHE.exists():
        record(CACHE, accounts=4, singles=400, batches=40)
    runs: list[tuple[str, str, int]] = [
        ("decode", "pysky", args.frames), ("decode", "atproto", args.frames),
        ("end to end", "pysky", args.frames), ("end to end", "atproto", args.frames),
        ("slow handler", "pysky", 5000)]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for frames in sorted({n for *_, n in runs}):
        with replay_server(CACHE, frames) as port:
            for kind, client, n in runs:
                if n != frames:
                    continue
                variant = {"decode": "decode", "end to end": "e2e", "slow handler": "slow"}[kind] + f"-{client}"
                for _ in range(args.repeats if kind != "slow handler" else 1):
                    out = subprocess.run([sys.executable, __file__, "--variant", variant, "--port", str(port),
                                          "--frames", str(n)], capture_output=True, text=True, check=True,
                                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
                    results.setdefault((kind, client), []).append(json.loads(out.stdout.splitlines()[-1]))
                    print(f"{kind} {client}: {results[kind, client][-1]}", file=sys.stderr)

    def eps(kind: str, client: str) -> float:
        return statistics.median(r["eps"] for r in results[kind, client])

    print(f"\n{args.frames} recorded firehose frames (renumbered), loopback websocket server in its own process\n")
    print("| measurement | pysky_async | atproto SDK | ratio |")
    print("|---|---:|---:|---:|")
    for kind in ("decode", "end to end"):
        mine, theirs = eps(kind, "pysky"), eps(kind, "atproto")
        print(f"| {kind} (events/s) | {mine:,.0f} | {theirs:,.0f} | {mine / theirs:.1f}× |")
    slow = results["slow handler", "pysky"][0]
    print(f"| slow handler (1 ms, 5,000 frames): peak pending / max_pending 500 | {slow['peak_pending']:.0f} | | |")
    for kind in ("end to end", "slow handler"):
        their_rss = f"{max(r['rss'] for r in results[kind, 'atproto']):.0f}" if (kind, "atproto") in results else ""
        print(f"| {kind}: peak RSS (MB) | {max(r['rss'] for r in results[kind, 'pysky']):.0f} | {their_rss} | |")
    print(f"\ntargets: decode and dispatch ≥ 3× the SDK: {eps('decode', 'pysky') / eps('decode', 'atproto'):.1f}×; "
          f"end to end ≥ 10,000 events/s with the durable cursor: {eps('end to end', 'pysky'):,.0f}/s")


if __name__ == "__main__":
    main()
