"""The command line as a user meets it: calls that need no account, a closed output pipe,
Ctrl-C (real subprocesses; the PDS is the reference one)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .realnet.pds import Account, PdsServer
from .test_cli import ROOT, run_cli


def clean_env(**env: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG"))}
    return {**kept, **env}


def test_create_account_with_credentials_in_the_environment_never_logs_in(
        pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    host = pds.base_url.replace("localhost", "127.0.0.1")
    env = {"BSKY_AUTH_USERNAME": pds_account.handle, "BSKY_AUTH_PASSWORD": "not-the-password",
           "PYSKY_AUTH_HOST": host, "BSKY_SQLITE_FILENAME": str(tmp_path / "cli.sqlite3")}
    logins = pds.request_count("com.atproto.server.createSession")
    handle = f"c{secrets.token_hex(4)}.test"
    created = run_cli("post", "--hostname", host, "com.atproto.server.createAccount", f"handle={handle}",
                      f"email={handle}@example.com", "password=new-account-pw", env=env)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["handle"] == handle
    resolved = run_cli("get", "com.atproto.identity.resolveHandle", f"handle={handle}", env=env)
    assert resolved.returncode == 0, resolved.stderr
    assert json.loads(resolved.stdout)["did"] == json.loads(created.stdout)["did"]
    session = run_cli("post", "--hostname", host, "com.atproto.server.createSession", f"identifier={handle}",
                      "password=new-account-pw", env=env)
    assert session.returncode == 0 and json.loads(session.stdout)["handle"] == handle, session.stderr
    repos = run_cli("get", "--no-auth", "com.atproto.sync.listRepos", env=env)  # any call, on request
    assert repos.returncode == 0 and "repos" in json.loads(repos.stdout), repos.stderr
    assert pds.request_count("com.atproto.server.createSession") == logins + 1, \
        "only the createSession asked for: no login with the (wrong) password of the environment"
    refused = run_cli("get", "com.atproto.server.getSession", env=env)
    assert refused.returncode == 1 and "error:" in refused.stderr, "other calls still log in"


def test_output_into_a_closed_pipe_exits_quietly(pds: PdsServer, tmp_path: Path) -> None:
    host = pds.base_url.replace("localhost", "127.0.0.1")
    read, write = os.pipe()
    os.close(read)  # `| head` that has already exited
    try:
        process = subprocess.run([sys.executable, "-m", "pysky_async", "--auth-host", host, "get",
                                  "com.atproto.server.describeServer"], cwd=ROOT, stdout=write,
                                 stderr=subprocess.PIPE, text=True, timeout=120,
                                 env=clean_env(BSKY_SQLITE_FILENAME=str(tmp_path / "cli.sqlite3")))
    finally:
        os.close(write)
    assert process.returncode == 141, process.stderr
    assert process.stderr == "", "no BrokenPipeError traceback"


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A TCP server that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(60)
    try:
        yield server
    finally:
        server.close()


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT back to its default in the child, as for a command typed in a terminal: a test run
    started in the background (``cmd &`` in a script, as .ci/run starts the version matrix) has
    SIGINT ignored, the child would inherit that and Python would never raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when_connected(command: list[str], server: socket.socket, env: dict[str, str]) -> tuple[int, str]:
    """Run ``command``, wait until it connects to ``server``, then Ctrl-C it (SIGINT)."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
    connection: socket.socket | None = None
    try:
        connection, _ = server.accept()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if connection is not None:
            connection.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def test_ctrl_c_on_the_cli_exits_130_with_one_line(silent_server: socket.socket, tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{silent_server.getsockname()[1]}"
    status, stderr = interrupt_when_connected(
        [sys.executable, "-m", "pysky_async", "--auth-host", host, "get", "com.atproto.server.describeServer"],
        silent_server, clean_env(BSKY_SQLITE_FILENAME=str(tmp_path / "cli.sqlite3")))
    assert status == 130, stderr
    assert "Traceback" not in stderr
    # the last line; a first start may also announce the database it created (a WARNING, once)
    assert stderr.splitlines()[-1] == "pysky-async: interrupted"


def test_ctrl_c_on_the_bot_exits_130_with_one_line(silent_server: socket.socket, tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{silent_server.getsockname()[1]}"
    env = clean_env(BSKY_AUTH_USERNAME="bot.test", BSKY_AUTH_PASSWORD="pw", PYSKY_AUTH_HOST=host,
                    BSKY_SQLITE_FILENAME=str(tmp_path / "bot.sqlite3"))
    status, stderr = interrupt_when_connected([sys.executable, "-m", "examples.bot"], silent_server, env)
    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "bot: stopped (Ctrl-C)"
