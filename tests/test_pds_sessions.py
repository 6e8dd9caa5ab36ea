"""Sessions and the call log against the real reference PDS (and real databases).

Request counts come from the PDS's own request log, not from the client.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from pysky_async import AsyncBskyClient, LoginFailed, NotAuthenticated, RecordNotFound, _jwt

from .realnet.pds import Account, PdsServer

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"


def listen_host(pds: PdsServer) -> str:
    """The PDS on 127.0.0.1: the DID document advertises ``localhost``, so calls made after
    login reach ``localhost`` only if the client follows the DID document."""
    return pds.base_url.replace("localhost", "127.0.0.1")


def client(pds: PdsServer, account: Account, database_url: str, **kwargs: Any) -> AsyncBskyClient:
    return AsyncBskyClient(username=account.handle, password=account.password,
                           auth_host=listen_host(pds), database_url=database_url,
                           auto_migrate=True, **kwargs)


def worker(pds: PdsServer, account: Account, database_url: str, calls: int = 0) -> subprocess.Popen[str]:
    config = {"username": account.handle, "password": account.password, "auth_host": listen_host(pds),
              "database_url": database_url, "calls": calls}
    return subprocess.Popen([sys.executable, "-m", "tests.session_worker", json.dumps(config)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def revoke(pds: PdsServer, refresh_jwt: str) -> None:
    """Kill a refresh token the way a logout does."""
    response = httpx.post(f"{listen_host(pds)}/xrpc/com.atproto.server.deleteSession",
                          headers={"Authorization": f"Bearer {refresh_jwt}"})
    assert response.status_code == 200, response.text


def release(processes: list[subprocess.Popen[str]], timeout: float) -> list[tuple[str, str]]:
    """Tell waiting workers to go; their (stdout, stderr). Kills any still running on the way out."""
    try:
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        return [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


async def fifty_calls_after_expiry(bsky: AsyncBskyClient, pds: PdsServer, did: str) -> None:
    """Log in, let the 3 s access token expire, then 50 concurrent calls: exactly one refresh."""
    await bsky.login()
    await asyncio.sleep(3.5)
    before = pds.request_count(REFRESH)
    results = await asyncio.gather(*(bsky.get("com.atproto.server.getSession") for _ in range(50)))
    assert all(r.did == did for r in results)
    assert pds.request_count(REFRESH) == before + 1


def wait_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready"):
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"worker failed: {line!r} {stderr}")
    return line.split()[1]


async def test_login_is_lazy_and_calls_go_to_the_pds_from_the_did_document(
        pds: PdsServer, pds_account: Account, database_url: str) -> None:
    before = pds.request_count(CREATE)
    async with client(pds, pds_account, database_url) as bsky:
        assert not bsky.logged_in
        assert pds.request_count(CREATE) == before
        r = await bsky.get("com.atproto.server.getSession")
        assert r.did == pds_account.did and bsky.did == pds_account.did
        assert bsky.handle == pds_account.handle
        assert r.http.url.startswith(pds.base_url)  # localhost, from the DID document
        described = await bsky.get("com.atproto.server.describeServer", hostname=listen_host(pds))
        assert described.did == pds.service_did
    assert pds.request_count(CREATE) == before + 1


async def test_second_process_reuses_the_stored_session(pds: PdsServer, pds_account: Account,
                                                       database_url: str) -> None:
    before = pds.request_count(CREATE)
    for _ in range(2):
        process = worker(pds, pds_account, database_url)
        assert wait_ready(process) == pds_account.did
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    assert pds.request_count(CREATE) == before + 1, "the second process must not log in again"


async def test_real_expiry_50_concurrent_calls_one_refresh(pds_short_ttl: PdsServer,
                                                           short_ttl_account: Account, tmp_path: Path) -> None:
    """The access token really expires (3 s); 50 calls then share one refreshSession."""
    async with client(pds_short_ttl, short_ttl_account, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        await fifty_calls_after_expiry(bsky, pds_short_ttl, short_ttl_account.did)


async def test_expired_token_answer_refreshes_once_and_replays(
        pds_short_ttl: PdsServer, short_ttl_account: Account, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the client-side expiry check, the server's 400 ExpiredToken drives the refresh."""
    monkeypatch.setattr(_jwt, "expires_soon", lambda token, now=None: False)
    async with client(pds_short_ttl, short_ttl_account, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        await fifty_calls_after_expiry(bsky, pds_short_ttl, short_ttl_account.did)
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql(
            "SELECT http_status_code, session_was_refreshed FROM bsky_api_call_log "
            "WHERE endpoint = 'com.atproto.server.getSession' ORDER BY id")
    # one row per attempt: each call's expired first attempt, then its replay with the new token
    assert sorted((status, bool(refreshed)) for status, refreshed in rows) == [(200, True)] * 50 + [(400, False)] * 50


async def test_three_processes_sharing_a_database_refresh_once(pds_short_ttl: PdsServer,
                                                               short_ttl_account: Account,
                                                               database_url: str) -> None:
    creates, refreshes = pds_short_ttl.request_count(CREATE), pds_short_ttl.request_count(REFRESH)
    processes = [worker(pds_short_ttl, short_ttl_account, database_url, calls=50) for _ in range(3)]
    assert {wait_ready(p) for p in processes} == {short_ttl_account.did}
    await asyncio.sleep(3.5)  # every process holds the same, now expired, access token
    outputs = release(processes, timeout=60)
    assert [out.strip() for out, _ in outputs] == ["done 50"] * 3, outputs
    assert pds_short_ttl.request_count(CREATE) == creates + 1
    assert pds_short_ttl.request_count(REFRESH) == refreshes + 1


async def test_dead_refresh_token_means_a_fresh_login(pds_short_ttl: PdsServer, short_ttl_account: Account,
                                                      tmp_path: Path) -> None:
    async with client(pds_short_ttl, short_ttl_account, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        session = await bsky.login()
        revoke(pds_short_ttl, session.refresh_jwt)  # revoke it
        await asyncio.sleep(3.5)
        creates = pds_short_ttl.request_count(CREATE)
        r = await bsky.get("com.atproto.server.getSession")
        assert r.did == short_ttl_account.did
        assert pds_short_ttl.request_count(CREATE) == creates + 1
        assert bsky.export_session()["refresh_jwt"] != session.refresh_jwt


async def test_dead_refresh_token_without_password_raises_not_authenticated(
        pds_short_ttl: PdsServer, short_ttl_account: Account, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3"
    async with client(pds_short_ttl, short_ttl_account, url) as bsky:
        session = await bsky.login()
        revoke(pds_short_ttl, session.refresh_jwt)
    await asyncio.sleep(3.5)
    async with AsyncBskyClient(username=short_ttl_account.handle, auth_host=listen_host(pds_short_ttl),
                               database_url=url) as bsky:
        with pytest.raises(NotAuthenticated, match="BSKY_AUTH_PASSWORD"):
            await bsky.get("com.atproto.server.getSession")


async def test_exported_session_works_in_another_client(pds: PdsServer, pds_account: Account,
                                                       tmp_path: Path) -> None:
    async with client(pds, pds_account, f"sqlite+aiosqlite:///{tmp_path}/a.sqlite3") as first:
        await first.login()
        exported = first.export_session()
    creates = pds.request_count(CREATE)
    other_database = f"sqlite+aiosqlite:///{tmp_path}/b.sqlite3"
    async with AsyncBskyClient(auth_host=listen_host(pds), database_url=other_database) as second:
        await second.login_with_session(exported)
        r = await second.get("com.atproto.server.getSession")
    assert r.handle == pds_account.handle
    assert pds.request_count(CREATE) == creates


async def test_wrong_password_is_a_clear_error(pds: PdsServer, pds_account: Account, database_url: str) -> None:
    wrong = Account(handle=pds_account.handle, did=pds_account.did, password="not-the-password",
                    email=pds_account.email)
    async with client(pds, wrong, database_url) as bsky:
        with pytest.raises(LoginFailed, match="Check the username and password") as info:
            await bsky.get("com.atproto.server.getSession")
        assert info.value.log_id is not None
        log = await bsky.store.execute_sql(
            "SELECT id, endpoint, http_status_code, exception_class, params FROM bsky_api_call_log ORDER BY id")
    assert [row[1:4] for row in log] == [(CREATE, 401, "AuthenticationRequired"),
                                         ("com.atproto.server.getSession", None, "LoginFailed")]
    assert log[1][0] == info.value.log_id
    assert "not-the-password" not in str(log) and "[REDACTED]" in str(log[0][4])


async def test_every_call_is_logged_and_no_secret_reaches_the_database(
        pds: PdsServer, pds_account: Account, database_url: str) -> None:
    async with client(pds, pds_account, database_url) as bsky:
        session = await bsky.login()
        created = await bsky.post("com.atproto.repo.createRecord", repo=bsky.did, collection="com.example.note",
                                  record={"$type": "com.example.note", "text": "hi"}, validate=False)
        await bsky.get("com.atproto.repo.getRecord", repo=bsky.did, collection="com.example.note",
                       rkey=created.uri.rsplit("/", 1)[1])
        with pytest.raises(RecordNotFound) as info:
            await bsky.get("com.atproto.repo.getRecord", repo=bsky.did, collection="com.example.note",
                           rkey="missing")
    assert info.value.log_id is not None
    # a new client on the same database sees everything the first one wrote
    async with AsyncBskyClient(database_url=database_url) as reader:
        log = await reader.store.execute_sql(
            "SELECT id, endpoint, http_status_code, hostname, request_did, params, exception_class, "
            "exception_response, response_keys FROM bsky_api_call_log ORDER BY id")
        sessions = await reader.store.execute_sql("SELECT * FROM bsky_session")
    assert [(row[1], row[2]) for row in log] == [
        (CREATE, 200), ("com.atproto.repo.createRecord", 200), ("com.atproto.repo.getRecord", 200),
        ("com.atproto.repo.getRecord", 400)]
    assert log[-1][0] == info.value.log_id and log[-1][6] == "RecordNotFound"
    assert {row[3] for row in log[1:]} == {pds.base_url.split("://")[1]}
    assert {row[4] for row in log[1:]} == {pds_account.did}
    everything = str(log) + str(sessions)
    assert pds_account.password not in everything
    assert "[REDACTED]" in str(log[0])
    for token in (session.access_jwt, session.refresh_jwt):
        assert token not in str(log)
        assert token.split(".")[2] not in str(log)
