"""pysky_async as a guest in the host application's database: its own alembic version table,
0.1 databases still upgrade, first saves race-free across processes, the PG* fallback logged."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from sqlalchemy import text

from pysky_async._storage import migrate
from pysky_async._storage.models import Base
from pysky_async._storage.oauth_repository import OAuthSessionRepository
from pysky_async._storage.repositories import CursorRepository, ProfileRepository, SessionRepository
from pysky_async._storage.store import Store, create_engine, resolve_database_url

pytestmark = pytest.mark.anyio


async def test_a_host_apps_alembic_version_table_is_left_alone(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        await connection.execute(text("INSERT INTO alembic_version VALUES ('hostapp42')"))
    store = Store(engine=engine, auto_migrate=True)
    async with store.transaction() as db:
        await CursorRepository(db).save("did:plc:me", "x.y.z", "", "c1")
    assert await store.execute_sql("SELECT version_num FROM alembic_version") == [("hostapp42",)]
    assert await store.execute_sql("SELECT version_num FROM pysky_alembic_version") == [(migrate.HEAD_REVISION,)]
    await engine.dispose()


@pytest.mark.parametrize("auto_migrate", [True, False])
async def test_a_database_made_by_0_1_is_adopted(database_url: str, auto_migrate: bool) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:  # what 0.1 left: our tables, our revision in alembic_version
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        await connection.execute(text(f"INSERT INTO alembic_version VALUES ('{migrate.HEAD_REVISION}')"))
        await connection.execute(text("INSERT INTO bsky_cursor (did, endpoint, cursor_key, cursor, updated_at) "
                                      "VALUES ('did:plc:me', 'x.y.z', '', 'old', CURRENT_TIMESTAMP)"))
    store = Store(engine=engine, auto_migrate=auto_migrate)
    async with store.transaction() as db:
        assert await CursorRepository(db).get("did:plc:me", "x.y.z", "") == "old"
    if auto_migrate:
        await migrate.upgrade(engine)
    else:
        await migrate.upgrade(engine)  # what `python -m pysky_async db upgrade` runs
    assert await migrate.current_revision(engine) == migrate.HEAD_REVISION
    assert await store.execute_sql("SELECT version_num FROM pysky_alembic_version") == [(migrate.HEAD_REVISION,)]
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: c.dialect.get_table_names(c))
    assert "alembic_version" not in tables, "0.1's version table (ours alone) is retired"
    await engine.dispose()


async def test_two_processes_saving_the_first_cursor_and_profile_do_not_race(pg_database_url: str) -> None:
    first = Store(pg_database_url, auto_migrate=True)
    await first.ensure_ready()
    second = Store(pg_database_url)

    async def save(store: Store, n: int) -> None:
        async with store.transaction() as db:
            await OAuthSessionRepository(db).save(f"did:plc:p{n}", handle=f"p{n}.test", pds_endpoint="https://pds.test",
                                                  issuer="https://pds.test", client_id="https://app.test/c.json",
                                                  scope="atproto", access_token="a", refresh_token="r", dpop_key="k")
            await CursorRepository(db).save("did:plc:me", "x.y.z", f"key{n}", f"cursor{n}")
            await ProfileRepository(db).upsert(f"did:plc:p{n}", handle=f"p{n}.test", display_name="P")
            await SessionRepository(db).save(f"account{n}", did=f"did:plc:p{n}", handle=f"p{n}.test",
                                             pds_endpoint="https://pds.test", access_jwt="a", refresh_jwt="r")

    results = await asyncio.gather(*(save(store, n) for n in range(40) for store in (first, second)),
                                   return_exceptions=True)
    assert [r for r in results if r is not None] == []
    assert await first.execute_sql("SELECT count(*) FROM bsky_cursor") == [(40,)]
    assert await first.execute_sql("SELECT count(*) FROM bsky_user_profile") == [(40,)]
    assert await first.execute_sql("SELECT min(version), max(version) FROM bsky_session") == [(2, 2)]
    assert await first.execute_sql("SELECT min(version), max(version) FROM bsky_oauth_session") == [(2, 2)]
    await first.aclose()
    await second.aclose()


def test_the_pg_fallback_says_which_database_it_picked(caplog: pytest.LogCaptureFixture) -> None:
    env = {"PGHOST": "db.internal", "PGPORT": "6543", "PGDATABASE": "app", "PGUSER": "bot", "PGPASSWORD": "s3cret"}
    with caplog.at_level(logging.INFO, logger="pysky_async"):
        url = resolve_database_url(None, env)
    assert url.startswith("postgresql+asyncpg://bot:s3cret@db.internal:6543/app")
    [message] = [r.getMessage() for r in caplog.records if "PG" in r.getMessage()]
    assert "db.internal:6543/app" in message and "bot" in message
    assert "s3cret" not in message


async def test_the_schema_upgrade_compiles_its_scripts_off_the_event_loop(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing alembic and compiling the migrations took ~0.1 s on the loop (measured by
    benchmarks/bench_storage_reliability.py); they now load in a worker thread."""
    threads: list[str] = []
    original = migrate.load_scripts

    def recording() -> None:
        threads.append(threading.current_thread().name)
        original()

    monkeypatch.setattr(migrate, "load_scripts", recording)
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3")
    await store.ensure_ready()
    assert await migrate.current_revision(store.engine) == migrate.HEAD_REVISION
    assert len(threads) == 1 and threads[0] != threading.main_thread().name
    await store.aclose()
