"""Why a request got no answer, said for people: host, port and the reason, never a repr of
the HTTP library's internals (aiohttp's ``ConnectionKey(...)``)."""

from __future__ import annotations

import os


def failure_reason(exc: BaseException) -> str:
    """``"cannot connect to 127.0.0.1 port 8080: Connection refused"``, ``"the server closed the
    connection"``..., for an exception raised by aiohttp, httpx or the socket layer."""
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    os_error = getattr(exc, "os_error", None)
    if host is not None and isinstance(os_error, OSError):
        cause = (os.strerror(os_error.errno) if os_error.errno else os_error.strerror) or str(os_error) \
            or type(os_error).__name__
        if type(exc).__name__ == "ClientConnectorDNSError" or "name resolution" in cause.lower():
            return f"cannot resolve the host name {host!r}: {cause}"
        return f"cannot connect to {host} port {port}: {cause}"
    if isinstance(exc, OSError) and (exc.errno or exc.strerror):
        return os.strerror(exc.errno) if exc.errno else str(exc.strerror)
    name = type(exc).__name__
    if name == "ServerDisconnectedError":
        return "the server closed the connection without answering"
    text = str(exc)
    return f"{name}: {text}" if text else name
