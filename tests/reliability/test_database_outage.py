"""PostgreSQL stopped and restarted under load: only StorageError leaves the storage layer, and
call-log rows are kept (within a bound) and written once the database is back."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

import pytest

from pysky_async import AsyncBskyClient, PyskyError, StorageError
from pysky_async._call_log import CallLogWriter
from pysky_async._storage.repositories import CursorRepository
from pysky_async._storage.store import Store

from ..realnet.pds import Account, PdsServer
from ..test_pds_sessions import listen_host
from .pg_outage import OwnPostgres

pytestmark = pytest.mark.anyio


def log_row(n: int) -> dict[str, Any]:
    return {"timestamp": dt.datetime.now(dt.timezone.utc), "hostname": "pds.test", "endpoint": f"x.y.call{n}",
            "method": "GET", "write_op_points_consumed": 0, "session_was_refreshed": False}


async def save_cursor(store: Store, n: int) -> None:
    async with store.transaction() as db:
        await CursorRepository(db).save("did:plc:me", "x.y.z", "k", str(n))


def assert_no_unretrieved_task_errors(caplog: pytest.LogCaptureFixture) -> None:
    asyncio_errors = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert asyncio_errors == []


async def test_only_storage_errors_leave_the_store_while_postgresql_is_down(
        own_postgres: OwnPostgres, caplog: pytest.LogCaptureFixture) -> None:
    url = own_postgres.url("outage")
    store = Store(url, auto_migrate=True)
    fresh = Store(url, auto_migrate=True)
    await save_cursor(store, 0)
    own_postgres.down()
    try:
        errors: list[BaseException] = []
        for n in range(20):
            for attempt in (save_cursor(store, n), fresh.ensure_ready(), store.execute_sql("SELECT 1")):
                try:
                    await attempt
                except BaseException as exc:
                    errors.append(exc)
        assert len(errors) == 60
        assert {type(e) for e in errors} == {StorageError}, [repr(e) for e in errors if type(e) is not StorageError]
        assert all("database" in str(e) for e in errors)
    finally:
        own_postgres.up()
    await save_cursor(store, 99)
    assert await store.execute_sql("SELECT cursor FROM bsky_cursor") == [("99",)]
    await fresh.aclose()
    await store.aclose()
    assert_no_unretrieved_task_errors(caplog)


async def test_call_log_rows_survive_an_outage_under_load(own_postgres: OwnPostgres,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    store = Store(own_postgres.url("calllog"), auto_migrate=True)
    await store.ensure_ready()
    writer = CallLogWriter(store, interval=0.05)
    added = 0

    async def load(seconds: float) -> None:
        nonlocal added
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            writer.add(log_row(added))
            added += 1
            await asyncio.sleep(0.002)

    await load(0.5)
    own_postgres.down()
    await load(3)
    kept = writer.pending
    assert kept > 0
    await asyncio.to_thread(own_postgres.up)
    await load(0.5)
    for _ in range(200):  # the writer retries on its own once the database is back
        if writer.pending == 0:
            break
        await asyncio.sleep(0.05)
    assert writer.pending == 0
    await writer.aclose()
    [(count, distinct)] = await store.execute_sql("SELECT count(*), count(DISTINCT endpoint) FROM bsky_api_call_log")
    assert count == distinct == added
    assert writer.rows_dropped == 0
    await store.aclose()
    assert_no_unretrieved_task_errors(caplog)


async def test_past_the_cap_the_oldest_rows_are_dropped_counted_and_logged(
        own_postgres: OwnPostgres, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(own_postgres.url("capped"), auto_migrate=True)
    await store.ensure_ready()
    writer = CallLogWriter(store, interval=0.05, max_pending=100)
    own_postgres.down()
    with caplog.at_level(logging.WARNING, logger="pysky_async"):
        for n in range(250):
            writer.add(log_row(n))
        await asyncio.sleep(0.3)
        assert writer.pending == 100
        assert writer.rows_dropped == 150
    await asyncio.to_thread(own_postgres.up)
    await writer.aclose()
    rows = await store.execute_sql("SELECT endpoint FROM bsky_api_call_log ORDER BY id")
    assert [r[0] for r in rows] == [f"x.y.call{n}" for n in range(150, 250)]
    assert any("150" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)
    await store.aclose()
    assert_no_unretrieved_task_errors(caplog)


@pytest.mark.parametrize("seed", range(3))
async def test_cancelling_an_error_row_write_neither_loses_nor_duplicates(database_url: str, seed: int) -> None:
    store = Store(database_url, auto_migrate=True)
    await store.ensure_ready()
    writer = CallLogWriter(store, interval=60)
    expected = 0

    async def failed_call(row: dict[str, Any]) -> None:
        nonlocal expected
        await asyncio.sleep(0)  # the call itself; cancelled here, it has no row to write yet
        expected += 1
        await writer.add_and_flush(row)  # as CallLogMiddleware writes an error's row

    for n in range(100):
        for k in range(3):
            writer.add(log_row(4 * n + k))
            expected += 1
        try:
            await asyncio.wait_for(failed_call(log_row(4 * n + 3)), 0.0005 * ((n + seed) % 7))
        except asyncio.TimeoutError:  # wait_for's; not the builtin TimeoutError before 3.11
            pass
    await writer.aclose()
    [(count, distinct)] = await store.execute_sql("SELECT count(*), count(DISTINCT endpoint) FROM bsky_api_call_log")
    assert (count, distinct) == (expected, expected)
    await store.aclose()


async def test_closing_during_an_outage_says_how_many_rows_are_lost(
        own_postgres: OwnPostgres, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(own_postgres.url("closing"), auto_migrate=True)
    await store.ensure_ready()
    writer = CallLogWriter(store, interval=60)
    for n in range(7):
        writer.add(log_row(n))
    own_postgres.down()
    try:
        with pytest.raises(StorageError):
            await writer.aclose()
        assert writer._timer is None, "a closed writer must not keep retrying"
        assert any("7 rows could not be written" in r.getMessage() for r in caplog.records)
    finally:
        own_postgres.up()
    await store.aclose()
    assert_no_unretrieved_task_errors(caplog)


async def test_client_calls_during_an_outage_raise_pysky_errors_and_keep_their_rows(
        own_postgres: OwnPostgres, pds: PdsServer, pds_account: Account) -> None:
    bsky = AsyncBskyClient(username=pds_account.handle, password=pds_account.password, auth_host=listen_host(pds),
                           database_url=own_postgres.url("client"), auto_migrate=True)
    await bsky.login()
    own_postgres.down()
    try:
        results = await asyncio.gather(
            *(bsky.create_record("app.bsky.feed.post", {"text": f"outage {n}", "createdAt": "2026-01-01T00:00:00Z"})
              for n in range(10)),
            *(bsky.get("com.atproto.server.getSession") for _ in range(10)),
            return_exceptions=True)
    finally:
        own_postgres.up()
    raised = [r for r in results if isinstance(r, BaseException)]
    assert raised, "creates need the write budget's ledger, so some calls must fail while it is down"
    assert [r for r in raised if not isinstance(r, PyskyError)] == []
    await bsky.create_record("app.bsky.feed.post", {"text": "after", "createdAt": "2026-01-01T00:00:00Z"})
    await bsky.flush_call_log()
    [(rows,)] = await bsky.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
    assert rows == bsky.call_log.rows_added
    await bsky.aclose()


async def test_an_outage_that_loses_nothing_is_told_once_as_a_warning_and_its_end_once_as_info(
        own_postgres: OwnPostgres, pds: PdsServer, pds_account: Account, caplog: pytest.LogCaptureFixture) -> None:
    bsky = AsyncBskyClient(username=pds_account.handle, password=pds_account.password, auth_host=listen_host(pds),
                           database_url=own_postgres.url("quiet"), auto_migrate=True)
    await bsky.login()
    await bsky.flush_call_log()
    bsky.call_log.retry_interval = 0.05
    own_postgres.down()
    with caplog.at_level(logging.DEBUG):
        try:
            for n in range(40):  # answered calls and error answers (whose rows are written at once)
                await bsky.get("com.atproto.server.getSession")
                with pytest.raises(PyskyError):
                    await bsky.get("com.atproto.repo.getRecord", repo=pds_account.did, collection="x.y.z", rkey=f"r{n}")
                await asyncio.sleep(0.01)
            assert bsky.call_log.pending == 80
        finally:
            await asyncio.to_thread(own_postgres.up)
        for _ in range(200):
            if bsky.call_log.pending == 0:
                break
            await asyncio.sleep(0.05)
        assert bsky.call_log.pending == 0
    rows = await bsky.store.execute_sql("SELECT endpoint, http_status_code FROM bsky_api_call_log")
    assert len(rows) == bsky.call_log.rows_added, (rows, bsky.call_log.rows_added, bsky.call_log.rows_dropped)
    await bsky.aclose()
    ours = [r for r in caplog.records if r.name.startswith("pysky_async") and r.levelno >= logging.INFO]
    assert [r.getMessage() for r in ours if r.levelno >= logging.ERROR] == [], "nothing was lost"
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "kept in memory" in warnings[0], warnings
    infos = [r.getMessage() for r in ours if r.levelno == logging.INFO and "reachable again" in r.getMessage()]
    assert len(infos) == 1, [r.getMessage() for r in ours]
    assert_no_unretrieved_task_errors(caplog)
