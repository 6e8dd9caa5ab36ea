"""Commit verification: what proving each firehose commit costs (signature, blocks, MST proofs, inductive).

    .venv/bin/python benchmarks/bench_verify.py [--repeats 3]

Frames are recorded once from a real reference PDS (8 accounts creating, updating and deleting
records: single writes and applyWrites batches of 10) together with the accounts' DID documents
from its PLC (cached in the temp directory). Then, each variant in a fresh process:

- ``in memory``: ``decode_frame(keep_commit=True)`` and ``CommitVerifier.check`` over every frame
  once, with a fresh verifier per repeat (chains followed): decode only, ``signature``,
  ``proofs`` and ``inductive``; and the block hashing alone (``read_car`` of every commit's CAR);
- ``live``: ``StreamConsumer`` with the verifier (no-op handler, in-memory cursor) reading the
  frames from a loopback websocket server in its own process (``bench_streams.py``'s replay);
  ``live+1 process`` the same with ``CommitVerifier(processes=1)``: a worker process proves
  commits beside the loop (started and ready before the clock starts, as a connection is). Its
  CPU figure counts the worker's CPU time too.

The figures are verified commits per second of wall time and per second of the process's CPU
time (median of the repeats; on a shared, loaded machine the CPU figure is the stable one); the
target is ≥ 5,000/s live with proofs on.
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
from pathlib import Path
from typing import Any

from firehose_recording import record, recorded, renumbered, replay_server

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "pysky_bench_verify_frames.bin"
DOCS = CACHE.with_suffix(".docs.json")
MODES = ("signature", "proofs", "inductive")


def frames() -> list[bytes]:
    """The recording renumbered 1..n, each once: every repo's chain is intact."""
    return renumbered(CACHE, len(recorded(CACHE)))


def verifier(mode: str, processes: int = 0) -> Any:
    from pysky_async._streams import CommitVerifier

    docs = json.loads(DOCS.read_text())

    async def resolve(did: str) -> dict[str, Any]:
        return dict(docs[did])

    return CommitVerifier(resolve, verify=mode, processes=processes)  # type: ignore[arg-type]


def children_cpu() -> float:
    """CPU seconds of this process's ended child processes (the proof workers, once closed)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_memory(mode: str) -> dict[str, float]:
    import libipld

    from pysky_async._streams import CommitEvent, decode_frame
    from pysky_async._sync.blocks import read_car

    data = frames()
    if mode == "hashing":
        cars = [body["blocks"] for _h, body in map(libipld.decode_dag_cbor_multi, data) if body.get("blocks")]
        t0, c0 = time.perf_counter(), time.process_time()
        for car in cars:
            read_car(car)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"per_s": len(cars) / elapsed, "cpu_per_s": len(cars) / cpu, "us": cpu / len(cars) * 1e6,
                "kb": sum(map(len, cars)) / len(cars) / 1024}
    check = None if mode == "decode" else verifier(mode)

    async def run() -> tuple[int, float, float]:
        commits = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for frame in data:
            event = decode_frame(frame, keep_commit=check is not None)
            if isinstance(event, CommitEvent):
                commits += 1
                if check is not None:
                    assert await check.check(event), check.summary()
        return commits, time.perf_counter() - t0, time.process_time() - c0

    commits, elapsed, cpu = asyncio.run(run())
    if check is not None:
        assert check.failed == 0 and not check.desynchronized, check.summary()
    return {"per_s": commits / elapsed, "cpu_per_s": commits / cpu, "us": cpu / commits * 1e6, "commits": commits}


async def live(port: int, mode: str, count: int, commits: int, processes: int = 0) -> dict[str, float]:
    from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

    done = asyncio.Event()

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if event.cursor == count:
            done.set()

    if processes:  # what starting and stopping the workers costs them, to take from their total below
        async with verifier(mode, processes):
            pass
    startup = children_cpu()
    async with verifier(mode, processes) as check:
        consumer = StreamConsumer(FirehoseSource(f"http://127.0.0.1:{port}"), handler, start_cursor=0, verifier=check)
        t0, c0 = time.perf_counter(), time.process_time()
        task = asyncio.create_task(consumer.run())
        await done.wait()
        elapsed, main = time.perf_counter() - t0, time.process_time() - c0
        await consumer.stop()
        await task
    worker = max(0.0, children_cpu() - 2 * startup)  # the workers' CPU is known once they ended
    assert check.failed == 0 and check.verified >= commits and not check.desynchronized, check.summary()
    cpu = main + worker
    return {"per_s": commits / elapsed, "cpu_per_s": commits / cpu, "us": cpu / commits * 1e6,
            "main_us": main / commits * 1e6, "worker_us": worker / commits * 1e6,
            "offloaded": check.offloaded / commits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--commits", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        kind, mode = args.variant.split(":")
        processes = 1 if kind == "live+1process" else 0
        out = in_memory(mode) if kind == "memory" else asyncio.run(live(args.port, mode, args.frames, args.commits,
                                                                         processes))
        print(json.dumps(out))
        return
    if not (CACHE.exists() and DOCS.exists()):
        record(CACHE, accounts=8, singles=240, batches=24, documents=DOCS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}

    def variant(name: str, *extra: str) -> dict[str, float]:
        out = subprocess.run([sys.executable, __file__, "--variant", name, *extra], capture_output=True, text=True,
                             env=env)
        if out.returncode:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
        result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
        print(f"{name}: {result}", file=sys.stderr)
        return result

    results: dict[str, list[dict[str, float]]] = {}
    for mode in ("decode", "hashing", *MODES):
        results[f"memory:{mode}"] = [variant(f"memory:{mode}") for _ in range(args.repeats)]
    count = len(frames())
    commits = int(results["memory:decode"][0]["commits"])
    with replay_server(CACHE, count, env) as port:  # bench_streams.py's replay, on our recording
        for kind in ("live", "live+1process"):
            for mode in MODES:
                results[f"{kind}:{mode}"] = [variant(f"{kind}:{mode}", "--port", str(port), "--frames", str(count),
                                                     "--commits", str(commits)) for _ in range(args.repeats)]

    def median(name: str, key: str = "per_s") -> float:
        return statistics.median(r[key] for r in results[name])

    hashing = results["memory:hashing"][0]
    print(f"\n{count} frames ({commits} commits) recorded from the reference PDS, "
          f"median of {args.repeats}; CAR slices average {hashing['kb']:.1f} KB\n")
    print("| variant | commits/s (wall) | commits per CPU-second | CPU µs per commit |")
    print("|---|---:|---:|---:|")
    rows = [("in memory: decode only (no verification)", "memory:decode"),
            ("in memory: hash every block of the CAR (read_car)", "memory:hashing"),
            *[(f"in memory: decode + verify={mode}", f"memory:{mode}") for mode in MODES],
            *[(f"live (StreamConsumer over a socket): verify={mode}", f"live:{mode}") for mode in MODES],
            *[(f"live, `processes=1` (a worker process beside the loop): verify={mode}", f"live+1process:{mode}")
              for mode in MODES]]
    for label, name in rows:
        print(f"| {label} | {median(name):,.0f} | {median(name, 'cpu_per_s'):,.0f} | {median(name, 'us'):.0f} |")
    for mode in MODES:
        name = f"live+1process:{mode}"
        print(f"\nprocesses=1, verify={mode}: CPU µs per commit on the loop {median(name, 'main_us'):.0f}, in the "
              f"worker {median(name, 'worker_us'):.0f}; {median(name, 'offloaded'):.0%} of the commits proven in the "
              "worker", end="")
    print()
    from pysky_async._sync import crypto

    backend = "libsecp256k1 (coincurve)" if crypto._COINCURVE is not None else "OpenSSL (no coincurve)"
    print(f"\nsecp256k1 signatures: {backend}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"target: live verification with proofs on ≥ 5,000 commits/s: {median('live:proofs'):,.0f}/s wall, "
          f"{median('live:proofs', 'cpu_per_s'):,.0f} per CPU-second on the loop alone; with processes=1 "
          f"{median('live+1process:proofs'):,.0f}/s wall ({median('live+1process:proofs', 'offloaded'):.0%} of the "
          "commits proven in the worker; the wall figure on a shared machine is as loaded as the machine)")


if __name__ == "__main__":
    main()
