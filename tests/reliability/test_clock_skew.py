"""A machine whose clock runs ahead: token expiry is judged by the server's clock, learned from the
tokens it issues, so the session is not refreshed on every call (real reference PDS)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pysky_async import AsyncBskyClient

from ..realnet.pds import Account, PdsServer
from ..test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio

REFRESH = "com.atproto.server.refreshSession"


async def test_a_clock_three_hours_ahead_refreshes_once_not_on_every_call(
        pds: PdsServer, pds_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def client() -> AsyncBskyClient:
        return AsyncBskyClient(username=pds_account.handle, password=pds_account.password, auth_host=listen_host(pds),
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/s.sqlite3")

    async with client() as bsky:
        await bsky.login()  # with the right time
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 3 * 3600)  # the PDS issues 2-hour tokens
        refreshes = pds.request_count(REFRESH)
        for _ in range(6):
            assert (await bsky.get("com.atproto.server.getSession")).did == pds_account.did
        assert pds.request_count(REFRESH) - refreshes <= 1, "the token looked expired on every call"

    async with client() as again:
        refreshes = pds.request_count(REFRESH)
        for _ in range(6):  # a new process with the stored session: one refresh teaches it the server's time
            assert (await again.get("com.atproto.server.getSession")).did == pds_account.did
        assert pds.request_count(REFRESH) - refreshes <= 1
