"""WriteBudgetMiddleware with a stub call_next and a real (SQLite) ledger: no HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from pysky_async import NetworkError, WriteBudget, WriteBudgetExhausted
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse
from pysky_async._storage.store import Store
from pysky_async._write_budget import WriteBudgetMiddleware, write_points

from .conftest import make_response

pytestmark = pytest.mark.anyio

CREATE = "com.atproto.repo.createRecord"


def write(nsid: str = CREATE, did: str = "did:plc:me", **body: object) -> XrpcRequest:
    request = XrpcRequest("POST", nsid, "https://pds.test", json=body)
    request.context.did = did
    return request


@pytest.fixture
async def ledger_store() -> AsyncIterator[Store]:
    store = Store("sqlite+aiosqlite:///:memory:")
    yield store
    await store.aclose()


def test_writes_are_priced_as_bluesky_prices_them() -> None:
    assert write_points(write(CREATE)) == 3
    assert write_points(write("com.atproto.repo.putRecord")) == 2
    assert write_points(write("com.atproto.repo.deleteRecord")) == 1
    ops = [{"$type": f"com.atproto.repo.applyWrites#{kind}"} for kind in ("create", "create", "update", "delete")]
    assert write_points(write("com.atproto.repo.applyWrites", writes=ops)) == 9
    assert write_points(XrpcRequest("GET", "app.bsky.feed.getTimeline", "https://x")) == 0


async def test_write_over_budget_raises_before_anything_is_sent(ledger_store: Store) -> None:
    middleware = WriteBudgetMiddleware(ledger_store, WriteBudget(hourly_points=10))
    sent: list[XrpcRequest] = []

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        sent.append(request)
        return make_response(200, {"uri": "at://x", "cid": "y"})

    for _ in range(3):
        request = write()
        await middleware(request, call_next)
        assert request.context.write_points == 3
    with pytest.raises(WriteBudgetExhausted, match="fits again at") as info:
        await middleware(write(), call_next)
    assert len(sent) == 3
    assert info.value.retry_after is not None and 3500 < info.value.retry_after <= 3600
    await middleware(write("com.atproto.repo.deleteRecord"), call_next)  # 1 point still fits
    await middleware(write(did="did:plc:other"), call_next)  # another account has its own budget
    assert len(sent) == 5


async def test_failed_and_cancelled_writes_are_refunded(ledger_store: Store) -> None:
    middleware = WriteBudgetMiddleware(ledger_store, WriteBudget(hourly_points=6))

    async def rejected(request: XrpcRequest) -> XrpcResponse:
        return make_response(400, {"error": "InvalidRequest"})

    async def broken(request: XrpcRequest) -> XrpcResponse:
        raise NetworkError("reset")

    started = asyncio.Event()

    async def slow(request: XrpcRequest) -> XrpcResponse:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError

    async def ok(request: XrpcRequest) -> XrpcResponse:
        return make_response(200, {})

    for _ in range(3):
        await middleware(write(), rejected)
        with pytest.raises(NetworkError):
            await middleware(write(), broken)
    task = asyncio.create_task(middleware(write(), slow))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await middleware(write(), ok)
    await middleware(write(), ok)  # 6 of 6 points: nothing failed was charged
    with pytest.raises(WriteBudgetExhausted):
        await middleware(write(), ok)
    [(count, points)] = await ledger_store.execute_sql("SELECT count(*), sum(points) FROM bsky_write_op")
    assert (count, points) == (2, 6)


async def test_wait_mode_sleeps_until_the_write_fits(ledger_store: Store) -> None:
    middleware = WriteBudgetMiddleware(ledger_store, WriteBudget(hourly_points=6, hour=0.3,
                                                                on_budget_exhausted="wait"))

    async def ok(request: XrpcRequest) -> XrpcResponse:
        return make_response(200, {})

    for _ in range(4):
        await middleware(write(), ok)  # the third and fourth cannot be charged inside one window
    async with ledger_store.transaction() as db:
        from sqlalchemy import select

        from pysky_async._storage.models import WriteOpRow

        stamps = (await db.execute(select(WriteOpRow.created_at).order_by(WriteOpRow.id))).scalars().all()
    assert len(stamps) == 4
    # the ledger never holds more than 6 points inside any 0.3 s window
    assert (stamps[2] - stamps[0]).total_seconds() >= 0.3 and (stamps[3] - stamps[1]).total_seconds() >= 0.3


async def test_over_95_percent_logs_a_warning(ledger_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    middleware = WriteBudgetMiddleware(ledger_store, WriteBudget(hourly_points=5000))

    async def ok(request: XrpcRequest) -> XrpcResponse:
        return make_response(200, {})

    ops = [{"$type": "com.atproto.repo.applyWrites#create"}] * 200
    for _ in range(7):  # 7 x 600 = 4200 points
        await middleware(write("com.atproto.repo.applyWrites", writes=ops), ok)
    await middleware(write("com.atproto.repo.applyWrites", writes=ops[:186]), ok)  # 4758
    await middleware(write("com.atproto.repo.putRecord"), ok)  # 4760
    with caplog.at_level(logging.WARNING, logger="pysky_async"):
        await middleware(write("com.atproto.repo.deleteRecord"), ok)
    assert "Over 95% of the hourly write budget has been used: 4760/5000 (95.20%)" in caplog.text


async def test_blob_uploads_have_their_own_daily_count(ledger_store: Store) -> None:
    middleware = WriteBudgetMiddleware(ledger_store, WriteBudget(hourly_points=3, daily_blobs=2))

    async def ok(request: XrpcRequest) -> XrpcResponse:
        return make_response(200, {"blob": {}})

    await middleware(write(), ok)  # uses all write points
    for _ in range(2):
        await middleware(write("com.atproto.repo.uploadBlob"), ok)
    with pytest.raises(WriteBudgetExhausted, match="blob uploads"):
        await middleware(write("com.atproto.repo.uploadBlob"), ok)


@pytest.mark.parametrize("left", [True, False])
async def test_a_cancelled_write_keeps_its_points_only_if_it_left(ledger_store: Store, left: bool) -> None:
    """A write cancelled after the transport sent it may have been done by the server (its points
    stay spent); one cancelled before it left is refunded."""
    middleware = WriteBudgetMiddleware(ledger_store, WriteBudget())
    started = asyncio.Event()

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        request.context.sent = left  # what the transport sets when it sends
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("cancelled before this")

    task = asyncio.create_task(middleware(write(), call_next))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await ledger_store.execute_sql("SELECT points, state FROM bsky_write_op")
    assert rows == ([(3, "spent")] if left else [])


async def test_the_servers_answer_wins_when_the_ledger_cannot_record_it(ledger_store: Store,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    middleware = WriteBudgetMiddleware(ledger_store, WriteBudget())

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        await ledger_store.aclose()  # the database goes away while the write is on the server
        return make_response(200, {"uri": "at://did:plc:me/c/1", "cid": "bafy"})

    response = await middleware(write(), call_next)
    assert response.raw["uri"] == "at://did:plc:me/c/1", "the created record is returned, not a StorageError"
    assert "could not record the outcome" in caplog.text
