"""Alembic environment for pysky_async (async engines; batch mode for SQLite)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from pysky_async._storage.migrate import VERSION_TABLE
from pysky_async._storage.models import Base
from pysky_async._storage.store import create_engine, resolve_database_url

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_engine(resolve_database_url(config.get_main_option("sqlalchemy.url")))
    async with engine.begin() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=resolve_database_url(config.get_main_option("sqlalchemy.url")),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    run_offline()
elif connection is not None:
    run_with(connection)
else:
    asyncio.run(run_online())
