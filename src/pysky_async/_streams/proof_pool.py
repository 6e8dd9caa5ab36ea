"""Worker processes that prove commits beside the event loop (``CommitVerifier(processes=N)``).

A thread does not help: the GIL lets one thread run Python at a time, and a thread waiting for it
behind a busy event loop waits its switch interval (measured: signature checks moved to a thread
made live verification ~1.8x slower in wall time, +40 % CPU). A process has its own. Each worker
(``pysky_async._sync.proof_worker``) reads batches of jobs on its stdin and answers a batch of
verdicts in order; the jobs queued in one turn of the loop go as one write, and the loop only
frames bytes and sets futures. A worker that dies or cannot start leaves the pool unusable: its
callers get None and prove on the loop, as without a pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import sys
from collections import deque

from .._sync.proof_worker import READY, Job, Verdict, encode

logger = logging.getLogger("pysky_async.streams")
_HEADER = struct.Struct(">I")


class _Worker:
    __slots__ = ("outbox", "pending", "process", "reader", "ready", "started")

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pending: deque[asyncio.Future[Verdict | None]] = deque()
        self.outbox: list[Job] = []
        self.ready = False
        self.started = asyncio.Event()
        """Set once the worker said it is ready, or ended."""
        self.reader: asyncio.Task[None] | None = None


class ProofPool:
    """``processes`` workers on the running loop; ``prove`` a job, or get None (prove it yourself).

    Args:
        processes: worker processes (each proves one job at a time).
        capacity: jobs outstanding per worker at most; ``available`` is False beyond it, so the
            loop proves the rest itself and both kinds of core stay busy (6: on bench_verify.py's
            replay with one worker, ~3/4 of the commits go to it, where loop and worker balance).
    """

    def __init__(self, processes: int, *, capacity: int = 6) -> None:
        self.processes = processes
        self.capacity = capacity * processes
        self.loop = asyncio.get_running_loop()
        self.broken = False
        self._workers: list[_Worker] = []
        self._flush_scheduled = False
        self._outstanding = 0

    async def start(self) -> None:
        """Start the workers (they are usable once each has said it is ready)."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            for _ in range(self.processes):
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "pysky_async._sync.proof_worker", stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, env=env)
                worker = _Worker(process)
                worker.reader = asyncio.create_task(self._read(worker))
                self._workers.append(worker)
        except (OSError, NotImplementedError) as exc:  # NotImplementedError: a loop without subprocesses
            logger.warning("stream: cannot start proof worker processes (%r): commits are proven on the event loop",
                           exc)
            self.broken = True

    @property
    def available(self) -> bool:
        """True while a ready worker can take another job."""
        return not self.broken and self._outstanding < self.capacity and any(w.ready for w in self._workers)

    async def prove(self, job: Job) -> Verdict | None:
        """The worker's verdict on ``job``; None if the pool could not prove it (prove it on the loop)."""
        ready = [w for w in self._workers if w.ready]
        if self.broken or not ready:
            return None
        worker = min(ready, key=lambda w: len(w.pending))
        future: asyncio.Future[Verdict | None] = self.loop.create_future()
        worker.pending.append(future)
        worker.outbox.append(job)
        self._outstanding += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        try:
            return await future
        finally:
            self._outstanding -= 1

    def _flush(self) -> None:
        self._flush_scheduled = False
        for worker in self._workers:
            if worker.outbox:
                batch, worker.outbox = worker.outbox, []
                stdin = worker.process.stdin
                if stdin is None or stdin.is_closing():
                    self._fail(worker)
                    continue
                stdin.write(encode(batch))

    async def _read(self, worker: _Worker) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        try:
            while True:
                (size,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
                verdicts = pickle.loads(await stdout.readexactly(size))
                if verdicts == READY:
                    worker.ready = True
                    worker.started.set()
                    continue
                for verdict in verdicts:
                    future = worker.pending.popleft()
                    if not future.done():
                        future.set_result(verdict)
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError, IndexError) as exc:
            if not self.broken:
                logger.warning("stream: a proof worker process ended (%r): commits are proven on the event loop",
                               exc)
        finally:
            worker.started.set()
            self._fail(worker)

    async def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until every worker is ready (or ended); True if the pool can take jobs."""
        try:
            await asyncio.wait_for(asyncio.gather(*(w.started.wait() for w in self._workers)), timeout)
        except asyncio.TimeoutError:
            logger.warning("stream: proof workers not ready after %ss: commits are proven on the event loop "
                           "until they are", timeout)
        return not self.broken and any(w.ready for w in self._workers)

    def _fail(self, worker: _Worker) -> None:
        self.broken = True
        worker.ready = False
        while worker.pending:
            future = worker.pending.popleft()
            if not future.done():
                future.set_result(None)

    async def aclose(self) -> None:
        """Stop the workers (their pending jobs get None) and wait for them to exit."""
        self.broken = True
        for worker in self._workers:
            if worker.process.stdin is not None:
                worker.process.stdin.close()
        for worker in self._workers:
            try:
                await asyncio.wait_for(worker.process.wait(), 10)
            except asyncio.TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reader is not None:
                worker.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader
            self._fail(worker)
        self._workers.clear()

