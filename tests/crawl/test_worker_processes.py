"""``start_worker_processes`` (``backfill --workers`` / ``graph --workers``): Ctrl-C or SIGTERM to the
supervisor reaches each running worker as the stop signal its command asks for; exit codes come back in
start order; the progress hook runs while the workers do; the supervisor's own handlers go with the block."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from pysky_async._crawl.worker_processes import start_worker_processes

pytestmark = pytest.mark.anyio

WORKER = """
import signal, sys, time
ready, code = sys.argv[1], int(sys.argv[2])
for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, lambda signum, frame: sys.exit(100 + signum))
open(ready, "w").close()
if code >= 0:
    sys.exit(code)
time.sleep(600)
"""
"""A worker: notes it is ready, then exits with ``code``, or (``code`` -1) waits for a signal and exits
with 100 + the signal's number."""

COMMAND = (sys.executable, "-c", WORKER)


async def until_ready(paths: list[Path]) -> None:
    for _ in range(6000):  # a loaded machine starts Python slowly
        if all(path.exists() for path in paths):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"workers not ready: {[path for path in paths if not path.exists()]}")


@pytest.mark.parametrize(("stop_signal", "received"), [(signal.SIGTERM, signal.SIGINT),
                                                      (signal.SIGINT, signal.SIGTERM)])
async def test_a_signal_to_the_supervisor_stops_each_worker_with_the_stop_signal(
        tmp_path: Path, stop_signal: signal.Signals, received: signal.Signals) -> None:
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    async with start_worker_processes([[str(path), "-1"] for path in ready], stop_signal,
                                      command=COMMAND) as workers:
        await until_ready(ready)
        assert not workers.interrupted
        os.kill(os.getpid(), received)  # the supervisor's handler passes it on instead of stopping here
        codes = await workers.wait()
        assert workers.interrupted
    assert codes == [100 + stop_signal, 100 + stop_signal]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers went with the block


async def test_exit_codes_come_in_start_order_and_progress_runs_while_waiting(tmp_path: Path) -> None:
    ready = [tmp_path / f"ready{i}" for i in range(3)]
    shown: list[int] = []

    async def progress() -> None:
        shown.append(sum(path.exists() for path in ready))

    async with start_worker_processes([[str(path), str(code)] for path, code in zip(ready, (0, 3, 0), strict=True)],
                                      signal.SIGTERM, command=COMMAND) as workers:
        codes = await workers.wait(progress, every=0.05)
    assert codes == [0, 3, 0]
    assert not workers.interrupted
    assert shown and shown[-1] == 3  # once more after the last worker ended
