"""RetryMiddleware and the rate-limit middlewares with stub call_next: no HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from pysky_async import NetworkError, RequestTimeout, RetryPolicy
from pysky_async._rate_limits import RateLimitTracker, RequestLimiter, parse_rate_limit
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse
from pysky_async._retry import RetryMiddleware, set_testing

from .conftest import make_response

pytestmark = pytest.mark.anyio


class Flaky:
    """Fails with the given outcomes, then answers 200."""

    def __init__(self, *outcomes: int | Exception) -> None:
        self.outcomes = list(outcomes)
        self.attempts: list[int] = []

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        self.attempts.append(request.context.attempt)
        outcome = self.outcomes.pop(0) if self.outcomes else 200
        if isinstance(outcome, Exception):
            raise outcome
        return make_response(outcome, {"error": "X"} if outcome >= 400 else {"ok": True},
                             headers={"Retry-After": "0"} if outcome == 429 else None)


def read() -> XrpcRequest:
    return XrpcRequest("GET", "app.bsky.feed.getTimeline", "https://pds.test")


def write(idempotent: bool) -> XrpcRequest:
    request = XrpcRequest("POST", "com.atproto.repo.createRecord", "https://pds.test", json={})
    request.context.idempotent = idempotent
    return request


async def test_reads_are_retried_on_network_errors_timeouts_and_gateway_errors() -> None:
    server = Flaky(NetworkError("reset"), RequestTimeout("slow"), 502, 503)
    response = await RetryMiddleware(RetryPolicy(attempts=5))(read(), server)
    assert response.status_code == 200 and server.attempts == [1, 2, 3, 4, 5]


async def test_attempts_are_bounded() -> None:
    server = Flaky(504, 504, 504, 504)
    response = await RetryMiddleware(RetryPolicy(attempts=3))(read(), server)
    assert response.status_code == 504 and server.attempts == [1, 2, 3]
    failing = Flaky(*[NetworkError("down")] * 5)
    with pytest.raises(NetworkError):
        await RetryMiddleware(RetryPolicy(attempts=2))(read(), failing)
    assert failing.attempts == [1, 2]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
async def test_errors_retrying_cannot_fix_are_not_retried(status: int) -> None:
    server = Flaky(status)
    response = await RetryMiddleware(RetryPolicy())(read(), server)
    assert response.status_code == status and server.attempts == [1]


async def test_writes_are_retried_only_when_idempotent() -> None:
    unsafe = Flaky(NetworkError("reset"))
    with pytest.raises(NetworkError):
        await RetryMiddleware(RetryPolicy())(write(idempotent=False), unsafe)
    assert unsafe.attempts == [1]
    unsafe_502 = Flaky(502)
    assert (await RetryMiddleware(RetryPolicy())(write(idempotent=False), unsafe_502)).status_code == 502
    safe = Flaky(NetworkError("reset"), 502)
    assert (await RetryMiddleware(RetryPolicy())(write(idempotent=True), safe)).status_code == 200
    assert safe.attempts == [1, 2, 3]


async def test_429_waits_for_retry_after_then_retries() -> None:
    server = Flaky(429)
    response = await RetryMiddleware(RetryPolicy())(read(), server)
    assert response.status_code == 200 and server.attempts == [1, 2]


async def test_429_with_a_distant_reset_is_returned_at_once() -> None:
    async def limited(request: XrpcRequest) -> XrpcResponse:
        return make_response(429, {"error": "RateLimitExceeded"}, headers={"Retry-After": "3600"})

    response = await RetryMiddleware(RetryPolicy(max_rate_limit_wait=60))(read(), limited)
    assert response.status_code == 429


async def test_a_429_that_fits_max_rate_limit_wait_is_retried_beyond_max_total_delay() -> None:
    answers = [make_response(429, {"error": "RateLimitExceeded"}, headers={"Retry-After": "90"}),
               make_response(200, {"ok": True})]

    async def limited_once(request: XrpcRequest) -> XrpcResponse:
        return answers.pop(0)

    response = await RetryMiddleware(RetryPolicy())(read(), limited_once)  # defaults: 60 s total, 120 s per 429
    assert response.status_code == 200 and answers == []


def test_retry_after_is_read_in_seconds_and_as_an_http_date() -> None:
    import email.utils

    import httpx

    from pysky_async._response import retry_after

    assert retry_after(httpx.Headers({"Retry-After": "7"})) == 7.0
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    wait = retry_after(httpx.Headers({"Retry-After": in_a_minute}))
    assert wait is not None and 55 <= wait <= 61
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after(httpx.Headers({"Retry-After": past})) == 0.0
    assert retry_after(httpx.Headers({"Retry-After": "soon"})) is None


async def test_backoff_grows_exponentially_with_jitter_and_really_sleeps() -> None:
    policy = RetryPolicy(initial_delay=0.01, max_delay=0.04)
    assert all(0 <= policy.backoff(1) <= 0.01 for _ in range(100))
    assert max(policy.backoff(3) for _ in range(200)) > 0.02
    assert all(policy.backoff(10) <= 0.04 for _ in range(100))
    set_testing(False)
    try:
        server = Flaky(502, 502)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await RetryMiddleware(RetryPolicy(initial_delay=0.05, max_delay=0.05))(read(), server)
        assert server.attempts == [1, 2, 3]
        assert loop.time() - started > 0  # slept (the switch is off)
    finally:
        set_testing(True)


def test_rate_limit_headers_are_parsed() -> None:
    reset = int(time.time()) + 120
    info = parse_rate_limit({"ratelimit-limit": "30", "ratelimit-remaining": "29", "ratelimit-reset": str(reset),
                             "ratelimit-policy": "30;w=300"}, "com.atproto.server.createSession")
    assert info is not None and (info.limit, info.remaining, info.window_seconds) == (30, 29, 300)
    assert 100 < info.seconds_until_reset <= 120
    assert parse_rate_limit({}, "x") is None


async def test_tracker_keeps_the_latest_state_per_host_and_policy() -> None:
    tracker = RateLimitTracker()
    reset = str(int(time.time()) + 60)

    async def answer(request: XrpcRequest) -> XrpcResponse:
        return make_response(200, {}, url="https://pds.test/xrpc/x", headers={
            "RateLimit-Limit": "3000", "RateLimit-Remaining": request.params["left"],
            "RateLimit-Reset": reset, "RateLimit-Policy": "3000;w=300"})

    for left in ("2999", "2998"):
        await tracker(XrpcRequest("GET", "a.b.c", "https://pds.test", params={"left": left}), answer)
    assert tracker.latest["pds.test"]["3000;w=300"].remaining == 2998


async def test_request_limiter_holds_back_the_request_over_the_limit() -> None:
    limiter = RequestLimiter(max_requests=3, per_seconds=0.2)
    loop = asyncio.get_running_loop()
    stamps = []
    for _ in range(4):
        await limiter.acquire()
        stamps.append(loop.time())
    assert stamps[3] - stamps[0] >= 0.2 - 0.01, "the fourth request waited for the first to leave the window"


def expiring_read(seconds_left: float) -> XrpcRequest:
    """A read whose call deadline (set by ``Xrpc`` around the whole call) is ``seconds_left`` away."""
    request = read()
    request.context.expires_at = asyncio.get_running_loop().time() + seconds_left
    return request


async def test_a_retry_after_that_would_pass_the_call_deadline_is_not_waited_for() -> None:
    answers = [make_response(429, {"error": "RateLimitExceeded"}, headers={"Retry-After": "30"})]
    seen: list[int] = []

    async def limited(request: XrpcRequest) -> XrpcResponse:
        seen.append(request.context.attempt)
        return answers[0]

    response = await RetryMiddleware(RetryPolicy())(expiring_read(5), limited)
    assert response.status_code == 429 and seen == [1], "the server's answer is given at once"


async def test_a_back_off_that_would_pass_the_call_deadline_is_not_started() -> None:
    gateway = Flaky(503, 503)
    assert (await RetryMiddleware(RetryPolicy())(expiring_read(0), gateway)).status_code == 503
    assert gateway.attempts == [1]
    down = Flaky(NetworkError("reset"), NetworkError("reset"), NetworkError("reset"))
    with pytest.raises(NetworkError, match="reset"):
        await RetryMiddleware(RetryPolicy())(expiring_read(0), down)
    assert down.attempts == [1]
    plenty = Flaky(503, NetworkError("reset"))
    assert (await RetryMiddleware(RetryPolicy(initial_delay=0.01))(expiring_read(60), plenty)).status_code == 200
    assert plenty.attempts == [1, 2, 3], "within the deadline retries go on"


async def test_a_retry_log_line_names_the_real_host_and_the_call(caplog: pytest.LogCaptureFixture) -> None:
    server = Flaky(503)

    async def transport(request: XrpcRequest) -> XrpcResponse:  # the session chose the PDS; the transport notes it
        request.context.url = "https://pds.example.com/xrpc/app.bsky.feed.getTimeline"
        return await server(request)

    authenticated = XrpcRequest("GET", "app.bsky.feed.getTimeline", "auth")
    with caplog.at_level("INFO", logger="pysky_async"):
        await RetryMiddleware(RetryPolicy())(authenticated, transport)
    [line] = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert "app.bsky.feed.getTimeline to https://pds.example.com failed (HTTP 503" in line
    assert " auth " not in line
