"""Alembic, driven from code: find the migrations (installed wheel or source tree) and run them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .repositories import advisory_key

HEAD_REVISION = "0002"
"""The newest migration; a test checks it is alembic's head."""


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
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, "downgrade", revision)


async def _run(engine: AsyncEngine, command_name: str, revision: str) -> None:
    from alembic import command

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # processes starting together must not migrate the same database at once
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key("pysky_async:migrate")})
        config = alembic_config()
        config.attributes["connection"] = connection
        getattr(command, command_name)(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
