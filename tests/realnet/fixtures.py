"""pytest plugin: real servers for tests (reference AT Protocol PDS, PostgreSQL).

Enable it from the top-level conftest: ``pytest_plugins = ["tests.realnet.fixtures"]``.

Fixtures
--------
session scope (started on first use, stopped at the end of the session):
    pds              -> PdsServer, default token lifetimes (access 120 min, refresh 90 days)
    pds_short_ttl    -> PdsServer, access tokens live 3 s (refresh: default)
    postgres_server  -> PostgresServer
function scope:
    pds_account        -> Account (handle "u<hex>.test", random password) on ``pds``
    short_ttl_account  -> Account on ``pds_short_ttl``
    pg_database_url    -> "postgresql+asyncpg://postgres@127.0.0.1:<port>/<fresh db>", dropped after

Tests using any of these are marked ``realnet`` automatically (``pytest -m "not realnet"``
for a quick run).

Availability: if node/npm (needed to install the PDS) or the PostgreSQL server binaries are
missing, the tests that need them are skipped with the reason -- unless
``PYSKY_REQUIRE_REALNET=1`` (set by .ci/run), which turns that into a failure. Any error while
installing or starting a server that *is* available is a failure, never a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest

from .pds import Account, PdsServer, realnet_dir
from .postgres import PostgresServer, find_pg_bindir

REALNET_FIXTURES = frozenset(
    {"pds", "pds_short_ttl", "postgres_server", "pds_account", "short_ttl_account",
     "pg_database_url"}
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realnet: uses a real server (reference PDS or PostgreSQL) from tests/realnet"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REALNET_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realnet)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("PYSKY_REQUIRE_REALNET") == "1":
        pytest.fail(f"{reason} (PYSKY_REQUIRE_REALNET=1, so this is a failure)", pytrace=False)
    pytest.skip(reason)


def _require_node() -> None:
    installed = (realnet_dir() / ".installed").is_file()
    if installed:
        return
    missing = [exe for exe in ("node", "npm") if shutil.which(exe) is None]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not found on PATH: needed once to install the reference "
            f"PDS into {realnet_dir()} (see tests/realnet/install-pds.sh)"
        )


def _require_postgres() -> None:
    if find_pg_bindir() is None:
        _unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found "
            "(apt-get install postgresql, or set PYSKY_PG_BINDIR)"
        )


def _start_pds(access_ttl: str | None = None) -> PdsServer:
    _require_node()
    return PdsServer.start(access_ttl=access_ttl)  # errors propagate: a failure, not a skip


@pytest.fixture(scope="session")
def pds() -> Iterator[PdsServer]:
    """The reference PDS (+ in-memory PLC) with default token lifetimes."""
    server = _start_pds()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pds_short_ttl() -> Iterator[PdsServer]:
    """A separate reference PDS whose access tokens expire after 3 s (refresh: default)."""
    server = _start_pds(access_ttl="3s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (trust auth, fsync off) on a free 127.0.0.1 port."""
    _require_postgres()
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database for this test: ``postgresql+asyncpg://...``; dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


def _new_account(server: PdsServer) -> Account:
    return server.create_account(f"u{secrets.token_hex(5)}.test", secrets.token_urlsafe(12))


@pytest.fixture
def pds_account(pds: PdsServer) -> Account:
    """A fresh account on ``pds``."""
    return _new_account(pds)


@pytest.fixture
def short_ttl_account(pds_short_ttl: PdsServer) -> Account:
    """A fresh account on ``pds_short_ttl``."""
    return _new_account(pds_short_ttl)
