"""SIGTERM handled like Ctrl-C, so a stopped service flushes its call log."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable


def install_signal_handlers(signals: Iterable[signal.Signals] = (signal.SIGTERM,)) -> None:
    """Make ``signals`` (default: SIGTERM, how systemd and Docker stop a process) act like
    Ctrl-C under ``asyncio.run``: the main task is cancelled, so ``async with AsyncBskyClient()``
    exits and writes the queued call-log rows; ``asyncio.run`` then raises KeyboardInterrupt.

    Call it from the main coroutine (Unix only). SIGKILL cannot be handled: it loses at most
    the rows of the last flush interval (0.25 s by default).
    """
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, signal.raise_signal, signal.SIGINT)
