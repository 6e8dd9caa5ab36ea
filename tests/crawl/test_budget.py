"""The shared token bucket: its arithmetic, the same numbers from the database's one statement on
SQLite and PostgreSQL, and the middleware holding requests back by what the bucket says."""

from __future__ import annotations

import pytest

from pysky_async._crawl.budget import RequestBudget, SharedBuckets, take, wait_for
from pysky_async._exceptions import InvalidInput
from pysky_async._storage.store import Store

pytestmark = pytest.mark.anyio


def test_the_rate_leaves_room_for_the_burst() -> None:
    budget = RequestBudget(6000, 300.0, 100)
    assert budget.rate == pytest.approx(5900 / 300)
    with pytest.raises(InvalidInput, match="burst < limit"):
        RequestBudget(10, 1.0, 10)


def test_take_refills_by_elapsed_time_up_to_capacity_and_queues_below_zero() -> None:
    assert take(2.0, 100.0, 100.0, rate=1.0, capacity=2.0) == 1.0
    assert take(0.0, 100.0, 101.5, rate=1.0, capacity=2.0) == pytest.approx(0.5)
    assert take(0.0, 100.0, 500.0, rate=1.0, capacity=2.0) == 1.0  # capped at capacity
    assert take(-3.0, 100.0, 100.0, rate=2.0, capacity=2.0) == -4.0
    assert wait_for(-4.0, 2.0) == 2.0 and wait_for(0.5, 2.0) == 0.0
    assert take(1.0, 100.0, 90.0, rate=1.0, capacity=2.0) == 0.0  # a clock going back refills nothing


def test_any_window_sees_at_most_burst_plus_rate_times_its_length() -> None:
    rate, capacity = 4.0, 3.0
    tokens, updated, sends = capacity, 0.0, []
    for n in range(200):  # 200 takers asking at once, then 100 more spread over 10 s
        asked = 0.0 if n < 100 else (n - 100) * 0.1
        tokens = take(tokens, updated, asked, rate, capacity)
        updated = max(updated, asked)
        sends.append(asked + wait_for(tokens, rate))
    sends.sort()
    for window in (1.0, 4.0, 10.0):
        busiest = max(sum(1 for s in sends if start <= s < start + window) for start in sends)
        assert busiest <= capacity + rate * window


async def test_the_database_statement_does_the_same_arithmetic(store: Store) -> None:
    buckets = SharedBuckets(store)
    budget = RequestBudget(11, 10.0, 1)  # 1 a second, burst 1
    assert await buckets.take("pds getRepo", budget, now=1000.0) == 0.0
    assert await buckets.take("pds getRepo", budget, now=1000.0) == pytest.approx(1.0)
    assert await buckets.take("pds getRepo", budget, now=1000.0) == pytest.approx(2.0)
    assert await buckets.take("pds getRepo", budget, now=1002.5) == pytest.approx(0.5)
    assert await buckets.take("other host", budget, now=1000.0) == 0.0  # a bucket per key
    await buckets.pause("pds getRepo", budget, 30.0)
    assert await buckets.take("pds getRepo", budget, now=1002.5) == pytest.approx(31.0)


async def test_processes_on_one_database_share_the_bucket(store: Store, database_url: str) -> None:
    other = Store(database_url)
    try:
        budget = RequestBudget(21, 10.0, 1)  # 2 a second
        waits = [await SharedBuckets(s).take("h", budget, now=50.0) for s in (store, other, store, other)]
    finally:
        await other.aclose()
    assert waits == pytest.approx([0.0, 0.5, 1.0, 1.5])
