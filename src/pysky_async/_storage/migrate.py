"""Alembic, driven from code: find the migrations (installed wheel or source tree) and run them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .repositories import advisory_key

HEAD_REVISION = "0012_postgresql_storage"
"""The newest migration; a test checks it is alembic's head."""
VERSION_TABLE = "pysky_alembic_version"
"""Our own alembic version table, so a host application's ``alembic_version`` is left alone."""
_LEGACY_VERSION_TABLE = "alembic_version"  # 0.1 kept its revision there
_REVISIONS = frozenset({"0001", "0002", "0003_oauth", "0004_refresh_lease", "0005_login_cookie", "0006_repo_sync",
                        "0007_repo_revs", "0008_notifications", "0009_consumer_groups", "0010_crawl_jobs",
                        "0011_crawl_enumerated", "0012_postgresql_storage"})
"""Every revision of ours (a test checks the list against the scripts)."""


def migrations_dir() -> Path:
    """The alembic script directory: inside the wheel, else the source tree's ``migrations/``."""
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if (packaged / "env.py").is_file():
        return packaged
    source = Path(__file__).resolve().parents[3] / "migrations"
    if (source / "env.py").is_file():
        return source
    raise FileNotFoundError("pysky_async's migrations are missing from this installation")


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _current_revision(connection: Connection) -> str | None:
    if inspect(connection).has_table(VERSION_TABLE):
        return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return _legacy_revision(connection)


def _legacy_revision(connection: Connection) -> str | None:
    """The revision a 0.1 database recorded in ``alembic_version`` (None if it is not ours)."""
    inspector = inspect(connection)
    if not (inspector.has_table(_LEGACY_VERSION_TABLE) and inspector.has_table("bsky_session")):
        return None
    revisions = connection.execute(text(f"SELECT version_num FROM {_LEGACY_VERSION_TABLE}")).scalars()
    ours = [revision for revision in revisions if revision in _REVISIONS]
    return ours[0] if ours else None


def _adopt_legacy(connection: Connection) -> None:
    """Move a 0.1 database's revision from ``alembic_version`` into our own table, dropping
    ``alembic_version`` if nothing else is left in it."""
    if inspect(connection).has_table(VERSION_TABLE):
        return
    revision = _legacy_revision(connection)
    if revision is None:
        return
    connection.execute(text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
                            f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"))
    connection.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:revision)"), {"revision": revision})
    connection.execute(text(f"DELETE FROM {_LEGACY_VERSION_TABLE} WHERE version_num = :revision"),
                       {"revision": revision})
    if connection.execute(text(f"SELECT count(*) FROM {_LEGACY_VERSION_TABLE}")).scalar() == 0:
        connection.execute(text(f"DROP TABLE {_LEGACY_VERSION_TABLE}"))


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await asyncio.to_thread(load_scripts)
    await _run(engine, "upgrade", revision)


def load_scripts() -> None:
    """Import alembic and compile the migration scripts (~0.1 s of CPU): run in a worker thread
    before an upgrade, so the event loop is not blocked by it."""
    from alembic import command  # noqa: F401
    from alembic.script import ScriptDirectory

    ScriptDirectory.from_config(alembic_config()).get_current_head()


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, "downgrade", revision)


async def _run(engine: AsyncEngine, command_name: str, revision: str) -> None:
    from alembic import command

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # processes starting together must not migrate the same database at once
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key("pysky_async:migrate")})
        _adopt_legacy(connection)
        config = alembic_config()
        config.attributes["connection"] = connection
        getattr(command, command_name)(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
