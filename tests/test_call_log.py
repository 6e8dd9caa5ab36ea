"""CallLogMiddleware and CallLogWriter with a stub call_next: no HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from pysky_async import APIError, NetworkError
from pysky_async._call_log import CallLogMiddleware, CallLogWriter
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse, raise_for_status
from pysky_async._storage.store import Store

from .conftest import fake_jwt, make_response

pytestmark = pytest.mark.anyio

COLUMNS = (
    "hostname, endpoint, method, request_did, cursor_key, cursor_passed, cursor_received, "
    "http_status_code, params, exception_class, exception_text, exception_response, "
    "response_keys, write_op_points_consumed, session_was_refreshed, duration_microseconds, timestamp"
)


@pytest.fixture
async def memory_store() -> AsyncIterator[Store]:
    store = Store("sqlite+aiosqlite:///:memory:")
    yield store
    await store.aclose()


async def rows(store: Store) -> list[dict[str, object]]:
    result = await store.execute_sql(f"SELECT id, {COLUMNS} FROM bsky_api_call_log ORDER BY id")
    return [dict(row._mapping) for row in result]


async def test_success_is_logged_behind_the_call_with_every_column(memory_store: Store) -> None:
    writer = CallLogWriter(memory_store, interval=60)
    middleware = CallLogMiddleware(writer)
    request = XrpcRequest("GET", "app.bsky.feed.getTimeline", "https://pds.test",
                          params={"cursor": "c1", "limit": 5})
    ctx = request.context
    ctx.did, ctx.cursor_key, ctx.write_points, ctx.session_was_refreshed = "did:plc:me", "timeline", 3, True

    async def call_next(req: XrpcRequest) -> XrpcResponse:
        req.context.url = "https://pds.test/xrpc/app.bsky.feed.getTimeline"
        return make_response(200, {"feed": [], "cursor": "c2"})

    response = await middleware(request, call_next)
    assert response.cursor == "c2"
    assert writer.pending == 1, "a success must not wait for the database"
    assert await rows(memory_store) == []
    await writer.aclose()
    [row] = await rows(memory_store)
    assert row["hostname"] == "pds.test"
    assert row["endpoint"] == "app.bsky.feed.getTimeline"
    assert row["method"] == "GET"
    assert row["request_did"] == "did:plc:me"
    assert (row["cursor_key"], row["cursor_passed"], row["cursor_received"]) == ("timeline", "c1", "c2")
    assert row["http_status_code"] == 200
    assert row["response_keys"] == "feed,cursor"
    assert row["write_op_points_consumed"] == 3
    assert row["session_was_refreshed"] in (1, True)
    assert isinstance(row["duration_microseconds"], int) and row["duration_microseconds"] >= 0
    assert row["exception_class"] is None


async def test_error_response_is_flushed_first_and_carries_its_row_id(memory_store: Store) -> None:
    writer = CallLogWriter(memory_store, interval=60)
    middleware = CallLogMiddleware(writer)
    request = XrpcRequest("POST", "com.atproto.repo.createRecord", "https://pds.test",
                          json={"repo": "me", "record": {"text": "hi"}})

    async def call_next(req: XrpcRequest) -> XrpcResponse:
        return make_response(400, {"error": "InvalidRequest", "message": "bad record"})

    response = await middleware(request, call_next)
    assert response.log_id is not None
    with pytest.raises(APIError) as info:
        raise_for_status(response, request.nsid)
    assert info.value.log_id == response.log_id
    assert f"call log id {response.log_id}" in str(info.value)
    [row] = await rows(memory_store)
    assert row["id"] == response.log_id
    assert row["exception_class"] == "InvalidRequest"
    assert row["exception_text"] == "bad record"
    assert '"record"' in str(row["params"])


async def test_exception_is_logged_and_gets_log_id(memory_store: Store) -> None:
    writer = CallLogWriter(memory_store, interval=60)
    middleware = CallLogMiddleware(writer)
    request = XrpcRequest("GET", "app.bsky.actor.getProfile", "https://down.test")

    async def call_next(req: XrpcRequest) -> XrpcResponse:
        raise NetworkError("connection refused")

    with pytest.raises(NetworkError) as info:
        await middleware(request, call_next)
    [row] = await rows(memory_store)
    assert info.value.log_id == row["id"]
    assert row["exception_class"] == "NetworkError"
    assert row["exception_text"] == "connection refused"
    assert row["http_status_code"] is None


async def test_cancelled_call_is_logged_and_flushed_on_close(memory_store: Store) -> None:
    writer = CallLogWriter(memory_store, interval=60)
    middleware = CallLogMiddleware(writer)
    started = asyncio.Event()

    async def call_next(req: XrpcRequest) -> XrpcResponse:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    task = asyncio.create_task(middleware(XrpcRequest("GET", "a.b.slowCall", "https://pds.test"), call_next))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.aclose()
    [row] = await rows(memory_store)
    assert row["exception_class"] == "CancelledError"
    assert row["endpoint"] == "a.b.slowCall"


async def test_secrets_never_reach_the_table(memory_store: Store) -> None:
    writer = CallLogWriter(memory_store, interval=60)
    middleware = CallLogMiddleware(writer)
    access, refresh = fake_jwt(), fake_jwt(lifetime=99999)
    login = XrpcRequest("POST", "com.atproto.server.createSession", "https://pds.test",
                        json={"identifier": "me.test", "password": "hunter2-secret"})

    async def call_next(req: XrpcRequest) -> XrpcResponse:
        return make_response(200, {"did": "did:plc:me", "accessJwt": access, "refreshJwt": refresh})

    await middleware(login, call_next)
    leaky = XrpcRequest("GET", "a.b.echo", "https://pds.test", params={"token": access, "q": f"x {refresh} y"})

    async def echo_error(req: XrpcRequest) -> XrpcResponse:
        return make_response(400, {"error": "Oops", "message": f"bad token {access}"})

    await middleware(leaky, echo_error)
    await writer.aclose()
    dump = str(await rows(memory_store))
    for secret in ("hunter2-secret", access, refresh, access.split(".")[1]):
        assert secret not in dump
    assert "[REDACTED]" in dump


async def test_rows_are_batched_into_few_inserts(memory_store: Store) -> None:
    writer = CallLogWriter(memory_store, batch_size=100, interval=60)
    middleware = CallLogMiddleware(writer)
    flushes = 0
    original = writer.flush

    async def counting_flush() -> None:
        nonlocal flushes
        flushes += 1
        await original()

    writer.flush = counting_flush  # type: ignore[method-assign]

    async def call_next(req: XrpcRequest) -> XrpcResponse:
        return make_response(200, {"ok": True})

    for _ in range(250):
        await middleware(XrpcRequest("GET", "a.b.c", "https://pds.test"), call_next)
    await asyncio.sleep(0)
    await writer.aclose()
    assert len(await rows(memory_store)) == 250
    assert flushes <= 4, f"{flushes} flushes for 250 rows: rows are not batched"


async def test_a_flush_with_nothing_queued_opens_no_transaction(memory_store: Store,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A timed flush that an explicit flush already did must not take a connection (it raced with
    callers checking the pool right after their flush)."""
    writer = CallLogWriter(memory_store, interval=3600)
    await memory_store.ensure_ready()
    opened = 0
    real = memory_store.core_transaction

    def counting() -> object:
        nonlocal opened
        opened += 1
        return real()

    monkeypatch.setattr(memory_store, "core_transaction", counting)
    writer.add({"timestamp": dt.datetime.now(dt.timezone.utc), "endpoint": "x.y.z", "method": "GET",
                "write_op_points_consumed": 0, "session_was_refreshed": False})
    writer._start_flush()  # the timer fires while the explicit flush is on its way
    await writer.flush()
    await writer.aclose()
    assert opened == 1
