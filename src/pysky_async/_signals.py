"""SIGTERM handled like Ctrl-C, so a stopped service flushes its call log."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterable


def install_signal_handlers(signals: Iterable[signal.Signals] = (signal.SIGTERM,)) -> None:
    """Make ``signals`` (default: SIGTERM, how systemd and Docker stop a process) act like
    Ctrl-C under ``asyncio.run``: the main task is cancelled, so ``async with AsyncBskyClient()``
    exits and writes the queued call-log rows; ``asyncio.run`` then raises KeyboardInterrupt.

    Call it from the main coroutine (Unix only). SIGKILL cannot be handled: it loses at most
    the rows of the last flush interval (0.25 s by default).

    Before Python 3.11, ``asyncio.run`` lets Ctrl-C interrupt whatever runs (a half-closed client,
    a traceback): there these signals and SIGINT cancel the main task instead, so ``asyncio.run``
    raises ``CancelledError`` after the same clean exit. So do these signals in a process started
    with SIGINT ignored (``nohup``, ``cmd &`` in a script), where a raised SIGINT would do nothing.
    """
    loop = asyncio.get_running_loop()
    sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # nohup, `cmd &` in a script
    if sys.version_info >= (3, 11) and not sigint_ignored:
        for signum in signals:
            loop.add_signal_handler(signum, signal.raise_signal, signal.SIGINT)
        return
    main = asyncio.current_task()
    if main is None:
        return
    for signum in {*signals, *(() if sigint_ignored else (signal.SIGINT,))}:
        loop.add_signal_handler(signum, main.cancel)
