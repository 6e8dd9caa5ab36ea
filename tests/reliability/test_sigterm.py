"""SIGTERM flushes the call log when the service installs pysky_async's signal handlers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..realnet.pds import PdsServer
from ..test_pds_sessions import ROOT, listen_host


def _signals_as_systemd_starts_them() -> None:
    """SIGINT at its default in the worker, as systemd and Docker start a service: a test run started
    in the background (``cmd &`` in a script) has SIGINT ignored, and the worker would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _sigint_ignored_as_nohup_starts_it() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_worker(pds: PdsServer, path: Path, *, install: bool,
                start: Callable[[], None] = _signals_as_systemd_starts_them) -> tuple[int, int, str]:
    """Run the worker (5 calls to the real PDS), SIGTERM it; (exit code, rows written, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.sigterm_worker", listen_host(pds), f"sqlite+aiosqlite:///{path}",
         "5", "1" if install else "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=start)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.split() == ["ready", "5"], line + process.stderr.read() if process.stderr else line
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    connection = sqlite3.connect(path)
    try:
        [(rows,)] = connection.execute(
            "SELECT count(*) FROM bsky_api_call_log WHERE endpoint = 'com.atproto.server.describeServer'")
    finally:
        connection.close()
    return process.returncode, rows, stderr


def test_without_the_handlers_sigterm_loses_the_queued_rows(pds: PdsServer, tmp_path: Path) -> None:
    code, rows, _ = stop_worker(pds, tmp_path / "plain.sqlite3", install=False)
    assert (code, rows) == (-signal.SIGTERM, 0)


def test_with_the_handlers_sigterm_writes_them_like_ctrl_c(pds: PdsServer, tmp_path: Path) -> None:
    code, rows, stderr = stop_worker(pds, tmp_path / "handled.sqlite3", install=True)
    assert rows == 5
    assert code == -signal.SIGINT and "KeyboardInterrupt" in stderr, stderr[-2000:]  # exactly as Ctrl-C ends it


def test_with_sigint_ignored_as_nohup_starts_a_service_sigterm_still_writes_them(pds: PdsServer,
                                                                                 tmp_path: Path) -> None:
    """A raised SIGINT does nothing in a process that ignores it: the handlers cancel the main task."""
    code, rows, stderr = stop_worker(pds, tmp_path / "nohup.sqlite3", install=True,
                                     start=_sigint_ignored_as_nohup_starts_it)
    assert rows == 5, stderr[-2000:]
    assert code not in (-signal.SIGTERM, -signal.SIGKILL), stderr[-2000:]
