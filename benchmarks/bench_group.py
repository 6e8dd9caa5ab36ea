"""Consumer groups on a real PostgreSQL: aggregate events/s of 1, 2 and 3 worker processes, and lag.

    .venv/bin/python benchmarks/bench_group.py [--events 30000] [--rounds 2] [--partitions P]

Frames are the firehose recording of ``bench_streams.py`` (4 accounts on the reference PDS; recorded
once, cached in the temp directory), renumbered to ``--events`` and rewritten onto ``--repos``
synthetic repos (DID by seq, a rev that grows per repo), the shape of the real network's firehose:
many repos, few events each. A loopback replay server (its own process) sends them; a throwaway
PostgreSQL cluster (tests/realnet/postgres.py, fsync off) holds the group, a fresh database per
run. Each worker is its own process: ``StreamConsumer(..., name=wN, group="bench")`` (the library's
default partitions, 24, unless ``--partitions``), one of them also the ingest (whichever wins the
lock). Rounds alternate the worker counts.

- ``single``: the baseline: one plain ``StreamConsumer`` (no group) with the insert handler below.
- ``insert``: the realistic handler: one row per event into an effect table with
  ``ctx.insert_on_commit`` (the library sends a commit's rows as one multi-row ``INSERT``).
- ``statement``: the same row as its own statement per event (``ctx.on_commit`` work running
  ``session.execute``), 3 workers: what a handler that does not batch costs.
- ``io 5 ms``: ``await asyncio.sleep(0.005)`` per event through a pool of ``--io-pool`` (4) per
  worker process (a client's connection limit to the slow service: the runner's concurrency is per
  partition, so without it one worker would not be I/O-bound), then the same insert (so the run's
  end and rate are read from the table).
- ``lag``: 3 workers, the replay server sending a steady ``--rate`` events/s (each frame's ``time``
  set when it is sent), the workers at ``commit_interval=0.25`` (``--lag-commit-interval``: an effect
  is visible once committed); lag = the insert's ``clock_timestamp()`` minus that time. p50/p99 leave
  out the first ``--lag-warmup`` (25) seconds (the workers start and share the partitions out over
  their 5 s heartbeats); the worst lag including them is printed beside the target.

events/s = the rows over the span between the first and the last insert (process start-up is not in
it). The replay server sends as fast as it is read, so each run begins with the ingest catching up:
for a few seconds it appends several thousand events/s (the workers' handlers share the 2 cores
with it, the replay server and PostgreSQL) while the workers join and share the partitions out.
"caught up" = the rows inserted after the ingest appended the last event, over the span from then
to the last insert: the group's own rate once nothing but the workers runs (steady state, the
tail included). CPU = user + system time per 1,000 events: of all worker processes (from the start
of their runs: imports and start-up are left out); of the PostgreSQL cluster (its postmaster, live
backends and the backends that ended, read from /proc); and of everything (the replay server too).
On 2 cores, 2,000 / (all CPU ms per event) is the most events/s the machine can reach.
``BENCH_GROUP_PROFILE=/tmp/prof`` writes each worker's cProfile to ``/tmp/prof.wN`` (CPU time). The
load average is printed: on a shared machine, read the CPU column, not the wall-clock rate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from firehose_recording import record, recorded, serve_frames, server_process

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "pysky_bench_streams_frames.bin"  # bench_streams.py's recording
EFFECTS = "CREATE TABLE bench_effect (seq BIGINT PRIMARY KEY, did TEXT NOT NULL, event_time TIMESTAMPTZ, " \
          "done_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"


# ---------------------------------------------------------------------------- the frames
def synthetic(count: int, repos: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The recording renumbered to seqs 1..count, spread over ``repos`` synthetic DIDs."""
    import libipld

    parts = [libipld.decode_dag_cbor_multi(f) for f in recorded(CACHE)]
    out = []
    for seq in range(1, count + 1):
        header, body = parts[(seq - 1) % len(parts)]
        did = f"did:plc:bench{(seq * 7919) % repos:019d}"
        body = {**body, "seq": seq, **({"repo": did} if "repo" in body else {"did": did})}
        if isinstance(body.get("rev"), str):
            body["rev"] = f"{seq:013d}"  # grows per repo: no event is a replay for the rev guard
        out.append((header, body))
    return out


def serve(count: int, repos: int, rate: float) -> None:
    """Print the port; send every frame after the cursor to each connection (``rate`` > 0: that many
    per second, each stamped with the time it is sent), then idle."""
    serve_frames(synthetic(count, repos), rate)


def replay_server(count: int, repos: int, rate: float) -> AbstractContextManager[tuple[int, int]]:
    """The replay server's port and process id."""
    return server_process([__file__, "--serve", "--events", str(count), "--repos", str(repos), "--rate", str(rate)],
                          child_env())


# ---------------------------------------------------------------------------- one worker process
async def work(url: str, port: int, name: str, io_pool: int, partitions: int | None, group: bool,
               commit_interval: float, per_statement: bool) -> dict[str, float]:
    from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, insert
    from sqlalchemy.ext.asyncio import AsyncSession

    from pysky_async._storage.store import Store
    from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

    effect = Table("bench_effect", MetaData(), Column("seq", BigInteger), Column("did", String),
                   Column("event_time", DateTime(timezone=True)))

    statement = insert(effect)  # compiled once (SQLAlchemy's cache), one round trip per event
    pool = asyncio.Semaphore(io_pool) if io_pool else None  # the process's connections to the slow service

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if pool is not None:
            async with pool:
                await asyncio.sleep(0.005)
        when = dt.datetime.fromisoformat(event.time.replace("Z", "+00:00")) if event.time else None
        row = {"seq": event.cursor, "did": event.did, "event_time": when}

        if not per_statement:  # the library folds a commit's rows into one multi-row INSERT
            ctx.insert_on_commit(effect, row)
            return

        async def effect_row(session: AsyncSession) -> None:
            await session.execute(statement, row)

        ctx.on_commit(effect_row)

    store = Store(url)
    grouped: dict[str, Any] = {"group": "bench", "partitions": partitions} if group else {}
    consumer = StreamConsumer(FirehoseSource(f"http://127.0.0.1:{port}"), handler, store=store, name=name,
                              start_cursor=0, commit_interval=commit_interval, **grouped)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(consumer.stop()))
    profile = None
    if os.environ.get("BENCH_GROUP_PROFILE"):
        import cProfile

        profile = cProfile.Profile(time.process_time)  # CPU time: waits (and a loaded machine) do not count
        profile.enable()
    ready = process_cpu()  # start-up (imports, the engine) is not the events' cost
    try:
        await consumer.run()
    finally:
        await store.aclose()
        if profile is not None:
            profile.disable()
            profile.dump_stats(f"{os.environ['BENCH_GROUP_PROFILE']}.{name}")
    return {"cpu": process_cpu() - ready, "handled": consumer.stats.handled}


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------- one run
def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of process ``pid`` (``children``: plus that of its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu(pg: Any) -> float:
    """CPU seconds the PostgreSQL cluster used so far: the postmaster, its live backends and the
    backends that ended (the postmaster waits for them)."""
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(postmaster, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # ended meanwhile
    return total


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def sql(url: str, statement: str) -> list[Any]:
    from pysky_async._storage.store import Store

    async def go() -> list[Any]:
        store = Store(url, auto_migrate=True)
        try:
            return await store.execute_sql(statement)
        finally:
            await store.aclose()

    return asyncio.run(go())


def run(pg: Any, args: argparse.Namespace, workers: int, kind: str) -> dict[str, float]:
    """One run on a fresh database: start the workers, wait for every row, stop them, read the table."""
    name = f"b{time.monotonic_ns() % 10**9}"
    url = pg.create_database(name)
    count = args.events if kind != "lag" else int(args.rate * (args.lag_warmup + args.lag_seconds))
    rate = args.rate if kind == "lag" else 0.0
    try:
        sql(url, EFFECTS)
        with replay_server(count, args.repos, rate) as (port, server_pid):
            pg_before = postgres_cpu(pg)
            procs = [subprocess.Popen([sys.executable, __file__, "--worker", f"w{i}", "--db", url, "--port", str(port),
                                       *(["--partitions", str(args.partitions)] if args.partitions else []),
                                       "--io-pool", str(args.io_pool if kind == "io" else 0),
                                       "--commit-interval", str(args.lag_commit_interval if kind == "lag" else 1.0),
                                       *(["--no-group"] if kind == "single" else []),
                                       *(["--per-statement"] if kind == "statement" else [])],
                                      stdout=subprocess.PIPE, text=True, env=child_env()) for i in range(workers)]
            caught_up = None
            try:
                deadline = time.monotonic() + args.timeout
                while (done := sql(url, "SELECT count(*) FROM bench_effect")[0][0]) < count:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                        raise SystemExit(f"{kind} with {workers} workers: {done} of {count} rows after "
                                         f"{args.timeout} s (or a worker exited)")
                    time.sleep(0.5)
                # the ingest's last append (a group's log row is updated by appends only); the lag
                # run's source sends at a steady rate: nothing to catch up
                if kind not in ("single", "lag"):
                    caught_up = sql(url, "SELECT max(updated_at) FROM bsky_group_log")[0][0]
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                outs = [json.loads((p.communicate(timeout=120)[0] or "{}").splitlines()[-1] or "{}") for p in procs]
                pg_cpu = postgres_cpu(pg) - pg_before
                server_cpu = cpu_seconds(server_pid)
        lag = "extract(epoch FROM done_at - event_time)"
        # the lag run's percentiles leave out its first --lag-warmup seconds (the workers starting
        # and sharing the partitions out: its worst lag is printed apart)
        steady = (f"WHERE event_time >= (SELECT min(event_time) FROM bench_effect) + "
                  f"make_interval(secs => {float(args.lag_warmup) if kind == 'lag' else 0.0})")
        span, p50, p99, worst = sql(url, f"SELECT extract(epoch FROM max(done_at) - min(done_at)), "
                                         f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {lag}) FILTER ({steady}), "
                                         f"percentile_cont(0.99) WITHIN GROUP (ORDER BY {lag}) FILTER ({steady}), "
                                         f"max({lag}) FROM bench_effect")[0]
        caught_up_eps = 0.0
        if caught_up is not None:
            after, steady_span = sql(url, f"SELECT count(*) FILTER (WHERE done_at > '{caught_up.isoformat()}'), "
                                          f"extract(epoch FROM max(done_at) - '{caught_up.isoformat()}') "
                                          f"FROM bench_effect")[0]
            caught_up_eps = int(after) / float(steady_span) if steady_span and after else 0.0
        cpu = sum(o.get("cpu", 0.0) for o in outs)
        result = {"eps": count / float(span), "caught_up_eps": caught_up_eps, "cpu_per_1000": 1000 * cpu / count,
                  "pg_cpu_per_1000": 1000 * pg_cpu / count,
                  "all_cpu_per_1000": 1000 * (cpu + pg_cpu + server_cpu) / count, "p50": float(p50 or 0),
                  "p99": float(p99 or 0), "max": float(worst or 0), "load": os.getloadavg()[0]}
        print(f"{kind} x{workers}: {result}", file=sys.stderr)
        return result
    finally:
        pg.drop_database(name)


# ---------------------------------------------------------------------------- the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--repos", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--partitions", type=int, help="the group log's partitions (default: the library's, 24)")
    parser.add_argument("--rate", type=float, default=500.0, help="lag: events/s the server sends")
    parser.add_argument("--lag-seconds", type=float, default=20.0, help="lag: seconds measured after the warm-up")
    parser.add_argument("--lag-warmup", type=float, default=25.0,
                        help="lag: seconds sent first and left out of p50/p99 (workers starting, partitions shared "
                             "out over their heartbeats); the max column includes them")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", choices=["single", "insert", "statement", "io", "lag"], action="append")
    parser.add_argument("--per-statement", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-group", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--commit-interval", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--lag-commit-interval", type=float, default=0.25,
                        help="lag: the workers' commit_interval (the effects commit, so become visible, at most this "
                             "many seconds after they are handled; the other runs use the default 1 s)"),
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--io-pool", type=int, default=4, help="io: concurrent 5 ms calls per worker process (its "
                        "connection pool to the slow service; concurrency and max_pending apply per partition, so "
                        "without a per-process bound one worker would not be I/O-bound)")
    args = parser.parse_args()
    if args.serve:
        serve(args.events, args.repos, args.rate)
        return
    if args.worker:
        print(json.dumps(asyncio.run(work(args.db, args.port, args.worker, args.io_pool, args.partitions,
                                              not args.no_group, args.commit_interval, args.per_statement))))
        return
    if not CACHE.exists():
        record(CACHE, accounts=4, singles=400, batches=40)
    sys.path.insert(0, str(ROOT))
    from tests.realnet.postgres import PostgresServer

    from pysky_async._group import DEFAULT_PARTITIONS

    kinds = args.only or ["single", "insert", "statement", "io", "lag"]
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    pg = PostgresServer.start()
    loads = [os.getloadavg()[0]]
    try:
        for _ in range(args.rounds):
            for kind in kinds:
                for workers in {"lag": (3,), "single": (1,), "statement": (3,)}.get(kind, (1, 2, 3)):
                    results.setdefault((kind, workers), []).append(run(pg, args, workers, kind))
                    loads.append(os.getloadavg()[0])
    finally:
        pg.stop()

    def median(kind: str, workers: int, key: str) -> float:
        return statistics.median(r[key] for r in results[kind, workers])

    print(f"\n{platform.python_implementation()} {platform.python_version()} on {os.cpu_count()} CPUs, PostgreSQL "
          f"(throwaway cluster, fsync off); {args.partitions or DEFAULT_PARTITIONS} partitions, {args.repos:,} repos; "
          f"load average during the runs {min(loads):.1f}-{max(loads):.1f}; median of {args.rounds} rounds\n")
    print("| handler | workers | events | events/s (wall) | events/s caught up | CPU s / 1,000 events: workers | "
          "PostgreSQL | all (+ replay server) | lag p50 | lag p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"single": "insert, no group (one consumer)", "insert": "insert",
              "statement": "insert, a statement per event (on_commit)", "io": f"io 5 ms, pool {args.io_pool}",
              "lag": f"lag at {args.rate:.0f}/s, commit_interval={args.lag_commit_interval:g} s"}
    for kind, workers in results:
        count = args.events if kind != "lag" else int(args.rate * (args.lag_warmup + args.lag_seconds))
        lag = (f"{median(kind, workers, 'p50'):.2f} s | {median(kind, workers, 'p99'):.2f} s" if kind == "lag"
               else "- | -")  # the other runs replay recorded times: no lag to read
        caught = median(kind, workers, "caught_up_eps")
        print(f"| {labels[kind]} | {workers} | {count:,} | {median(kind, workers, 'eps'):,.0f} | "
              f"{f'{caught:,.0f}' if caught else '-'} | "
              f"{median(kind, workers, 'cpu_per_1000'):.2f} | {median(kind, workers, 'pg_cpu_per_1000'):.2f} | "
              f"{median(kind, workers, 'all_cpu_per_1000'):.2f} | {lag} |")
    print()
    if ("insert", 3) in results:
        best = max(median("insert", w, "eps") for w in (1, 2, 3))
        caught = max(median("insert", w, "caught_up_eps") for w in (1, 2, 3))
        print(f"target: insert handler ≥ 5,000 events/s aggregate: {best:,.0f}/s (caught up: {caught:,.0f}/s)")
    if ("io", 1) in results:
        print(f"target: io handler, 3 workers ≥ 2.5× one: caught up "
              f"{median('io', 3, 'caught_up_eps') / median('io', 1, 'caught_up_eps'):.2f}× "
              f"(wall, the ingest's catch-up included: {median('io', 3, 'eps') / median('io', 1, 'eps'):.2f}×)")
    if ("lag", 3) in results:
        print(f"target: lag p99 < 2 s at {args.rate:.0f} events/s: {median('lag', 3, 'p99'):.2f} s (after a "
              f"{args.lag_warmup:.0f} s warm-up; worst lag including it: {median('lag', 3, 'max'):.2f} s)")


if __name__ == "__main__":
    main()
