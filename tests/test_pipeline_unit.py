"""The pipeline: the typed per-call context and per-request middleware selection (no HTTP)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pysky_async import AsyncBskyClient, RequestTimeout
from pysky_async._context import CallContext
from pysky_async._middleware import NO_ACCOUNT, SESSION, SESSION_OWN, USER, WRITE_BUDGET, Handler, Pipeline
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse

from .conftest import fake_jwt, make_response

pytestmark = pytest.mark.anyio


class Named:
    """A middleware that records its name on every call it sees."""

    def __init__(self, name: str | None, seen: list[str]) -> None:
        if name is not None:
            self.name = name
        self.label = name or "anonymous"
        self.seen = seen

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        self.seen.append(self.label)
        return await call_next(request)


async def ok(request: XrpcRequest) -> XrpcResponse:
    return make_response(200, {})


def pipeline(seen: list[str]) -> Pipeline:
    return Pipeline([Named("retry", seen), Named(None, seen), Named(SESSION, seen), Named(WRITE_BUDGET, seen)], ok)


async def test_a_request_passes_every_middleware_in_order_unless_it_skips_some() -> None:
    seen: list[str] = []
    chain = pipeline(seen)
    await chain(XrpcRequest("GET", "a.b.c", "https://h.test"))
    assert seen == ["retry", "anonymous", SESSION, WRITE_BUDGET]
    seen.clear()
    await chain(XrpcRequest("GET", "a.b.c", "https://h.test", skip=NO_ACCOUNT))
    assert seen == ["retry", "anonymous"], "no session and no budget for a call not made as the account"
    seen.clear()
    await chain(XrpcRequest("GET", "a.b.c", "https://h.test", skip=SESSION_OWN))
    assert seen == ["retry"], "the session's own calls skip the caller's (unnamed, USER) middlewares too"
    assert USER in SESSION_OWN


async def test_each_selection_is_folded_once() -> None:
    chain = pipeline([])
    assert chain.chain(NO_ACCOUNT) is chain.chain(frozenset({SESSION, WRITE_BUDGET, "cursor"}))
    assert chain.chain(NO_ACCOUNT) is not chain.chain(frozenset())


async def test_the_context_travels_with_every_copy_of_the_request_and_is_new_per_request() -> None:
    async def sets_did(request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        return await call_next(request.replace(host="https://pds.test"))

    async def reads_did(request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        request.context.did = "did:plc:me"
        return await call_next(request)

    request = XrpcRequest("GET", "a.b.c", "auth")
    await Pipeline([sets_did, reads_did], ok)(request)
    assert request.context.did == "did:plc:me", "a replaced request shares its context"
    assert XrpcRequest("GET", "a.b.c", "auth").context == CallContext()
    assert XrpcRequest("GET", "a.b.c", "auth").context is not XrpcRequest("GET", "a.b.c", "auth").context


async def test_the_clients_pipeline_is_fixed_at_construction() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http) as bsky:
        assert isinstance(bsky.middleware, tuple)
        with pytest.raises(AttributeError):
            bsky.middleware.append(Named(None, []))  # type: ignore[attr-defined]


async def test_login_and_refresh_are_in_the_call_log_as_the_sessions_own_calls() -> None:
    tokens = iter([fake_jwt(), fake_jwt(), fake_jwt(), fake_jwt()])
    expired = {"done": False}

    def server(request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1]
        if nsid in ("com.atproto.server.createSession", "com.atproto.server.refreshSession"):
            return httpx.Response(200, json={"did": "did:plc:me", "handle": "me.test", "accessJwt": next(tokens),
                                             "refreshJwt": next(tokens)})
        if not expired["done"]:
            expired["done"] = True
            return httpx.Response(400, json={"error": "ExpiredToken", "message": "Token has expired"})
        return httpx.Response(200, json={"ok": True})

    seen: list[str] = []
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", username="me.test", password="pw",
                               auth_host="https://entry.test", middleware=[Named(None, seen)],
                               http_client=httpx.AsyncClient(transport=httpx.MockTransport(server))) as bsky:
        await bsky.get("app.bsky.actor.getProfile", actor="me.test")
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql(
            "SELECT endpoint, http_status_code, request_did, session_was_refreshed FROM bsky_api_call_log ORDER BY id")
    assert [tuple(row) for row in rows] == [
        ("com.atproto.server.createSession", 200, None, False),
        ("com.atproto.server.refreshSession", 200, None, False),  # made before the expired attempt returns
        ("app.bsky.actor.getProfile", 400, "did:plc:me", False),  # the expired attempt has its own row
        ("app.bsky.actor.getProfile", 200, "did:plc:me", True),
    ]
    assert seen == ["anonymous"] * 2, "the caller's middleware saw both attempts, never the login or refresh"


async def test_the_deadline_bounds_the_whole_call_not_each_attempt() -> None:
    attempts: list[int] = []

    async def stalls(request: XrpcRequest, call_next: Handler) -> XrpcResponse:  # waits for what never comes
        if request.nsid != "app.bsky.actor.getProfile":
            return await call_next(request)
        attempts.append(request.context.attempt)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http,
                               public_host="https://public.test", middleware=[stalls]) as bsky:
        # a first call sets up the database (slow on a loaded machine) under the default deadline
        await bsky.get("app.bsky.actor.getProfiles", actors=["a.test"])
        with pytest.raises(RequestTimeout) as caught:
            await asyncio.wait_for(bsky.with_options(deadline=0.2).get("app.bsky.actor.getProfile", actor="a.test"),
                                   30)
    assert str(caught.value).startswith("app.bsky.actor.getProfile to https://public.test did not finish within "
                                        "its 0.2 s deadline (held before its first attempt was sent;")
    assert "deadline= (PYSKY_DEADLINE)" in str(caught.value), "the message says what to change"
    assert attempts == [1]


async def test_a_token_refresh_counts_against_the_deadline_of_the_call_that_needed_it() -> None:
    release = asyncio.Event()

    async def server(request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1]
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(200, json={"did": "did:plc:me", "handle": "me.test", "accessJwt": fake_jwt(),
                                             "refreshJwt": fake_jwt()})
        if nsid == "com.atproto.server.refreshSession":
            await release.wait()  # a token endpoint that hangs
            return httpx.Response(503)
        return httpx.Response(400, json={"error": "ExpiredToken", "message": "Token has expired"})

    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", username="me.test", password="pw",
                               auth_host="https://entry.test", deadline=0.5,
                               http_client=httpx.AsyncClient(transport=httpx.MockTransport(server))) as bsky:
        await bsky.login()
        try:
            with pytest.raises(RequestTimeout, match=r"^app\.bsky\.actor\.getProfile to .* 0\.5 s deadline"):
                await asyncio.wait_for(bsky.get("app.bsky.actor.getProfile", actor="me.test"), 30)
        finally:
            release.set()


async def test_with_options_shares_pool_store_and_sessions_and_closes_none_of_them() -> None:
    from pysky_async import InvalidInput, RetryPolicy

    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http,
                               public_host="https://public.test") as bsky:
        fast = bsky.with_options(timeout=2.5, retry=RetryPolicy(attempts=1))
        assert (fast.http, fast.store, fast.sessions, fast.call_log) == (bsky.http, bsky.store, bsky.sessions,
                                                                          bsky.call_log)
        assert fast.config.timeout == 2.5 and fast.config.retry == RetryPolicy(attempts=1)
        assert bsky.config.timeout is None, "the original keeps its options"
        await fast.get("app.bsky.actor.getProfile", actor="a.test")
        assert seen[-1].extensions["timeout"]["read"] == 2.5
        await fast.aclose()
        await bsky.get("app.bsky.actor.getProfile", actor="a.test")  # still open
        await bsky.flush_call_log()
        [(rows,)] = await bsky.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
        assert rows == 2, "both clients write to the one call log"
        with pytest.raises(InvalidInput, match="make a new AsyncBskyClient"):
            bsky.with_options(username="other.test")  # type: ignore[call-arg]  # the runtime guard for untyped callers


def test_one_version_string() -> None:
    import pysky_async
    from pysky_async._client import USER_AGENT

    assert USER_AGENT == f"pysky_async/{pysky_async.__version__}"


def test_the_budget_refusal_is_not_an_http_error() -> None:
    from pysky_async import APIError, PyskyError, WriteBudgetExhausted

    assert issubclass(WriteBudgetExhausted, PyskyError) and not issubclass(WriteBudgetExhausted, APIError)


async def test_a_callers_cancellation_within_the_deadline_stays_a_cancellation() -> None:
    from pysky_async._deadline import CallDeadline

    request = XrpcRequest("GET", "a.b.c", "https://h.test")
    started = asyncio.Event()

    async def call() -> None:
        with CallDeadline(request, 30):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert request.context.expires_at is not None


async def test_a_wait_the_caller_asked_for_does_not_count_against_the_deadline() -> None:
    """The request limiter (as the write budget's ``on_budget_exhausted="wait"``) waits on purpose:
    the deadline bounds what servers make a call wait, and still runs after that wait."""
    release = asyncio.Event()

    async def server(request: httpx.Request) -> httpx.Response:
        if "slow" in str(request.url):
            await release.wait()
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http,
                               public_host="https://public.test", request_limit=(1, 0.8)) as client:
        # the first call sets up the database (slow on a loaded machine) under the default deadline
        await client.get("app.bsky.actor.getProfile", actor="a.test")
        bsky = client.with_options(deadline=0.3)
        response = await asyncio.wait_for(bsky.get("app.bsky.actor.getProfile", actor="b.test"), 30)
        assert response.raw == {"ok": True}, "held 0.8 s by the request limit, past the 0.3 s deadline, and answered"
        try:
            with pytest.raises(RequestTimeout, match=r"com\.example\.slow .* 0\.3 s deadline"):
                await asyncio.wait_for(bsky.get("com.example.slow"), 30)  # after its wait, the deadline runs
        finally:
            release.set()
