"""Server rate limits as the client sees them, and a client-side request limiter.

``RateLimitTracker`` reads ``RateLimit-Limit/Remaining/Reset/Policy`` from every response
(``bsky.rate_limits[host][policy]``). ``RequestLimiter`` keeps one process under a number of
requests per window (Bluesky: 3,000 per 5 minutes per IP) by waiting before sending.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ._deadline import NotCounted
from ._middleware import RATE_LIMITS, REQUEST_LIMIT, Handler
from ._request import XrpcRequest
from ._response import XrpcResponse


@dataclass(frozen=True)
class RateLimit:
    """The latest rate-limit state a server reported for one policy."""

    limit: int
    remaining: int
    reset_at: dt.datetime
    policy: str
    window_seconds: int | None
    endpoint: str

    @property
    def seconds_until_reset(self) -> float:
        return max(0.0, (self.reset_at - dt.datetime.now(dt.timezone.utc)).total_seconds())


def parse_rate_limit(headers: Mapping[str, str], endpoint: str) -> RateLimit | None:
    """The RateLimit-* headers of a response, or None when it has none."""
    limit = headers.get("ratelimit-limit")
    if limit is None:
        return None
    remaining, reset = headers.get("ratelimit-remaining"), headers.get("ratelimit-reset")
    if remaining is None or reset is None:
        return None
    policy = headers.get("ratelimit-policy") or f"{limit}"
    window = None
    for part in policy.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key == "w" and value.isdigit():
            window = int(value)
    try:
        return RateLimit(int(limit), int(remaining), dt.datetime.fromtimestamp(int(reset), dt.timezone.utc),
                         policy, window, endpoint)
    except ValueError:
        return None


class RateLimitTracker:
    """Middleware recording the latest RateLimit-* headers per host and policy."""

    name = RATE_LIMITS

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, RateLimit]] = {}

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        response = await call_next(request)
        info = parse_rate_limit(response.http.headers, request.nsid)
        if info is not None:
            host = response.http.url.split("://", 1)[-1].split("/", 1)[0]
            self.latest.setdefault(host, {})[info.policy] = info
        return response


class RequestLimiter:
    """Middleware keeping this process under ``max_requests`` per ``per_seconds`` (sliding window)."""

    name = REQUEST_LIMIT

    def __init__(self, max_requests: int = 3000, per_seconds: float = 300.0) -> None:
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        if not self._admit():
            with NotCounted(request):  # the client's own throttling: not against the call's deadline
                await self.acquire()
        return await call_next(request)

    async def acquire(self) -> None:
        if self._admit():  # the common case: no lock, no await
            return
        async with self._lock:  # waiters queue here, in order
            while True:
                await asyncio.sleep(self._sent[0] + self.per_seconds - time.monotonic())
                if self._admit():
                    return

    def _admit(self) -> bool:
        now = time.monotonic()
        while self._sent and self._sent[0] <= now - self.per_seconds:
            self._sent.popleft()
        if len(self._sent) < self.max_requests:
            self._sent.append(now)
            return True
        return False
