"""What the Store tells about its database: the truth about a failure, once, at the right level.

- unreachable (server down, connection dropped): one WARNING when it starts (nothing is lost:
  call-log rows wait in memory), one INFO when the database works again;
- an SQLite file deleted (or replaced) under the running program: one ERROR, and no more writes
  into the unlinked file, where they would be lost silently;
- read-only or unopenable SQLite files: an error message that says so, not "is it running?".

Whatever is actually lost (rows dropped past the cap, or still queued at close) is logged at
ERROR by the call log itself.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.engine import URL

from .._exceptions import StorageError

logger = logging.getLogger("pysky_async")


def sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL opens (also ``file:...?uri=true``); None for memory or a server."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database.startswith("file:"):
        if url.query.get("mode") == "memory":
            return None
        database = database[len("file:"):].split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser()


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_unreachable(exc: BaseException) -> bool:
    """A connection that could not be made or was lost (as opposed to an error in the SQL)."""
    return any(isinstance(e, (OSError, TimeoutError)) or getattr(e, "connection_invalidated", False)
               or (type(e).__name__ in ("ConnectionDoesNotExistError", "CannotConnectNowError",
                                        "ConnectionFailureError")
                   and type(e).__module__.startswith("asyncpg"))
               for e in _chain(exc))


def _is_read_only(exc: BaseException) -> bool:
    return "readonly database" in str(exc) or "read-only" in str(exc)


def explain(exc: BaseException, url: URL) -> str:
    """What went wrong and what to do, for a database error's message."""
    path = sqlite_file(url)
    if path is not None and _is_read_only(exc):
        return (f" (the SQLite file {path} is read-only: check the permissions of the file and of its "
                "directory, where SQLite writes its -wal and -shm files, or choose another file with "
                "database_url= or PYSKY_DATABASE_URL)")
    if path is not None and "unable to open database file" in str(exc):
        return (f" (the SQLite file {path} cannot be opened: check that its directory exists and that this "
                "user may write there, or choose another file with database_url= or PYSKY_DATABASE_URL)")
    if is_unreachable(exc):
        return " (the database is unreachable: check that it is running; retry once it is back)"
    return ""


class DatabaseHealth:
    """Tracks whether the database works, and says so when that changes."""

    def __init__(self, url: URL) -> None:
        self.url = url.render_as_string(hide_password=True)
        self.file = sqlite_file(url)
        self._file_id: tuple[int, int] | None = None
        self._file_gone = False
        self._unreachable = False

    @property
    def reported(self) -> bool:
        """True while a failure has been told (an outage, a deleted file): others need not repeat it."""
        return self._unreachable or self._file_gone

    def _identity(self) -> tuple[int, int] | None:
        assert self.file is not None
        try:
            status = os.stat(self.file)
        except OSError:
            return None
        return status.st_dev, status.st_ino

    def check_file(self) -> None:
        """Before a unit of work: refuse to write into an SQLite file that was deleted or replaced
        (an open connection keeps writing into the unlinked file, and every row is lost)."""
        if self.file is None:
            return
        now = self._identity()
        if self._file_id is None:  # the first unit of work: the file the connections opened
            self._file_id = now
            return
        if now == self._file_id:
            if self._file_gone:
                self._file_gone = False
                logger.info("the SQLite file %s is back; writing to it again", self.file)
            return
        message = (f"the SQLite file {self.file} was deleted (or replaced) while this program was using it: "
                   "rows written now would be going nowhere, so nothing more is written. Restore the file, "
                   "or restart the program to start a new database there (what the deleted file held, "
                   "stored sessions included, is gone); until then call-log rows wait in memory and "
                   "database work raises StorageError")
        if not self._file_gone:
            self._file_gone = True
            logger.error("%s", message)
        raise StorageError(message)

    def failed(self, exc: BaseException) -> None:
        if is_unreachable(exc) and not self._unreachable:
            self._unreachable = True
            logger.warning("the database %s is unreachable (%s). Call-log rows are kept in memory and written "
                           "once it is back (retried every few seconds; past call_log_max_pending rows the "
                           "oldest are dropped, logged as an ERROR); work that needs the database (logins, "
                           "the write budget, cursors) raises StorageError until then", self.url, _first_line(exc))

    def worked(self) -> None:
        if self._unreachable:
            self._unreachable = False
            logger.info("the database %s is reachable again", self.url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
