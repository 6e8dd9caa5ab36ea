"""Rows inserted with the cursor: ``ctx.insert_on_commit(table, row)``, run as one multi-row
``INSERT`` per table and commit instead of a statement per event.

A ``RowInsert`` is on-commit work like any other (awaited alone, it inserts its row), so the
cursor stores and the rev guard keep their contract; ``run_work`` runs a commit's work in order,
folding each run of consecutive inserts into the same table into one ``executemany``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from .watermark import OnCommit


class RowInsert:
    """Insert ``values`` into ``table`` (a SQLAlchemy ``Table`` or mapped class) on commit."""

    __slots__ = ("table", "values")

    def __init__(self, table: Any, values: Mapping[str, Any]) -> None:
        self.table = table
        self.values = values

    async def __call__(self, session: AsyncSession) -> None:
        await session.execute(insert(self.table), [dict(self.values)])


async def run_work(session: AsyncSession, work: Sequence[OnCommit]) -> None:
    """Run ``work`` in order in ``session``; consecutive ``RowInsert``s into one table go as one statement."""
    table: Any = None
    rows: list[Mapping[str, Any]] = []
    for each in work:
        if isinstance(each, RowInsert):
            if rows and each.table is not table:
                await session.execute(insert(table), rows)
                rows = []
            table = each.table
            rows.append(each.values)
            continue
        if rows:
            await session.execute(insert(table), rows)
            rows = []
        await each(session)
    if rows:
        await session.execute(insert(table), rows)
