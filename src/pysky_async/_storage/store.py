"""The Store: owns the async engine, hands out units of work, keeps the schema current."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from .._exceptions import StorageError
from . import migrate
from .health import DatabaseHealth, explain, is_unreachable, sqlite_file
from .quiet_logs import hide_stored_values
from .shield import ShieldedConnection, ShieldedSession, finish

logger = logging.getLogger("pysky_async")


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database or its driver (connection refused or reset,
    asyncpg and sqlite errors...), as opposed to a bug in the caller's code."""
    return (isinstance(exc, (SQLAlchemyError, OSError, TimeoutError, asyncio.TimeoutError, sqlite3.Error))
            or type(exc).__module__.split(".")[0] in ("asyncpg", "aiosqlite"))


def default_sqlite_path() -> Path:
    """Where the zero-configuration SQLite database lives (the user's data directory)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("pysky_async", appauthor=False)) / "pysky_async.sqlite3"


def resolve_database_url(database_url: str | None = None, env: os._Environ[str] | dict[str, str] | None = None) -> str:
    """The database to use: the argument, else PYSKY_DATABASE_URL, else the PG* variables
    (asyncpg), else BSKY_SQLITE_FILENAME, else an SQLite file in the user's data directory."""
    env = os.environ if env is None else env
    if database_url:
        return sqlite_url(database_url) if database_url == ":memory:" else database_url
    if env.get("PYSKY_DATABASE_URL"):
        return env["PYSKY_DATABASE_URL"]
    if env.get("PGHOST") or env.get("PGDATABASE"):
        port = env.get("PGPORT")
        url = URL.create(
            "postgresql+asyncpg",
            username=env.get("PGUSER") or None,
            password=env.get("PGPASSWORD") or None,
            host=env.get("PGHOST") or None,
            port=int(port) if port else None,
            database=env.get("PGDATABASE") or None,
        )
        logger.info("database from the PG* environment variables: %s", url.render_as_string(hide_password=True))
        return url.render_as_string(hide_password=False)
    filename = env.get("BSKY_SQLITE_FILENAME")
    if filename:
        return sqlite_url(filename)
    path = default_sqlite_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # the file holds login tokens: only its owner may enter the directory or read it
    path.parent.chmod(0o700)
    for existing in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if existing.exists():
            existing.chmod(0o600)
    return sqlite_url(str(path))


def sqlite_url(filename: str) -> str:
    if filename == ":memory:":
        return "sqlite+aiosqlite:///:memory:"
    return f"sqlite+aiosqlite:///{Path(filename).expanduser()}"


def create_engine(url: str) -> AsyncEngine:
    """An async engine set up for concurrent use (WAL and BEGIN IMMEDIATE on SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_pre_ping=True, hide_parameters=True)
        # an INSERT of many rows (the call log's flush, ctx.insert_on_commit's rows) goes as multi-row
        # VALUES statements of up to 1,000 rows ("insertmanyvalues"), as psycopg's dialect does, not as
        # one statement executed per row (asyncpg's executemany): far less work for PostgreSQL
        engine.dialect.use_insertmanyvalues_wo_returning = True
        return engine
    path = sqlite_file(parsed)
    in_memory = path is None
    if path is not None and parsed.query.get("mode") != "ro" and _create_private(path) \
            and path == default_sqlite_path():
        # a WARNING, once: with no logging set up Python still shows it, and users learn where
        # their sessions live (INFO went unseen); later starts find the file and say nothing
        logger.warning("pysky_async created its database %s: sessions (login tokens) and the call log "
                       "are kept there. Set PYSKY_DATABASE_URL (or database_url=) to use another one; "
                       "`pysky-async db path` prints the one in use", path)
    kwargs: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs)
    _configure_sqlite(engine, wal=not in_memory)
    return engine


def _create_private(path: Path) -> bool:
    """Create a missing database file readable by its owner only (SQLite gives its -wal and
    -shm files the same mode); True if it was created now."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise StorageError(f"cannot create the SQLite file {path}: {exc}") from exc


def _configure_sqlite(engine: AsyncEngine, *, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control from the driver so BEGIN IMMEDIATE is ours to emit
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        if wal:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
            except Exception as exc:
                # another process is switching the new file to WAL right now; the mode is
                # stored in the file, so this connection gets it anyway
                if "locked" not in str(exc):
                    raise
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # a write lock from the start: read-then-write units of work are serialised
        # across processes instead of failing with "database is locked" on upgrade
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def _release(db: AsyncSession | AsyncConnection) -> None:
    """Roll back what is left and return the connection; one that cannot roll back is discarded."""
    try:
        await db.close()
    except Exception as exc:
        if is_unreachable(exc):  # the connection is gone, and its transaction with it: nothing to tell
            logger.debug("a lost database connection could not be rolled back; discarding it: %s", exc)
        else:
            logger.warning("a database connection could not be rolled back; discarding it", exc_info=True)
        await db.invalidate()


class Store:
    """The database behind a client: engine, units of work, schema upgrades.

    Nothing it stores reaches a log line (``quiet_logs``); an outage, a deleted SQLite file or
    a read-only one is told once, with what to do (``health``).

    Args:
        url: any SQLAlchemy async URL (``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``).
        engine: an engine to use instead (left open on ``aclose``).
        auto_migrate: upgrade the schema on first use; default: on for SQLite, off elsewhere
            (run ``python -m pysky_async db upgrade`` for PostgreSQL).
    """

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None,
                 auto_migrate: bool | None = None) -> None:
        if engine is None:
            engine = create_engine(resolve_database_url(url))
            self._owns_engine = True
        else:
            self._owns_engine = False
        hide_stored_values(engine.sync_engine.logger)
        self.engine = engine
        self.dialect = engine.dialect.name
        self.auto_migrate = self.dialect == "sqlite" if auto_migrate is None else auto_migrate
        self._sessions = async_sessionmaker(engine, class_=ShieldedSession, expire_on_commit=False)
        # SQLite has one writer at a time; serialise in-process units of work instead of
        # letting them queue on the file lock (and share the one in-memory connection)
        self._serial = asyncio.Lock() if self.dialect == "sqlite" else None
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self.needs_upgrade = False
        """True once ``ensure_ready`` found the schema behind and may not upgrade it itself."""
        self.health = DatabaseHealth(engine.url)

    async def ensure_ready(self) -> None:
        """Check (or, with auto_migrate, bring) the schema to the current version, once."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            try:
                current = await migrate.current_revision(self.engine)
                if current != migrate.HEAD_REVISION:
                    if not self.auto_migrate:
                        self.needs_upgrade = True
                        raise StorageError(self._upgrade_needed(current))
                    await migrate.upgrade(self.engine)
                self.needs_upgrade = False
            except Exception as exc:
                if not is_database_error(exc):
                    raise
                self.health.failed(exc)
                raise StorageError(f"could not open the database {self.health.url}: {exc}"
                                   f"{explain(exc, self.engine.url)}") from exc
            self._ready = True

    def _upgrade_needed(self, current: str | None) -> str:
        state = f"is at revision {current}" if current else "has no pysky_async tables yet"
        url = self.engine.url.render_as_string(hide_password=True)
        password = " (with the real password for ***)" if self.engine.url.password else ""
        return (f"the database {url} {state} (this version needs {migrate.HEAD_REVISION}): run "
                f"`pysky-async --database-url '{url}' db upgrade`{password} first, or pass "
                "auto_migrate=True. Nothing was sent or stored")

    @contextlib.asynccontextmanager
    async def _guarded(self) -> AsyncIterator[None]:
        """Schema ready, SQLite work serialised, SQLAlchemy errors turned into StorageError."""
        await self.ensure_ready()
        async with self._serial if self._serial is not None else contextlib.nullcontext():
            self.health.check_file()
            try:
                yield
            except Exception as exc:
                if not is_database_error(exc):
                    raise
                self.health.failed(exc)
                raise StorageError(f"database error: {exc}{explain(exc, self.engine.url)}") from exc
            self.health.worked()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on success, rolls back on error; errors become StorageError.

        Once started it commits or rolls back even if the caller is cancelled, and its
        connection goes back to the pool only outside a transaction.
        """
        async with self._guarded():
            session = self._sessions()
            try:
                yield session
                await finish(session.commit())
            finally:
                await finish(_release(session))

    @contextlib.asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A lighter unit of work on a Core connection (no ORM session), for bulk inserts."""
        async with self._guarded():
            connection = await finish(ShieldedConnection(self.engine).start())
            try:
                yield connection
                await finish(connection.commit())
            finally:
                await finish(_release(connection))

    async def execute_sql(self, sql: str) -> list[Any]:
        """Run raw SQL and return the rows (for tests and the command line)."""
        async with self.transaction() as session:
            result = await session.execute(text(sql))
            return list(result.all()) if result.returns_rows else []  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Close the engine's connections (an engine passed in is left open)."""
        if self._owns_engine:
            try:
                await self.engine.dispose()
            except Exception as exc:
                if not is_database_error(exc):
                    raise
                logger.warning("closing the database connections failed: %s", exc)
