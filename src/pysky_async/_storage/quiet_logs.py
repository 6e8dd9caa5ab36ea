"""No stored value reaches a log line: the database loggers never show what goes in or comes out.

Without an ``encryption_key`` OAuth refresh tokens, DPoP private keys and PKCE verifiers are
stored as they are, and app-password sessions always are. Rather than knowing which values are
secret, the loggers that could show stored values are stripped of every value before any
handler sees a line:

- ``aiosqlite`` logs each operation with its arguments (the SQL and all its parameters): only
  the operation's name is kept (``executing Cursor.execute``);
- SQLAlchemy's engine logger keeps its SQL, column names and counts, never parameters (also
  for an engine the application made without ``hide_parameters``) nor result rows.

JWT-looking text left in a line is redacted as well, as a second line of defence.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from .._redact import redact_text

HIDDEN = "[hidden by pysky_async: may hold secrets]"

# SQLAlchemy line templates whose arguments are safe to show (no stored value in them)
_SAFE_TEMPLATES = ("Col %r", "[%s] [SQL parameters hidden due to hide_parameters=True]")


def _describe(value: Any) -> str:
    """A value of an aiosqlite line, named instead of shown."""
    if isinstance(value, functools.partial):
        value = value.func
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {redact_text(str(value))}"
    name = getattr(value, "__qualname__", None)
    return name if isinstance(name, str) else type(value).__name__


def _format(record: logging.LogRecord, args: tuple[Any, ...]) -> str:
    try:
        return str(record.msg) % args
    except (TypeError, ValueError):
        return f"{record.msg} {HIDDEN}"


class _HideStoredValues(logging.Filter):
    """Rewrites the record itself, so no handler, formatter or ``record.args`` shows a value."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else (() if record.args is None else (record.args,))
        if record.name == "aiosqlite" or record.name.startswith("aiosqlite."):
            message = _format(record, tuple(_describe(arg) for arg in args))
        elif args and not str(record.msg).endswith(_SAFE_TEMPLATES):
            message = _format(record, tuple(arg if isinstance(arg, (int, float)) else HIDDEN for arg in args))
        else:
            message = record.getMessage()
        record.msg, record.args = redact_text(message), None
        if record.exc_info is not None or record.exc_text:
            # a driver error's text may quote a row; the type and a redacted message are enough
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                record.msg = f"{record.msg} ({_describe(exc)})"
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = _HideStoredValues()


def _install(logger: logging.Logger) -> None:
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def hide_stored_values(engine_logger: Any) -> None:
    """Guard aiosqlite's logger and the logger ``engine_logger`` (an engine's ``.logger``: a
    ``logging.Logger`` or SQLAlchemy's echo wrapper around one) writes to."""
    _install(logging.getLogger("aiosqlite"))
    _install(logging.getLogger("sqlalchemy.engine.Engine"))
    real = getattr(engine_logger, "logger", engine_logger)
    if isinstance(real, logging.Logger):
        _install(real)
