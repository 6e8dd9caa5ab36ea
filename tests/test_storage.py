"""Storage on both SQLite and a real PostgreSQL server: migrations, models, repositories."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from pysky_async._storage import migrate
from pysky_async._storage.models import Base
from pysky_async._storage.repositories import CallLogRepository, SessionRepository
from pysky_async._storage.store import Store, create_engine, default_sqlite_path, resolve_database_url

pytestmark = pytest.mark.anyio

TABLES = {"bsky_session", "bsky_api_call_log", "bsky_cursor", "bsky_write_op", "bsky_user_profile", "bsky_post"}


def test_head_revision_constant_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_current_head() == migrate.HEAD_REVISION
    assert {revision.revision for revision in script.walk_revisions()} == migrate._REVISIONS


async def test_upgrade_from_empty_to_head_and_back(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.HEAD_REVISION
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert TABLES <= tables
        await migrate.downgrade(engine)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert not (TABLES & tables)
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.HEAD_REVISION
    finally:
        await engine.dispose()


async def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)

        def diff(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "version_table": migrate.VERSION_TABLE})
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_store_refuses_an_unmigrated_database_with_instructions(database_url: str) -> None:
    store = Store(database_url, auto_migrate=False)
    try:
        with pytest.raises(Exception, match=r"pysky-async --database-url .* db upgrade"):
            await store.ensure_ready()
    finally:
        await store.aclose()


async def test_session_repository_round_trip_and_versioning(store: Store) -> None:
    async with store.transaction() as db:
        repo = SessionRepository(db)
        await repo.save("me@host", did="did:plc:me", handle="me.test", pds_endpoint="https://pds",
                        access_jwt="a1", refresh_jwt="r1")
    async with store.transaction() as db:
        repo = SessionRepository(db)
        row = await repo.save("me@host", access_jwt="a2", refresh_jwt="r2")
        assert row.version == 2
    async with store.transaction() as db:
        found = await SessionRepository(db).get("me@host")
        assert found is not None and (found.access_jwt, found.handle, found.version) == ("a2", "me.test", 2)
        assert found.updated_at.tzinfo is not None and found.updated_at.utcoffset() == dt.timedelta(0)


async def test_failed_unit_of_work_is_rolled_back(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as db:
            await SessionRepository(db).save("x@host", did="d", handle="h", pds_endpoint="p",
                                             access_jwt="a", refresh_jwt="r")
            raise RuntimeError("boom")
    async with store.transaction() as db:
        assert await SessionRepository(db).get("x@host") is None


async def test_call_log_batch_insert_keeps_order_and_utc(store: Store) -> None:
    moment = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    rows = [{"timestamp": moment, "endpoint": f"a.b.c{i}", "method": "GET", "params": {"i": i},
             "write_op_points_consumed": 0, "session_was_refreshed": False} for i in range(5)]
    async with store.transaction() as db:
        repo = CallLogRepository(db)
        await repo.add_many(rows)
        last = await repo.add({**rows[0], "endpoint": "a.b.last"})
    result = await store.execute_sql("SELECT id, endpoint FROM bsky_api_call_log ORDER BY id")
    assert [r[1] for r in result] == [f"a.b.c{i}" for i in range(5)] + ["a.b.last"]
    assert result[-1][0] == last
    async with store.transaction() as db:
        from sqlalchemy import select

        from pysky_async._storage.models import CallLogRow

        stamps = (await db.execute(select(CallLogRow.timestamp))).scalars().all()
    assert all(s == moment and s.tzinfo is not None and s.utcoffset() == dt.timedelta(0) for s in stamps)


def test_database_url_resolution_order(tmp_path: object) -> None:
    assert resolve_database_url("sqlite+aiosqlite:///x.db", {"PYSKY_DATABASE_URL": "nope"}) == "sqlite+aiosqlite:///x.db"
    assert resolve_database_url(None, {"PYSKY_DATABASE_URL": "postgresql+asyncpg://u@h/d", "PGHOST": "h"}) \
        == "postgresql+asyncpg://u@h/d"
    pg = resolve_database_url(None, {"PGHOST": "db.local", "PGUSER": "bot", "PGPASSWORD": "s3cret",
                                     "PGDATABASE": "bsky", "PGPORT": "6543", "BSKY_SQLITE_FILENAME": "x"})
    assert pg == "postgresql+asyncpg://bot:s3cret@db.local:6543/bsky"
    assert resolve_database_url(None, {"BSKY_SQLITE_FILENAME": "/tmp/b.db"}) == "sqlite+aiosqlite:////tmp/b.db"
    assert resolve_database_url(None, {"BSKY_SQLITE_FILENAME": ":memory:"}) == "sqlite+aiosqlite:///:memory:"
    default = resolve_database_url(None, {})
    assert default.startswith("sqlite+aiosqlite:///") and default.endswith("pysky_async.sqlite3")


async def test_default_sqlite_file_is_created_and_migrated_on_first_use(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for name in ("PYSKY_DATABASE_URL", "PGHOST", "PGDATABASE", "BSKY_SQLITE_FILENAME"):
        monkeypatch.delenv(name, raising=False)
    store = Store()
    try:
        await store.ensure_ready()
        assert await migrate.current_revision(store.engine) == migrate.HEAD_REVISION
    finally:
        await store.aclose()
    assert (tmp_path / "pysky_async" / "pysky_async.sqlite3").is_file()


async def test_processes_starting_together_migrate_once(database_url: str) -> None:
    import asyncio

    engines = [create_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate.upgrade(engine) for engine in engines))
        assert await migrate.current_revision(engines[0]) == migrate.HEAD_REVISION
    finally:
        for engine in engines:
            await engine.dispose()


async def test_the_default_database_is_announced_once_when_it_is_created_without_any_logging_set_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Nobody reads INFO: the first start tells where the sessions live on stderr (Python's
    last-resort handler shows a WARNING with no logging configured); later starts say nothing."""
    for name in ("PYSKY_DATABASE_URL", "PGHOST", "PGDATABASE", "BSKY_SQLITE_FILENAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a script that set up no logging
    monkeypatch.setattr(logging.getLogger("pysky_async"), "propagate", True)
    path = default_sqlite_path()
    told = []
    for _ in range(2):
        store = Store()
        await store.ensure_ready()
        await store.aclose()
        told.append(capsys.readouterr().err)
    assert str(path) in told[0] and "PYSKY_DATABASE_URL" in told[0], told
    assert told[1] == ""


async def test_a_database_the_user_chose_is_not_announced(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/chosen.sqlite3")
    await store.ensure_ready()
    await store.aclose()
    assert capsys.readouterr().err == ""
