"""What differs between the supported Pythons (3.10 to 3.13) and the library must handle itself.
These run in every ``nox -s fast-3.x`` session; on 3.11+ they pass trivially where the difference
is gone."""

from __future__ import annotations

import asyncio

from pysky_async._storage.store import is_database_error


def test_asyncio_timeout_from_a_driver_is_a_database_error() -> None:
    """Before 3.11 ``asyncio.TimeoutError`` is not the builtin ``TimeoutError``: asyncpg's connect
    timeout raises it, and it must become a StorageError like any other database failure instead of
    leaving the library as itself."""
    assert is_database_error(asyncio.TimeoutError())
    assert is_database_error(TimeoutError())
