"""The command line, run as a real subprocess against the reference PDS and both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pysky_async._storage import migrate

from .realnet.pds import Account, PdsServer

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG"))}
    return subprocess.run([sys.executable, "-m", "pysky_async", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_get_and_post_print_the_json_response(pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    host = pds.base_url.replace("localhost", "127.0.0.1")
    env = {"BSKY_AUTH_USERNAME": pds_account.handle, "BSKY_AUTH_PASSWORD": pds_account.password,
           "BSKY_SQLITE_FILENAME": str(tmp_path / "cli.sqlite3")}
    described = run_cli("--auth-host", host, "get", "com.atproto.server.describeServer", "--hostname", host, env=env)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["did"] == pds.service_did
    created = run_cli("--auth-host", host, "post", "com.atproto.repo.createRecord", f"repo={pds_account.did}",
                      "collection=com.example.note", 'record={"text": "from the cli"}', "validate=false", env=env)
    assert created.returncode == 0, created.stderr
    uri = json.loads(created.stdout)["uri"]
    fetched = run_cli("--auth-host", host, "get", "com.atproto.repo.getRecord", f"repo={pds_account.did}",
                      "collection=com.example.note", f"rkey={uri.rsplit('/', 1)[1]}", env=env)
    assert json.loads(fetched.stdout)["value"]["text"] == "from the cli"
    assert pds.request_count("com.atproto.server.createSession") >= 1
    missing = run_cli("--auth-host", host, "get", "com.atproto.repo.getRecord", f"repo={pds_account.did}",
                      "collection=com.example.note", "rkey=nope", env=env)
    assert missing.returncode == 1
    assert "RecordNotFound" in missing.stderr and "call log id" in missing.stderr


def test_db_upgrade_and_downgrade_on_postgresql(pg_database_url: str) -> None:
    env = {"PYSKY_DATABASE_URL": pg_database_url}
    up = run_cli("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip().endswith(migrate.HEAD_REVISION)
    assert run_cli("db", "current", env=env).stdout.strip() == migrate.HEAD_REVISION
    down = run_cli("db", "downgrade", env=env)
    assert down.stdout.strip() == "empty", down.stderr
