"""``SharedBudgetMiddleware`` with a stub ``call_next``: which bucket a request draws on, the wait
the bucket asks for, and a 429 holding back every worker of the bucket."""

from __future__ import annotations

import pytest

from pysky_async._crawl.budget import RequestBudget, SharedBuckets
from pysky_async._crawl.middleware import HostBudgets, SharedBudgetMiddleware
from pysky_async._request import AUTH, XrpcRequest
from pysky_async._response import XrpcResponse
from pysky_async._storage.store import Store

from ..conftest import make_response

pytestmark = pytest.mark.anyio


def request(nsid: str, host: str = "https://pds.example") -> XrpcRequest:
    return XrpcRequest("GET", nsid, host)


def test_defaults_are_blueskys_documented_limits_per_host() -> None:
    budgets = HostBudgets()
    key, budget = budgets.bucket(request("com.atproto.sync.getRepo")) or ("", None)
    assert key == "pds.example com.atproto.sync.getRepo" and budget == RequestBudget(6000, 300.0, 100)
    key, budget = budgets.bucket(request("com.atproto.sync.listRepos")) or ("", None)
    assert key == "pds.example *" and budget == RequestBudget(3000, 300.0, 50)
    assert (budgets.bucket(request("app.bsky.graph.getFollows", AUTH)) or ("",))[0] == "auth *"
    assert HostBudgets(default=None, methods={}).bucket(request("x.y.z")) is None
    did_document = XrpcRequest("GET", "com.atproto.identity.resolveDid", "https://plc.directory", path="/did:plc:x")
    assert budgets.bucket(did_document) is None


async def test_each_attempt_takes_a_token_and_waits_what_the_bucket_says(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = RequestBudget(3, 1.0, 1)  # 2 a second, burst 1
    middleware = SharedBudgetMiddleware(store, HostBudgets(default=budget, methods={}))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("pysky_async._crawl.middleware.asyncio.sleep", sleep)
    sent: list[str] = []

    async def call_next(req: XrpcRequest) -> XrpcResponse:
        sent.append(req.nsid)
        return make_response(200, {})

    for _ in range(3):
        await middleware(request("com.atproto.sync.listRepos"), call_next)
    assert sent == ["com.atproto.sync.listRepos"] * 3
    assert len(slept) == 2 and slept[0] > 0.3 and slept[1] > slept[0]  # the 2nd and 3rd waited their turn
    assert middleware.waited == pytest.approx(sum(slept))


async def test_a_429_pauses_the_bucket_for_every_worker(store: Store) -> None:
    budget = RequestBudget(101, 1.0, 1)  # 100 a second
    middleware = SharedBudgetMiddleware(store, HostBudgets(default=budget, methods={}))

    async def limited(req: XrpcRequest) -> XrpcResponse:
        return make_response(429, {"error": "RateLimitExceeded"}, headers={"retry-after": "20"})

    assert (await middleware(request("com.atproto.sync.listRepos"), limited)).status_code == 429
    # another process's next take owes the 20 s the server asked for
    wait = await SharedBuckets(store).take("pds.example *", budget)
    assert 19.0 < wait <= 20.1
