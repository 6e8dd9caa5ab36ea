"""Import cost: what ``import pysky_async`` and a first client cost a fresh process.

    .venv/bin/python benchmarks/bench_import.py [--runs 7]

Each case runs in a fresh interpreter (``-X importtime`` off, bytecode already compiled), the
cases alternating round by round; the table gives the median wall time in ms of the measured
statements only. Targets on the 2-core CI machine: ``import pysky_async`` ≤ 250 ms (issue 12) and
``from pysky_async import AsyncBskyClient`` ≤ 250 ms (issue 22: SQLAlchemy and aiohttp load with the
first client, not at import; tests/packaging/test_lazy_imports.py checks that). The ``atproto`` SDK's
client (``pip install -e '.[bench]'``) is measured side by side, and ``import httpx`` as the floor
every HTTP client here pays: on a loaded machine compare the ratios, not the milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CASES: dict[str, tuple[str, str]] = {
    "import pysky_async": ("", "import pysky_async"),
    "from pysky_async import AsyncBskyClient": ("", "from pysky_async import AsyncBskyClient"),
    "... and a first client call's storage (SQLite in memory)": (
        "import asyncio\nfrom pysky_async import AsyncBskyClient",
        "async def main():\n"
        "    async with AsyncBskyClient(database_url=':memory:') as bsky:\n"
        "        await bsky.store.ensure_ready()\n"
        "asyncio.run(main())"),
    "import httpx (reference)": ("", "import httpx"),
    "from atproto import AsyncClient (the atproto SDK, if installed)": ("", "from atproto import AsyncClient"),
}
TARGETS = {"import pysky_async": 250.0, "from pysky_async import AsyncBskyClient": 250.0}

TIMER = """
import time
{setup}
_t = time.perf_counter()
{statement}
print((time.perf_counter() - _t) * 1000)
"""


def measure(setup: str, statement: str) -> float | None:
    result = subprocess.run([sys.executable, "-c", TIMER.format(setup=setup, statement=statement)],
                            capture_output=True, text=True)
    return float(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for setup, statement in CASES.values():  # warm the bytecode caches once
        measure(setup, statement)
    for _ in range(args.runs):
        for name, (setup, statement) in CASES.items():
            value = measure(setup, statement)
            if value is not None:
                samples[name].append(value)
    print("| case | median ms | min | max |\n|---|---:|---:|---:|")
    for name, values in samples.items():
        if values:
            print(f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |")
        else:
            print(f"| {name} | not installed | | |")
    print()
    for name, limit in TARGETS.items():
        values = samples[name]
        verdict = "met" if values and statistics.median(values) <= limit else "NOT met"
        print(f"target: {name} <= {limit:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
