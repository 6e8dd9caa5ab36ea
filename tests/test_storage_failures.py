"""SQLite files that stop being usable under a running program: deleted, read-only. Each is
reported once, with the truth and what to do, and no row is counted as stored that is not."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from pysky_async import StorageError
from pysky_async._call_log import CallLogWriter
from pysky_async._storage.repositories import CursorRepository
from pysky_async._storage.store import Store

pytestmark = pytest.mark.anyio


def log_row(n: int) -> dict[str, Any]:
    return {"timestamp": dt.datetime.now(dt.timezone.utc), "hostname": "pds.test", "endpoint": f"x.y.call{n}",
            "method": "GET", "write_op_points_consumed": 0, "session_was_refreshed": False}


def delete_database(path: Path) -> None:
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        name.unlink(missing_ok=True)


async def test_a_deleted_sqlite_file_is_reported_once_and_its_rows_are_not_counted_as_stored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "calls.sqlite3"
    store = Store(f"sqlite+aiosqlite:///{path}")
    writer = CallLogWriter(store, interval=60, retry_interval=60)
    for n in range(10):
        writer.add(log_row(n))
    await writer.flush()
    delete_database(path)
    with caplog.at_level(logging.DEBUG, logger="pysky_async"):
        for n in range(10, 30):
            writer.add(log_row(n))
        for _ in range(3):
            with pytest.raises(StorageError) as refused:
                await writer.flush()
            assert str(path) in str(refused.value) and "deleted" in str(refused.value)
        assert writer.pending == 20, "rows written into a deleted file are lost: they must stay queued"
        with pytest.raises(StorageError):
            async with store.transaction() as db:
                await CursorRepository(db).save("did:plc:me", "x.y.z", "k", "1")
    told = [r for r in caplog.records if "deleted" in r.getMessage() and r.levelno >= logging.INFO]
    assert len(told) == 1, [r.getMessage() for r in told]
    assert told[0].levelno == logging.ERROR
    assert "restart" in told[0].getMessage() and "going nowhere" in told[0].getMessage()
    with caplog.at_level(logging.ERROR, logger="pysky_async"), pytest.raises(StorageError):
        await writer.aclose()
    assert any("20 rows could not be written" in r.getMessage() for r in caplog.records)
    await store.aclose()


async def test_a_read_only_sqlite_file_is_called_read_only(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    writable = Store(f"sqlite+aiosqlite:///{path}")
    await writable.ensure_ready()
    await writable.aclose()
    store = Store(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")  # what a file without write permission does
    try:
        with pytest.raises(StorageError) as refused:
            async with store.transaction() as db:
                await CursorRepository(db).save("did:plc:me", "x.y.z", "k", "1")
        message = str(refused.value)
        assert "read-only" in message and str(path) in message and "permission" in message, message
        assert "running" not in message and "unreachable" not in message, message
    finally:
        await store.aclose()
