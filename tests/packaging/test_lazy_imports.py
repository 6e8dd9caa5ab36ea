"""Importing the package and its client class loads neither SQLAlchemy nor aiohttp (nor regex): they are
loaded on first use (a client's store, the fast transport), so an import stays cheap
(benchmarks/bench_import.py measures the time; this checks the cause, without timing)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "aiohttp", "alembic", "asyncpg", "aiosqlite", "regex")  # regex: rich text, on first post

CHECK = """
import json, sys
{statement}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def loaded_after(statement: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", CHECK.format(statement=statement)], capture_output=True,
                            text=True, check=True)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement", ["import pysky_async", "from pysky_async import AsyncBskyClient"])
def test_import_loads_no_database_or_aiohttp_stack(statement: str) -> None:
    loaded = loaded_after(statement)
    assert "pysky_async" in loaded
    assert sorted(loaded.intersection(HEAVY)) == []


def test_a_client_loads_its_storage_stack_on_first_use() -> None:
    """The check above is not vacuous: the same probe sees SQLAlchemy once a client exists."""
    loaded = loaded_after("from pysky_async import AsyncBskyClient\nAsyncBskyClient(database_url=':memory:')")
    assert "sqlalchemy" in loaded
