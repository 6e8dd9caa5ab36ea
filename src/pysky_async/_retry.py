"""Retries with exponential back-off and jitter, only where retrying cannot do harm.

Reads (GET) are retried on connection errors, timeouts, 502/503/504 and 429; a write only when
its request is marked idempotent (``create_record`` chooses the record key on the client, so a
repeated create finds its record instead of making a second one). 400, 401, 403, 404 and 413
are never retried. A back-off sleep (a 429's ``Retry-After`` included) that would pass the
call's deadline (``context.expires_at``) is not started: the last answer or error is given at
once. ``set_testing(True)`` turns the sleeping off.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from ._deadline import host_of
from ._exceptions import NetworkError
from ._middleware import RETRY, Handler
from ._request import XrpcRequest
from ._response import XrpcResponse, retry_after

logger = logging.getLogger("pysky_async")

RETRY_STATUSES = frozenset({429, 502, 503, 504})

_testing = False


def set_testing(testing: bool = True) -> None:
    """Make retries happen at once, without sleeping (for test suites)."""
    global _testing
    _testing = testing


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    Args:
        attempts: attempts per call in all (1 = no retries).
        initial_delay / max_delay: the back-off grows from one to the other (doubling, with jitter).
        max_total_delay: give up once this much time would have been spent sleeping on
            back-off (a 429's announced wait counts against ``max_rate_limit_wait`` instead).
        max_rate_limit_wait: a 429 whose reset is further away than this is raised at once;
            one within it is waited for, even when that is longer than ``max_total_delay``.
    """

    attempts: int = 4
    initial_delay: float = 0.5
    max_delay: float = 20.0
    max_total_delay: float = 60.0
    max_rate_limit_wait: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential back-off before attempt ``attempt + 1``."""
        return random.uniform(0, min(self.max_delay, self.initial_delay * 2 ** (attempt - 1)))


def is_safe_to_retry(request: XrpcRequest) -> bool:
    return request.method == "GET" or request.context.idempotent


class RetryMiddleware:
    """The outermost middleware: every attempt goes through the rest of the chain (and the call log)."""

    name = RETRY

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        policy = self.policy
        slept = 0.0
        attempt = 0
        while True:
            attempt += 1
            request.context.attempt = attempt
            try:
                response = await call_next(request)
            except NetworkError:
                if attempt >= policy.attempts or not is_safe_to_retry(request):
                    raise
                # the first retry of a dropped connection goes at once (a pooled connection the server
                # had just closed; the transport itself never re-sends), later ones back off
                delay = 0.0 if attempt == 1 else policy.backoff(attempt)
                if slept + delay > policy.max_total_delay or _passes_deadline(request, delay):
                    raise
                reason = "network error"
            else:
                status = response.http.status_code
                if status not in RETRY_STATUSES or attempt >= policy.attempts or not is_safe_to_retry(request):
                    return response
                wait = retry_after(response.http.headers) if status == 429 else None
                if wait is not None:
                    if wait > policy.max_rate_limit_wait:
                        return response
                    delay = wait + random.uniform(0, 0.25)
                else:
                    delay = policy.backoff(attempt)
                    if slept + delay > policy.max_total_delay:
                        return response
                if _passes_deadline(request, delay):
                    return response
                reason = f"HTTP {status}"
            logger.info("%s %s to %s failed (%s, attempt %d of %d); retrying in %.2f s",
                        request.method, request.nsid, host_of(request), reason, attempt, policy.attempts, delay)
            slept += delay
            if not _testing:
                await asyncio.sleep(delay)


def _passes_deadline(request: XrpcRequest, delay: float) -> bool:
    """True when sleeping ``delay`` seconds would end past the call's deadline."""
    expires = request.context.expires_at
    return expires is not None and asyncio.get_running_loop().time() + delay >= expires
