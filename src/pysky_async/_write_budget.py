"""The write-op budget: price writes as Bluesky does and never send one that would exceed it.

Bluesky charges each account 3 points per create, 2 per update and 1 per delete
(``applyWrites``: the sum of its operations), at most 5,000 points per hour and 35,000 per day,
and allows 1,000 blob uploads per day. The ledger (``bsky_write_op``) lives in the database,
so processes sharing a database share a budget. A write is reserved before it is sent and
refunded if it fails (also when it is cancelled).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._deadline import NotCounted
from ._exceptions import InvalidInput, StorageError, WriteBudgetExhausted
from ._middleware import WRITE_BUDGET, Handler
from ._request import XrpcRequest
from ._response import XrpcResponse

if TYPE_CHECKING:  # the storage modules load SQLAlchemy: imported where used, not at import
    from ._storage.repositories import WriteLedgerRepository
    from ._storage.store import Store

logger = logging.getLogger("pysky_async")

RECORD_WRITE_POINTS = {
    "com.atproto.repo.createRecord": 3,
    "com.atproto.repo.putRecord": 2,
    "com.atproto.repo.deleteRecord": 1,
}
APPLY_WRITES_POINTS = {
    "com.atproto.repo.applyWrites#create": 3,
    "com.atproto.repo.applyWrites#update": 2,
    "com.atproto.repo.applyWrites#delete": 1,
}


@dataclass(frozen=True)
class WriteBudget:
    """Write limits per account. The defaults are Bluesky's; the windows can be shortened for tests.

    Args:
        hourly_points / daily_points: points allowed per trailing hour / day.
        daily_blobs: blob uploads allowed per trailing day.
        on_budget_exhausted: ``"raise"`` WriteBudgetExhausted (with when the write will fit), or
            ``"wait"`` until it fits.
        warn_ratio: log a warning when more than this share of a window is used.
        hour / day: the window lengths in seconds.
    """

    hourly_points: int = 5000
    daily_points: int = 35000
    daily_blobs: int = 1000
    on_budget_exhausted: Literal["raise", "wait"] = "raise"
    warn_ratio: float = 0.95
    hour: float = 3600.0
    day: float = 86400.0

    def __post_init__(self) -> None:
        if self.on_budget_exhausted not in ("raise", "wait"):
            raise InvalidInput("on_budget_exhausted must be 'raise' or 'wait'")


def write_points(request: XrpcRequest) -> int:
    """The points Bluesky charges for this request (0 for reads)."""
    if request.nsid == "com.atproto.repo.applyWrites":
        writes = request.json.get("writes", []) if isinstance(request.json, dict) else []
        return sum(APPLY_WRITES_POINTS.get(w.get("$type", ""), 3) for w in writes if isinstance(w, dict))
    return RECORD_WRITE_POINTS.get(request.nsid, 0)


class WriteBudgetMiddleware:
    """Reserves a write's points in the ledger before sending it; refunds them if it fails.

    Runs inside the session middleware (the ledger is per account DID).
    """

    name = WRITE_BUDGET

    def __init__(self, store: Store, budget: WriteBudget) -> None:
        self.store = store
        self.budget = budget

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        from ._storage.repositories import BLOB_ENDPOINT

        did = request.context.did
        points = write_points(request)
        is_blob = request.nsid == BLOB_ENDPOINT
        if did is None or not (points or is_blob):
            return await call_next(request)
        reservation = await self._reserve(request, did, 1 if is_blob else points, is_blob)
        request.context.sent = False
        try:
            response = await call_next(request)
        except asyncio.CancelledError:
            # a write that left may have been done by the server: its points stay spent
            await asyncio.shield(self._settle(reservation, spent=request.context.sent))
            raise
        except BaseException:
            await asyncio.shield(self._settle(reservation, spent=False))
            raise
        spent = not response.is_error
        await asyncio.shield(self._settle(reservation, spent=spent))
        if spent and not is_blob:
            request.context.write_points = points
        return response

    async def _reserve(self, request: XrpcRequest, did: str, points: int, is_blob: bool) -> int:
        from ._storage.models import utcnow
        from ._storage.repositories import WriteLedgerRepository, lock

        endpoint = request.nsid
        while True:
            async with self.store.transaction() as db:
                await lock(db, "write-budget:" + did)
                ledger = WriteLedgerRepository(db)
                now = utcnow()
                await ledger.prune(now - dt.timedelta(seconds=self.budget.day))
                wait = await self._seconds_until_fits(ledger, did, points, is_blob, now)
                if wait <= 0:
                    return await ledger.add(did, endpoint, points, now)
            if self.budget.on_budget_exhausted == "raise":
                fits_at = now + dt.timedelta(seconds=wait)
                what = "blob uploads" if is_blob else f"{points} write points"
                raise WriteBudgetExhausted(
                    f"{endpoint} was not sent: {what} for {did} would exceed the write budget; it fits "
                    f"again at {fits_at:%Y-%m-%d %H:%M:%S} UTC (in {wait:.0f} s). Pass "
                    "write_budget=WriteBudget(on_budget_exhausted='wait') to wait instead",
                    did=did, endpoint=endpoint, points=points, retry_after=wait, fits_at=fits_at)
            logger.warning("write budget of %s exhausted: waiting %.1f s before %s", did, wait, endpoint)
            with NotCounted(request):  # asked for: not against the call's deadline
                await asyncio.sleep(wait)

    async def _settle(self, reservation: int, *, spent: bool) -> None:
        """Record the outcome; if the database fails now, the server's answer still stands (the
        reservation stays counted, which errs on the safe side)."""
        from ._storage.repositories import WriteLedgerRepository

        try:
            async with self.store.transaction() as db:
                await WriteLedgerRepository(db).settle(reservation, spent=spent)
        except StorageError as exc:
            logger.warning("the write budget could not record the outcome of a write (kept as spent): %s", exc)

    async def _seconds_until_fits(self, ledger: WriteLedgerRepository, did: str, points: int, is_blob: bool,
                                  now: dt.datetime) -> float:
        budget = self.budget
        windows: list[tuple[str, float, int]] = (
            [("daily blob", budget.day, budget.daily_blobs)] if is_blob
            else [("hourly", budget.hour, budget.hourly_points), ("daily", budget.day, budget.daily_points)])
        wait = 0.0
        for name, seconds, limit in windows:
            if points > limit:
                raise InvalidInput(f"a write of {points} points can never fit the {name} budget of {limit}")
            entries = await ledger.entries_since(did, now - dt.timedelta(seconds=seconds), blobs=is_blob)
            spent = sum(p for _, p in entries)
            if spent > limit * budget.warn_ratio:
                logger.warning("Over %d%% of the %s write budget has been used: %d/%d (%.2f%%)",
                               round(budget.warn_ratio * 100), name, spent, limit, spent / limit * 100)
            wait = max(wait, _wait_for(entries, spent + points - limit, seconds, now))
        return wait


def _wait_for(entries: list[tuple[dt.datetime, Any]], excess: int, window: float, now: dt.datetime) -> float:
    """Seconds until enough of the oldest entries leave the window to free ``excess`` points."""
    if excess <= 0:
        return 0.0
    freed = 0
    for created_at, points in entries:
        freed += points
        if freed >= excess:
            return max(0.001, (created_at + dt.timedelta(seconds=window) - now).total_seconds())
    return window
