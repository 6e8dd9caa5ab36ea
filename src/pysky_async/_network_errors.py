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


class TransportFailure(Exception):
    """What the HTTP library said, as text: stands in for its exception when every link of that
    exception's chain carried the request (whose headers hold the token)."""


_CHAIN_LIMIT = 16


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(links) < _CHAIN_LIMIT and all(current is not seen for seen in links):
        links.append(current)
        current = current.__cause__ or current.__context__
    return links


def _carries_request(exc: BaseException) -> bool:
    """aiohttp's ClientResponseError holds ``request_info`` (every request header, Authorization
    included) and httpx's errors hold ``.request``: neither may travel in a pysky_async error."""
    import httpx

    return getattr(exc, "request_info", None) is not None or isinstance(exc, httpx.HTTPError)


def without_request(exc: BaseException) -> BaseException:
    """The cause to chain to a pysky_async error for ``exc``: the first link of its chain that
    holds no request (so no token); a ``TransportFailure`` with its text when every link does."""
    for link in _chain(exc):
        if not _carries_request(link):
            return link
    from ._redact import redact_text

    return TransportFailure(f"{type(exc).__name__}: {redact_text(str(exc))}")


def malformed_answer(exc: BaseException) -> str | None:
    """Why the server's answer was not valid HTTP (a header line over 8 KiB, a bad status line,
    a bad compressed body), or None when ``exc`` is a network failure. A malformed answer is a
    protocol error of the server (or a proxy), not a transient failure: it is not retried."""
    from ._redact import redact_text

    for link in _chain(exc):
        text = _parse_error_text(link)
        if text is not None:
            text = redact_text(text.split(": b'", 1)[0])[:160]  # aiohttp quotes the offending bytes
            return f"{type(link).__name__}: {text}" if text else type(link).__name__
    return None


def _parse_error_text(exc: BaseException) -> str | None:
    """The message of an HTTP parser's error about the answer's framing (None for anything else)."""
    kind = type(exc)
    if kind.__module__.startswith("aiohttp"):
        from aiohttp import http_exceptions as parse

        if isinstance(exc, parse.BadHttpMessage) and not isinstance(
                exc, (parse.TransferEncodingError, parse.ContentLengthError)):  # those: the server hung up
            return str(exc.message or "")
        return None
    if kind.__module__.startswith("h11") and kind.__name__ == "RemoteProtocolError" \
            and not str(exc).startswith("peer closed"):  # that one: the server hung up mid-answer
        return str(exc)
    return None
