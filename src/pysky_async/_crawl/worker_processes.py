"""N worker processes of one command, started together and stopped together.

``backfill --workers N`` and ``graph --workers N`` both run N copies of ``python -m pysky_async``
(stdin closed), pass Ctrl-C / SIGTERM on to the workers still running (each stops as its command
does on that signal) and gather their exit codes; only the signal forwarded and what is shown
while waiting differ.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

MODULE_COMMAND = (sys.executable, "-m", "pysky_async")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerProcesses:
    """The running workers: ``await wait()`` for their exit codes; ``interrupted`` once a stop was passed on."""

    def __init__(self, processes: list[asyncio.subprocess.Process], stop_signal: int) -> None:
        self._processes = processes
        self._stop_signal = stop_signal
        self.interrupted = False

    def stop(self) -> None:
        """Send the stop signal to every worker still running (what Ctrl-C / SIGTERM here does)."""
        self.interrupted = True
        for process in self._processes:
            if process.returncode is None:
                process.send_signal(self._stop_signal)

    async def wait(self, progress: Callable[[], Awaitable[None]] | None = None, *,
                   every: float = 1.0) -> list[int]:
        """Each worker's exit code, in start order; ``progress`` is awaited every ``every`` seconds meanwhile
        (and once more after the last worker ended)."""
        waiting = asyncio.ensure_future(asyncio.gather(*(process.wait() for process in self._processes)))
        if progress is not None:
            while not waiting.done():
                await asyncio.wait([waiting], timeout=every)
                await progress()
        return list(await waiting)


@asynccontextmanager
async def start_worker_processes(argvs: Sequence[Sequence[str]], stop_signal: int, *,
                                 command: Sequence[str] = MODULE_COMMAND) -> AsyncIterator[WorkerProcesses]:
    """Start one ``python -m pysky_async *argv`` per argv; inside the block, Ctrl-C or SIGTERM to this
    process sends ``stop_signal`` to the workers still running instead of stopping this one.

    ``command`` replaces ``python -m pysky_async`` (tests run a small script instead).
    """
    processes = [await asyncio.create_subprocess_exec(*command, *argv, stdin=asyncio.subprocess.DEVNULL)
                 for argv in argvs]
    workers = WorkerProcesses(processes, stop_signal)
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, workers.stop)
    try:
        yield workers
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
