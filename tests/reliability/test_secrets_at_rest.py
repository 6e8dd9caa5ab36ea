"""The SQLite file that holds tokens is private to its owner; no log line carries a secret."""

from __future__ import annotations

import dataclasses
import logging
import stat
import traceback
from pathlib import Path

import httpx
import pytest

from pysky_async import AsyncBskyClient, NetworkError, RecordNotFound
from pysky_async._storage.store import default_sqlite_path

from ..realnet.pds import Account, PdsServer
from ..test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def login_and_call(pds: PdsServer, account: Account, database_url: str | None) -> AsyncBskyClient:
    bsky = AsyncBskyClient(username=account.handle, password=account.password, auth_host=listen_host(pds),
                           database_url=database_url)
    await bsky.login()
    await bsky.get("com.atproto.server.getSession")
    return bsky


async def test_a_new_sqlite_file_and_its_wal_are_private(pds: PdsServer, pds_account: Account,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "given" / "tokens.sqlite3"
    path.parent.mkdir()
    bsky = await login_and_call(pds, pds_account, f"sqlite+aiosqlite:///{path}")
    try:
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        await bsky.aclose()


async def test_the_default_database_lives_in_a_private_directory(
        pds: PdsServer, pds_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PYSKY_DATABASE_URL", "PGHOST", "PGDATABASE", "BSKY_SQLITE_FILENAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = default_sqlite_path()
    assert path.is_relative_to(tmp_path)
    bsky = await login_and_call(pds, pds_account, None)
    try:
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        assert mode(Path(f"{path}-wal")) == 0o600
    finally:
        await bsky.aclose()


async def test_nothing_logged_at_debug_contains_a_token_or_the_password(
        pds: PdsServer, pds_account: Account, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for name in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "pysky_async", "httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        try:
            bsky = await login_and_call(pds, pds_account, f"sqlite+aiosqlite:///{tmp_path}/debug.sqlite3")
            session = bsky.export_session()
            await bsky.aclose()
        finally:
            for name in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "pysky_async", "httpx", "httpcore"):
                logging.getLogger(name).setLevel(logging.NOTSET)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert any(r.name == "aiosqlite" for r in caplog.records), "aiosqlite's DEBUG lines must be captured"
    secrets = {"password": pds_account.password, "accessJwt": session["access_jwt"],
               "refreshJwt": session["refresh_jwt"]}
    leaks = [(r.name, r.getMessage()[:300]) for r in caplog.records
             if any(secret in r.getMessage() for secret in secrets.values())]
    assert [name for name, secret in secrets.items() if secret in text] == [], leaks


@pytest.mark.parametrize("own_http", [False, True], ids=["aiohttp", "httpx"])
async def test_errors_of_authenticated_calls_carry_no_token(pds: PdsServer, pds_account: Account, tmp_path: Path,
                                                            own_http: bool) -> None:
    """Neither the error nor anything in its chain (the transport's exception, its request) shows the token."""
    http = httpx.AsyncClient() if own_http else None
    try:
        bsky = AsyncBskyClient(username=pds_account.handle, password=pds_account.password, auth_host=listen_host(pds),
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/e.sqlite3", http_client=http, retry=None)
        async with bsky:
            session = await bsky.login()
            with pytest.raises(RecordNotFound) as answered:  # an error answer from the server
                await bsky.get_record(f"at://{session.did}/com.example.note/missing")
            await bsky.sessions.adopt(dataclasses.replace(session, pds_endpoint="http://127.0.0.1:9"))
            with pytest.raises(NetworkError) as unanswered:  # no answer at all: the transport's exception chained
                await bsky.get("com.atproto.server.getSession")
    finally:
        if http is not None:
            await http.aclose()
    for caught in (answered.value, unanswered.value):
        shown = repr(caught) + "".join(traceback.format_exception(caught))
        chain: list[BaseException] = []
        cause: BaseException | None = caught
        while cause is not None:
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        shown += "".join(repr(c) + repr(vars(c)) for c in chain if hasattr(c, "__dict__"))
        assert session.access_jwt not in shown and session.refresh_jwt not in shown and "Bearer" not in shown
