"""A PostgreSQL server of the test's own that can be stopped and started again on its port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..realnet.postgres import PostgresServer, find_pg_bindir


class OwnPostgres:
    """Wraps a PostgresServer: ``down()`` stops it (fast shutdown: clients see their
    connections dropped), ``up()`` starts it again with its data and port."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def url(self, name: str) -> str:
        return self.server.create_database(name)

    def down(self) -> None:
        self.server._run([str(self.server.bindir / "pg_ctl"), "-D", str(self.server.data_dir), "-m", "fast",
                          "-w", "stop"], what="pg_ctl stop")

    def up(self) -> None:
        self.server._pg_ctl_start()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A PostgreSQL server for one test only (others share theirs and must not see it stop)."""
    if find_pg_bindir() is None:
        pytest.fail("PostgreSQL server binaries not found (apt-get install postgresql)")
    server = PostgresServer.start()
    try:
        yield OwnPostgres(server)
    finally:
        server.stop()
