"""``SharedBudgetMiddleware``: every request waits for a token of its host's budget shared in the database.

The defaults are Bluesky's documented limits per IP: 3,000 requests per 5 minutes to a host
(a PDS's ``global-ip`` limit, the AppView's), and ``com.atproto.sync.getRepo`` on its own
6,000 per 5 minutes (the reference PDS keeps it out of the global bucket). Workers on several
machines behind one address, or a crawl that must stay polite to a PDS, share one budget.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._deadline import NotCounted
from .._middleware import Handler
from .._request import AUTH, XrpcRequest
from .._response import XrpcResponse
from .budget import RequestBudget, SharedBuckets

if TYPE_CHECKING:
    from .._storage.store import Store

logger = logging.getLogger("pysky_async")

SHARED_BUDGET = "shared_budget"
GET_REPO = "com.atproto.sync.getRepo"


@dataclass(frozen=True)
class HostBudgets:
    """The budget of each host: ``default`` for any method, ``methods`` for those with a bucket of their own.

    Args:
        default: requests to one host (None: unbounded). Bluesky: 3,000 per 5 minutes per IP.
        methods: NSID -> its own per-host budget. Default: getRepo, 6,000 per 5 minutes.
    """

    default: RequestBudget | None = field(default_factory=lambda: RequestBudget(3000, 300.0, 50))
    methods: Mapping[str, RequestBudget] = field(
        default_factory=lambda: {GET_REPO: RequestBudget(6000, 300.0, 100)})

    def bucket(self, request: XrpcRequest) -> tuple[str, RequestBudget] | None:
        """The key and budget ``request`` draws on (None: not budgeted). Non-XRPC requests (DID
        documents from the PLC directory or a did:web host) are not: other services, other limits."""
        if request.path is not None:
            return None
        host = "auth" if request.host == AUTH else request.host.split("://", 1)[-1].rstrip("/")
        own = self.methods.get(request.nsid)
        if own is not None:
            return f"{host} {request.nsid}", own
        return (f"{host} *", self.default) if self.default is not None else None


class SharedBudgetMiddleware:
    """Waits for a token of the request's shared bucket before each attempt; a 429 pauses the bucket."""

    name = SHARED_BUDGET

    def __init__(self, store: Store, budgets: HostBudgets | None = None) -> None:
        self.buckets = SharedBuckets(store)
        self.budgets = budgets or HostBudgets()
        self.waited = 0.0
        """Seconds this process waited for tokens (for progress lines and tests)."""

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        chosen = self.budgets.bucket(request)
        if chosen is None:
            return await call_next(request)
        key, budget = chosen
        wait = await self.buckets.take(key, budget)
        if wait > 0:
            self.waited += wait
            with NotCounted(request):  # the client's own throttling: not against the call's deadline
                await asyncio.sleep(wait)
        response = await call_next(request)
        if response.status_code == 429:
            pause = _reset_in(response)
            logger.warning("%s answered 429 despite the shared budget %s (another client on this address?); "
                           "every worker holds back %.0f s", key.split(" ")[0], key, pause)
            await self.buckets.pause(key, budget, pause)
        return response


def _reset_in(response: XrpcResponse) -> float:
    """Seconds until the server's limit resets (RateLimit-Reset or Retry-After), else 1 s."""
    headers = response.http.headers
    reset = headers.get("ratelimit-reset")
    if reset is not None and reset.isdigit():
        return max(1.0, int(reset) - dt.datetime.now(dt.timezone.utc).timestamp())
    after = headers.get("retry-after")
    return float(after) if after is not None and after.isdigit() else 1.0
