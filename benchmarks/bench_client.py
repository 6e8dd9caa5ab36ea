"""Client CPU cost per XRPC call: pysky_async against raw httpx and the ``atproto`` SDK.

Method (see also benchmarks/README.md and shared/PERFORMANCE-NOTES.md):

* A fake XRPC server (``fake_xrpc_server.py``, a raw asyncio protocol answering every
  ``com.atproto.repo.getRecord`` with the same ~600-byte JSON record over HTTP/1.1
  keep-alive) runs in its own process, pinned to CPU 0.
* Each client variant runs in a fresh Python subprocess pinned to CPU 1 (so import costs,
  caches and GC state do not leak between variants). The worker builds its client, makes
  one untimed warm-up call (opens a connection; for pysky_async also creates the SQLite
  schema, whose row is flushed before timing), then times N calls plus closing the client
  (for pysky_async that includes flushing the call log to SQLite).
* Cost = ``time.process_time()`` delta over the timed section: user + sys CPU of the whole
  client process, all threads (so aiosqlite's thread counts too). Throughput = calls divided
  by the wall-clock time of the same section.
* Variants: raw aiohttp (the floor), raw httpx on its own transport and on
  ``httpx-aiohttp``'s, the ``atproto`` SDK, and pysky_async (given a plain httpx client, and
  as it comes: its own transport, call log on SQLite).
* Modes: ``sequential`` (one call after another) and ``32 concurrent`` (32 worker coroutines
  sharing the N calls, so at most 32 are in flight).
* Every (variant, mode) runs 3 times, interleaved; the table shows the medians.

Run: ``.venv/bin/python benchmarks/bench_client.py [--calls N] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "fake_xrpc_server.py"
SERVER_CPU, CLIENT_CPU = 0, 1
CONCURRENCY = 32
REPEATS = 3
WORKER_TIMEOUT = 600.0

NSID = "com.atproto.repo.getRecord"
PARAMS = {
    "repo": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
    "collection": "app.bsky.feed.post",
    "rkey": "3kwbnkgzbbl2o",
}
EXPECTED_URI = f"at://{PARAMS['repo']}/{PARAMS['collection']}/{PARAMS['rkey']}"

MODES = {"seq": "sequential", "c32": f"{CONCURRENCY} concurrent"}


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    transport: str  # "default" or "aiohttp": which raw httpx variant it is compared with


VARIANTS = [
    Variant("aiohttp", "raw aiohttp.ClientSession (the floor)", "aiohttp"),
    Variant("httpx", "raw httpx.AsyncClient", "default"),
    Variant("httpx-aiohttp", "raw httpx.AsyncClient + AiohttpTransport", "aiohttp"),
    Variant("atproto", "atproto SDK AsyncClient", "default"),
    Variant("pysky", "pysky_async given httpx's own transport (full pipeline + SQLite log)", "default"),
    Variant("pysky-aiohttp", "pysky_async as it comes (AiohttpTransport, full pipeline + SQLite log)", "aiohttp"),
]
RAW_FOR_TRANSPORT = {"default": "httpx", "aiohttp": "httpx-aiohttp"}
ATPROTO_TARGET_VARIANT = "pysky-aiohttp"  # the pysky_async variant compared with atproto

# ----------------------------------------------------------------------------------------
# Worker side: one variant, one mode, in a fresh process.
# ----------------------------------------------------------------------------------------

Call = Callable[[], Awaitable[Any]]


@dataclass
class ClientUnderTest:
    call: Call  # one getRecord call, returning the decoded body
    close: Callable[[], Awaitable[None]]  # closes the client (timed)
    after_warm_up: Callable[[], Awaitable[None]] | None = None  # untimed
    check: Callable[[int], Awaitable[None]] | None = None  # untimed, after timing; given the calls made


def aiohttp_httpx_client() -> Any:
    import httpx
    import httpx_aiohttp

    return httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport())


async def make_raw_httpx(base: str, *, aiohttp: bool) -> ClientUnderTest:
    import httpx

    client = aiohttp_httpx_client() if aiohttp else httpx.AsyncClient()
    url = f"{base}/xrpc/{NSID}"

    async def call() -> Any:
        response = await client.get(url, params=PARAMS)
        return json.loads(response.content)

    return ClientUnderTest(call, client.aclose)


async def make_raw_aiohttp(base: str) -> ClientUnderTest:
    import aiohttp

    session = aiohttp.ClientSession()
    url = f"{base}/xrpc/{NSID}"

    async def call() -> Any:
        async with session.get(url, params=PARAMS) as response:
            return json.loads(await response.read())

    return ClientUnderTest(call, session.close)


async def make_atproto(base: str) -> ClientUnderTest:
    from atproto import AsyncClient

    client = AsyncClient(base_url=base)  # the SDK appends /xrpc
    get_record = client.com.atproto.repo.get_record

    async def call() -> Any:
        return await get_record(PARAMS)

    return ClientUnderTest(call, client.request.close)


async def make_pysky(base: str, tmp: str, *, aiohttp: bool) -> ClientUnderTest:
    import httpx

    from pysky_async import AsyncBskyClient

    # the library's default http client is httpx on AiohttpTransport; the other variant is
    # given a plain httpx.AsyncClient to compare with raw httpx on the same transport
    http = None if aiohttp else httpx.AsyncClient()
    bsky = AsyncBskyClient(
        public_host=base,
        database_url=f"sqlite+aiosqlite:///{tmp}/bench.sqlite3",
        http_client=http,
        # The default client-side limit (3,000 requests / 5 min, Bluesky's per-IP limit)
        # would make the run wait minutes; keep the middleware in the chain, never waiting.
        request_limit=(10**9, 300.0),
    )

    async def call() -> Any:
        return await bsky.get(NSID, repo=PARAMS["repo"], collection=PARAMS["collection"], rkey=PARAMS["rkey"])

    async def close() -> None:
        await bsky.aclose()
        if http is not None:
            await http.aclose()

    async def check(calls: int) -> None:
        rows = await bsky.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
        await bsky.store.aclose()
        logged = rows[0][0]
        if logged != calls:
            raise AssertionError(f"call log holds {logged} rows for {calls} calls")

    return ClientUnderTest(call, close, after_warm_up=bsky.flush_call_log, check=check)


async def make_client(variant: str, base: str, tmp: str) -> ClientUnderTest:
    if variant == "aiohttp":
        return await make_raw_aiohttp(base)
    if variant == "httpx":
        return await make_raw_httpx(base, aiohttp=False)
    if variant == "httpx-aiohttp":
        return await make_raw_httpx(base, aiohttp=True)
    if variant == "atproto":
        return await make_atproto(base)
    if variant == "pysky":
        return await make_pysky(base, tmp, aiohttp=False)
    if variant == "pysky-aiohttp":
        return await make_pysky(base, tmp, aiohttp=True)
    raise ValueError(f"unknown variant {variant!r}")


async def run_calls(call: Call, n: int, mode: str) -> None:
    if mode == "seq":
        for _ in range(n):
            await call()
        return
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            await call()

    await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, n))))


async def warm_up(cut: ClientUnderTest) -> None:
    """One untimed call: opens the connection, fills lazy caches, checks the answer."""
    body = await cut.call()
    uri = body["uri"] if isinstance(body, dict) else body.uri
    if uri != EXPECTED_URI:
        raise AssertionError(f"unexpected getRecord answer: {body!r}")
    if cut.after_warm_up is not None:
        await cut.after_warm_up()


async def measure(variant: str, mode: str, port: int, n: int, profile: str | None = None) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="pysky-bench-") as tmp:
        cut = await make_client(variant, base, tmp)
        await warm_up(cut)

        profiler = cProfile.Profile() if profile is not None else None
        if profiler is not None:
            profiler.enable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await run_calls(cut.call, n, mode)
        await cut.close()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)

        if cut.check is not None:
            await cut.check(n + 1)  # + the warm-up call
    return {"variant": variant, "mode": mode, "calls": n, "cpu_seconds": cpu, "wall_seconds": wall}


def worker_main(variant: str, mode: str, port: int, n: int, cpu: int | None, profile: str | None) -> None:
    pin_to_cpu(cpu)
    try:
        result = asyncio.run(measure(variant, mode, port, n, profile))
    except ImportError as exc:
        result = {"variant": variant, "mode": mode, "error": f"cannot import: {exc}"}
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------------------------
# Parent side: start the server, run every worker REPEATS times, print the table.
# ----------------------------------------------------------------------------------------


def pin_to_cpu(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def cpus_for_pinning() -> tuple[int | None, int | None]:
    """(server CPU, client CPU), or Nones when the machine cannot give each its own core."""
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None, None
    available = sorted(os.sched_getaffinity(0))
    return available[SERVER_CPU], available[CLIENT_CPU]


class FakeServer:
    """The fake XRPC server in its own process, on a free 127.0.0.1 port."""

    def __init__(self, cpu: int | None) -> None:
        command = [sys.executable, str(SERVER_SCRIPT), "--port", "0"]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"the fake server did not start (said {line!r})")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_worker(variant: str, mode: str, port: int, n: int, cpu: int | None,
               profile: str | None = None) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, mode, str(port), str(n)]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    if profile is not None:
        command += ["--profile-out", profile]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker failed (exit {done.returncode}): {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class Result:
    cpu_us_per_call: float | None = None
    calls_per_second: float | None = None
    error: str | None = None


def median_result(runs: list[dict[str, Any]]) -> Result:
    errors = [run["error"] for run in runs if "error" in run]
    if errors:
        return Result(error=errors[0])
    cpu = statistics.median(run["cpu_seconds"] / run["calls"] * 1e6 for run in runs)
    rate = statistics.median(run["calls"] / run["wall_seconds"] for run in runs)
    return Result(cpu, rate)


def run_all(port: int, calls: dict[str, int], cpu: int | None) -> dict[tuple[str, str], Result]:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for repeat in range(REPEATS):
        for variant in VARIANTS:
            for mode in MODES:
                key = (variant.key, mode)
                if repeat and "error" in runs[key][0]:
                    continue  # a variant that cannot run is not retried
                print(f"  run {repeat + 1}/{REPEATS}: {variant.key:14} {MODES[mode]:14}", end="", flush=True,
                      file=sys.stderr)
                result = run_worker(variant.key, mode, port, calls[mode], cpu)
                shown = result.get("error") or f"{result['cpu_seconds'] / result['calls'] * 1e6:8.0f} µs/call"
                print(f" {shown}", file=sys.stderr)
                runs.setdefault(key, []).append(result)
    return {key: median_result(value) for key, value in runs.items()}


def ratio(numerator: Result | None, denominator: Result | None) -> float | None:
    if numerator is None or denominator is None:
        return None
    if numerator.cpu_us_per_call is None or not denominator.cpu_us_per_call:
        return None
    return numerator.cpu_us_per_call / denominator.cpu_us_per_call


def fmt_ratio(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}×"


def render_table(results: dict[tuple[str, str], Result]) -> str:
    lines = [
        "| client | mode | CPU µs/call | calls/s | CPU ratio vs raw httpx (same transport) | CPU ratio atproto/this |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        for mode, mode_label in MODES.items():
            result = results[(variant.key, mode)]
            if result.error is not None:
                lines.append(f"| {variant.label} | {mode_label} | n/a ({result.error}) | n/a | n/a | n/a |")
                continue
            raw = results.get((RAW_FOR_TRANSPORT[variant.transport], mode))
            atproto = results.get(("atproto", mode))
            lines.append(
                f"| {variant.label} | {mode_label} | {result.cpu_us_per_call:,.0f} | {result.calls_per_second:,.0f} "
                f"| {fmt_ratio(ratio(result, raw))} | {fmt_ratio(ratio(atproto, result))} |"
            )
    return "\n".join(lines)


def render_targets(results: dict[tuple[str, str], Result]) -> str:
    lines = []
    for pysky, transport in (("pysky", "default"), ("pysky-aiohttp", "aiohttp")):
        raw = RAW_FOR_TRANSPORT[transport]
        for mode, mode_label in MODES.items():
            value = ratio(results.get((pysky, mode)), results.get((raw, mode)))
            lines.append(f"pipeline / raw httpx (same transport), {transport} transport, {mode_label}: "
                         f"{fmt_ratio(value)} (target ≤ 1.0×)")
    concurrent = ratio(results.get(("atproto", "c32")), results.get((ATPROTO_TARGET_VARIANT, "c32")))
    sequential = ratio(results.get(("atproto", "seq")), results.get((ATPROTO_TARGET_VARIANT, "seq")))
    lines.append(f"atproto / pysky_async (AiohttpTransport): {fmt_ratio(concurrent, 1)} at {CONCURRENCY} concurrent "
                 f"(target ≥ 3×), {fmt_ratio(sequential, 1)} sequential (target ≥ 2×)")
    return "\n".join(lines)


def profile_variant(variant: str, port: int, calls: dict[str, int], cpu: int | None) -> None:
    """Run one variant once per mode under cProfile; print the top functions (cumulative)."""
    for mode, mode_label in MODES.items():
        with tempfile.TemporaryDirectory(prefix="pysky-bench-prof-") as tmp:
            out = f"{tmp}/{variant}-{mode}.prof"
            result = run_worker(variant, mode, port, calls[mode], cpu, profile=out)
            if "error" in result:
                print(f"## {variant}, {mode_label}: {result['error']}")
                continue
            print(f"## {variant}, {mode_label}: {calls[mode]} calls "
                  f"(CPU µs/call under the profiler: {result['cpu_seconds'] / result['calls'] * 1e6:,.0f})")
            stats = pstats.Stats(out, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(40)


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=None,
                        help="calls per run in both modes (default: 2000 sequential, 4000 concurrent)")
    parser.add_argument("--quick", action="store_true", help="300 calls per run (a smoke test)")
    parser.add_argument("--profile", metavar="VARIANT", choices=[variant.key for variant in VARIANTS],
                        help="instead of the table: run VARIANT once per mode under cProfile and print "
                             "the top functions by cumulative time")
    parser.add_argument("--worker", nargs=4, metavar=("VARIANT", "MODE", "PORT", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        variant, mode, port, n = args.worker
        worker_main(variant, mode, int(port), int(n), args.cpu, args.profile_out)
        return

    if args.calls:
        calls = {"seq": args.calls, "c32": args.calls}
    elif args.quick:
        calls = {"seq": 300, "c32": 300}
    else:
        calls = {"seq": 2000, "c32": 4000}
    server_cpu, client_cpu = cpus_for_pinning()
    server = FakeServer(server_cpu)
    try:
        print(f"fake server on 127.0.0.1:{server.port} (CPU {server_cpu}), clients on CPU {client_cpu}; "
              f"{calls['seq']} sequential / {calls['c32']} concurrent calls per run, median of {REPEATS}",
              file=sys.stderr)
        if args.profile:
            profile_variant(args.profile, server.port, calls, client_cpu)
            return
        load_before = load_average()
        results = run_all(server.port, calls, client_cpu)
        load_after = load_average()
    finally:
        server.stop()
    print(render_table(results))
    print()
    print(render_targets(results))
    print(f"machine load (1-min average) before / after: {load_before} / {load_after} "
          "(above ~2 on 2 cores, other processes were competing: rerun on an idle machine)")


if __name__ == "__main__":
    main()
