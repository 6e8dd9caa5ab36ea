"""Request budgets shared in the database: a token bucket per key (``bsky_request_budget``).

One atomic statement takes a token: ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` refills
the bucket by the time elapsed since its last take (up to its capacity) and subtracts one. A
negative balance is a queue: the taker owes ``-tokens / rate`` seconds and waits that long
before sending, so N processes on N machines together send at most ``capacity + rate * t``
requests in any ``t`` seconds, in the order they asked. On PostgreSQL the clock is the
database's (machines' clocks may differ); on SQLite (one machine) it is this one's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from .._exceptions import InvalidInput

if TYPE_CHECKING:
    from .._storage.store import Store


@dataclass(frozen=True)
class RequestBudget:
    """At most ``limit`` requests in any ``window`` seconds, in bursts of at most ``burst``.

    The bucket refills at ``(limit - burst) / window`` a second and holds ``burst`` tokens, so
    no window of the server's (fixed or sliding) sees more than ``limit``.
    """

    limit: int
    window: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.window <= 0 or self.burst < 1 or self.limit <= self.burst:
            raise InvalidInput(f"a request budget needs window > 0 and 1 <= burst < limit, not {self}")

    @property
    def rate(self) -> float:
        """Tokens a second."""
        return (self.limit - self.burst) / self.window


def take(tokens: float, updated_at: float, now: float, rate: float, capacity: float) -> float:
    """The bucket's balance after one take at ``now`` (negative: the taker waits ``-balance / rate``)."""
    return min(capacity, tokens + max(0.0, now - updated_at) * rate) - 1.0


def wait_for(balance: float, rate: float) -> float:
    """Seconds a taker who left the bucket at ``balance`` waits before sending."""
    return 0.0 if balance >= 0 else -balance / rate


_TAKE = """
INSERT INTO bsky_request_budget (key, tokens, updated_at, rate, capacity)
VALUES (:key, :capacity - 1, {now}, :rate, :capacity)
ON CONFLICT (key) DO UPDATE SET
    tokens = {least}(excluded.capacity,
                     bsky_request_budget.tokens
                     + {greatest}(0, excluded.updated_at - bsky_request_budget.updated_at) * excluded.rate) - 1,
    updated_at = {greatest}(excluded.updated_at, bsky_request_budget.updated_at),
    rate = excluded.rate,
    capacity = excluded.capacity
RETURNING tokens
"""


class SharedBuckets:
    """Token buckets in ``store``'s database, shared by every process that uses it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        postgres = store.dialect == "postgresql"
        self._sql = text(_TAKE.format(
            now="extract(epoch from clock_timestamp())" if postgres else ":now",
            least="least" if postgres else "min", greatest="greatest" if postgres else "max"))
        self._postgres = postgres

    async def take(self, key: str, budget: RequestBudget, *, now: float | None = None) -> float:
        """Take one token of ``key``'s bucket; returns the seconds to wait before sending (0: now)."""
        params: dict[str, object] = {"key": key, "rate": budget.rate, "capacity": float(budget.burst)}
        sql = self._sql
        if now is not None or not self._postgres:
            params["now"] = time.time() if now is None else now
            if self._postgres:
                sql = text(_TAKE.format(now="CAST(:now AS double precision)", least="least", greatest="greatest"))
        async with self.store.transaction() as session:
            balance = float((await session.execute(sql, params)).scalar_one())
        return wait_for(balance, budget.rate)

    async def pause(self, key: str, budget: RequestBudget, seconds: float) -> None:
        """Hold back every taker of ``key`` for ``seconds`` (a server answered 429 anyway)."""
        least, greatest = ("least", "greatest") if self._postgres else ("min", "max")
        now = "extract(epoch from clock_timestamp())" if self._postgres else ":now"
        sql = (f"UPDATE bsky_request_budget SET tokens = {least}({least}(capacity, tokens + {greatest}(0, {now} - "
               f"updated_at) * rate), :owed), updated_at = {greatest}(updated_at, {now}) WHERE key = :key")
        async with self.store.transaction() as session:
            await session.execute(text(sql), {"key": key, "owed": -seconds * budget.rate, "now": time.time()})
