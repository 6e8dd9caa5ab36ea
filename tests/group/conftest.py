"""The group tests' database: a migrated store on a fresh PostgreSQL database, and the ``effect`` table
the handlers of ``test_group_pg`` and ``test_group_handover`` write (``test_group_sqlite`` uses none of it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pysky_async._storage.store import Store


@pytest.fixture
async def store(pg_database_url: str) -> AsyncIterator[Store]:
    store = Store(pg_database_url, auto_migrate=True)
    await store.ensure_ready()
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def effect_table(store: Store) -> None:
    """The table the handlers write one row per event to: a duplicate seq fails the commit."""
    await store.execute_sql("CREATE TABLE effect (seq bigint PRIMARY KEY, did text NOT NULL, worker text NOT NULL)")
