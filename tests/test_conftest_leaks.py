"""The suite's leak check (tests/conftest.py): a file or socket a test leaks warns when it is
collected, and the collection after each test makes that warning (an error here) fail the test that
leaked it. What is frozen out of the collector once the tests are collected (to save its walk over
every module after each test) must not hide such a leak."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LEAKY_TESTS = '''
import gc
import socket

class Holder:
    def __init__(self) -> None:
        self.socket = socket.socket()
        self.me = self  # a cycle: only the garbage collector frees it (and the socket warns then)

def test_leaks_a_socket() -> None:
    Holder()

def test_after_it() -> None:
    assert gc.get_freeze_count() > 0  # the session's objects were frozen out of the collector
'''

CONFTEST = '''
from tests.conftest import collect_garbage_after_each_test, pytest_collection_finish
'''


def test_a_socket_leaked_in_a_cycle_fails_the_test_that_leaked_it(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST), encoding="utf-8")
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent(LEAKY_TESTS), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-W", "error", "-rA",
         "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path)],
        cwd=tmp_path, env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = result.stdout
    assert result.returncode == 1, out
    assert "ERROR test_leaky.py::test_leaks_a_socket" in out, out
    assert "ResourceWarning" in out and "socket" in out, out
    assert "PASSED test_leaky.py::test_after_it" in out, out
