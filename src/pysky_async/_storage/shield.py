"""Database work that a cancelled caller cannot interrupt half-way.

A cancellation delivered inside SQLAlchemy while a statement runs makes it treat the
connection as broken and close it mid-transaction; on SQLite the closed connection can
linger with its write lock ("database is locked" for every later write). So every database
operation of a unit of work runs to its end in its own task, and the caller's cancellation is
raised once it has finished — between statements, where a rollback is clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

T = TypeVar("T")


async def finish(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to completion in its own task; a cancellation of the caller that
    arrives meanwhile is re-raised afterwards."""
    task = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                break
            cancelled = exc
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved; the caller's cancellation is what it sees
        raise cancelled
    return task.result()


class ShieldedSession(AsyncSession):
    """An AsyncSession whose I/O methods each run to completion despite cancellation."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().execute(*args, **kwargs))

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().scalar(*args, **kwargs))

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().scalars(*args, **kwargs))

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().get(*args, **kwargs))

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        await finish(super().flush(*args, **kwargs))

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        await finish(super().delete(*args, **kwargs))

    async def refresh(self, *args: Any, **kwargs: Any) -> None:
        await finish(super().refresh(*args, **kwargs))


class ShieldedConnection(AsyncConnection):
    """An AsyncConnection whose statements each run to completion despite cancellation."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().execute(*args, **kwargs))

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().scalar(*args, **kwargs))

    async def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().exec_driver_sql(*args, **kwargs))

    async def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        return await finish(super().run_sync(*args, **kwargs))
