"""``create_post(client_unique_key=...)`` posts once even when the process is killed between the
PDS's accept and the client's record of it (the notification bot's exactly-once reply rests on it)."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from .realnet.pds import Account, PdsServer
from .test_pds_sessions import listen_host

ROOT = Path(__file__).resolve().parents[1]


def run_worker(config: dict[str, str | bool]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.post_once_worker", json.dumps(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def posts_with_text(pds: PdsServer, did: str, text: str) -> list[str]:
    response = httpx.get(f"{pds.base_url}/xrpc/com.atproto.repo.listRecords",
                         params={"repo": did, "collection": "app.bsky.feed.post", "limit": 100}, timeout=30)
    response.raise_for_status()
    return [r["uri"] for r in response.json()["records"] if r["value"]["text"] == text]


def test_a_keyed_post_killed_right_after_the_server_accepted_it_is_not_posted_again(
        pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    text = f"once {secrets.token_hex(4)}"
    config: dict[str, str | bool] = {
        "username": pds_account.handle, "password": pds_account.password, "auth_host": listen_host(pds),
        "plc_directory": pds.plc_url, "database_url": f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3",
        "text": text, "key": f"reply:{text}"}
    killed = run_worker({**config, "kill_after_create": True})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(posts_with_text(pds, pds_account.did, text)) == 1, "the first attempt reached the server"

    again = run_worker(config)
    assert again.returncode == 0, again.stderr
    uris = posts_with_text(pds, pds_account.did, text)
    assert uris == [again.stdout.split()[1]], f"posted {len(uris)} times: {uris}"
