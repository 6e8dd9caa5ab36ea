"""One refresh across every worker: three processes sharing the database find the access
token expired at once; exactly one token request reaches the authorization server."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from pysky_async import OAuth
from tests.realnet.pds import Account

from .conftest import REDIRECT_URI, OAuthHarness

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def start_worker(config: dict[str, object]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.oauth.refresh_worker", json.dumps(config)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_three_processes_refresh_once(oauth: OAuthHarness, pds_account: Account, database_url: str) -> None:
    key = OAuth.generate_encryption_key()
    oauth.bsky.oauth.configure(oauth.bsky.oauth.app, encryption_key=key)
    login = await oauth.login(pds_account)
    before = await oauth.bsky.oauth.session(login.did)
    async with oauth.bsky.store.transaction() as db:  # force expiry for everyone
        await db.execute(text("UPDATE bsky_oauth_session SET expires_at = :t"), {"t": dt.datetime(2000, 1, 1)})
    tokens_before = oauth.pds.path_request_count("/oauth/token")
    config = {"database_url": database_url, "public_host": oauth.pds.base_url, "plc_directory": oauth.pds.plc_url,
              "redirect_uri": REDIRECT_URI, "encryption_key": key, "did": login.did, "calls": 5}
    workers = [start_worker(config) for _ in range(3)]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line.startswith("ready"), worker.communicate(timeout=30)
        for worker in workers:  # release them together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    done = [out.split() for out, _ in outputs]
    assert all(words[:2] == ["done", "5"] for words in done), outputs
    assert len({words[2] for words in done}) == 1  # every worker went on with the same new token
    assert oauth.pds.path_request_count("/oauth/token") == tokens_before + 1
    async with oauth.bsky.store.transaction() as db:
        version = (await db.execute(text("SELECT version FROM bsky_oauth_session"))).scalar_one()
    assert version == 2
    oauth.bsky.oauth._c.sessions._current.clear()
    after = await oauth.bsky.oauth.session(login.did)
    assert after.refresh_token != before.refresh_token
