"""How the example web apps answer pysky_async errors: never a 500 for something the user did.

    unknown actor, no such record           -> 404
    bad input (too long, bad handle ...)    -> 422
    write budget or rate limit spent        -> 429 with Retry-After
    Bluesky unreachable or failing          -> 503 with Retry-After
"""

from __future__ import annotations

import math

from pysky_async import (
    IdentityNotFound,
    InvalidInput,
    NetworkError,
    PyskyError,
    RateLimitExceeded,
    RecordNotFound,
    ServerError,
    UpstreamFailure,
    WriteBudgetExhausted,
)


def http_error(exc: PyskyError) -> tuple[int, dict[str, str]]:
    """The HTTP status and headers a web app should answer ``exc`` with."""
    if isinstance(exc, (IdentityNotFound, RecordNotFound)):
        return 404, {}
    if isinstance(exc, InvalidInput):
        return 422, {}
    if isinstance(exc, (WriteBudgetExhausted, RateLimitExceeded)):
        return 429, {"Retry-After": str(math.ceil(exc.retry_after or 60))}
    if isinstance(exc, (NetworkError, UpstreamFailure, ServerError)):
        return 503, {"Retry-After": "30"}
    return 502, {}  # any other answer of the upstream: a bad gateway, not our bug
