"""The typed per-call context: what the middlewares of one call tell each other.

One ``CallContext`` travels with a call through every attempt; ``request.replace`` keeps it.
Each field has one writer (named below) and any number of readers, so middlewares depend on
named, typed fields instead of on each other's dictionary keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CallContext:
    """Per-call notes. Not sent.

    Attributes:
        did: the account the call is made as (set by the session middleware).
        idempotent: a write that may be repeated safely (set by the caller; read by retry).
        resume: send the saved cursor when the request has none (set by the paginator).
        cursor_key: separates saved cursors sharing an endpoint (set by the caller).
        first_cursor: the cursor of a resumed run's first page when none is saved.
        cursor_passed: the saved cursor the cursor middleware sent.
        write_points: the write points this call spent (set by the write budget).
        session_was_refreshed: the token was refreshed and the call replayed (session).
        send_again: send the call once more through the whole chain, so the new attempt has its
            own call-log row (set by the session after a refresh; read by the pipeline).
        forgotten_did: the account DID the server no longer knew (AccountNotFound); the session's
            replay sends the renewed session's DID as ``repo`` instead (set and read by the session).
        attempt: 1 for the first attempt, 2 for the first retry... (set by retry).
        url: the URL of the last attempt, without the query (set by the transport).
        sent: this attempt reached the transport, so the server may have received it (set by the
            transport; the write budget keeps the points of a cancelled write that was sent).
        timeout: seconds (or an ``httpx.Timeout``) for this call instead of the client's.
        deadline: seconds for the whole call (every attempt, back-off and refresh) instead of the
            client's ``deadline``.
        expires_at: the event-loop time by which the whole call must be done (set by ``Xrpc``;
            read by retry, which does not start a back-off sleep that would pass it).
        deadline_scope: the call's running ``CallDeadline`` (set by ``Xrpc``; a deliberate wait,
            such as the write budget's, pauses it with ``NotCounted``).
        upload_size: the size of a streamed request body (it extends the deadline, as a bytes body does).
        max_response_bytes: the largest answer this call reads instead of the client's (``get_blob``).
        log_errors_at_once: write an error's call-log row before returning it so it carries
            ``log_id``; off for the session's own calls, made while a database lock is held.
        elapsed_us: how long the last attempt took, in microseconds (set by the call log).
        sni_hostname: the host name for TLS (and its certificate check) when the request's URL
            names an IP address the caller checked and pinned (set by the identity resolver for
            did:web; read by the transport).
    """

    did: str | None = None
    idempotent: bool = False
    resume: bool = False
    cursor_key: str | None = None
    first_cursor: str | None = None
    cursor_passed: str | None = None
    write_points: int = 0
    session_was_refreshed: bool = False
    send_again: bool = False
    forgotten_did: str | None = None
    attempt: int = 0
    url: str | None = None
    sent: bool = False
    timeout: Any = None
    deadline: float | None = None
    expires_at: float | None = None
    deadline_scope: Any = None
    upload_size: int = 0
    max_response_bytes: int | None = None
    log_errors_at_once: bool = True
    elapsed_us: int | None = None
    sni_hostname: str | None = None
