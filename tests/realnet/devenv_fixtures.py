"""pytest plugin: a real Bluesky AppView (``@atproto/dev-env``: PLC, PDS, bsky AppView, ozone).

Enable it from the top-level conftest, after ``tests.realnet.fixtures`` (whose
``postgres_server`` fixture it uses)::

    pytest_plugins = ["tests.realnet.fixtures", "tests.realnet.devenv_fixtures"]

Fixtures
--------
session scope (started on first use, stopped at the end of the session):
    devenv  -> DevEnv on its own fresh database of ``postgres_server`` (dropped afterwards)

Tests using it are marked ``realnet`` and ``appview`` automatically (``pytest -m "not appview"``
skips the ~20 s dev-env start).

Availability (same policy as tests/realnet/fixtures.py): if node/npm (needed once to install
dev-env) or the PostgreSQL server binaries are missing, the tests are skipped with the reason --
unless ``PYSKY_REQUIRE_REALNET=1`` (set by .ci/run), which turns that into a failure. Any error
while installing or starting dev-env when they *are* available is a failure, never a skip.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator

import pytest

from .devenv import DevEnv, devenv_installed
from .fixtures import _unavailable  # the same skip-or-fail policy
from .pds import realnet_dir
from .postgres import PostgresServer, find_pg_bindir

DEVENV_FIXTURES = frozenset({"devenv"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "appview: uses the real bsky AppView (@atproto/dev-env) from tests/realnet"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DEVENV_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realnet)
            item.add_marker(pytest.mark.appview)


def _require_node() -> None:
    if devenv_installed():
        return
    missing = [exe for exe in ("node", "npm") if shutil.which(exe) is None]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not found on PATH: needed once to install @atproto/dev-env "
            f"into {realnet_dir()} (see tests/realnet/install-devenv.sh)"
        )


@pytest.fixture(scope="session")
def devenv(request: pytest.FixtureRequest) -> Iterator[DevEnv]:
    """PLC + PDS + bsky AppView + ozone (dev-env) on a fresh database of ``postgres_server``."""
    _require_node()
    if find_pg_bindir() is None:
        _unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found "
            "(apt-get install postgresql, or set PYSKY_PG_BINDIR): the AppView needs them"
        )
    postgres_server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"devenv_{secrets.token_hex(4)}"
    url = postgres_server.create_database(name)
    try:
        env = DevEnv.start(url)  # errors propagate: a failure, not a skip
        try:
            yield env
        finally:
            env.stop()
    finally:
        postgres_server.drop_database(name)
