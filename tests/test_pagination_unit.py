"""Paginator and cursor persistence against httpx.MockTransport (fast, no servers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from pysky_async import ZERO_CURSOR, AsyncBskyClient, InvalidInput, UsageError
from pysky_async._pagination import Paginator, default_cursor_key

pytestmark = pytest.mark.anyio


class PagedServer:
    """Serves ``total`` items in pages of ``size``; the cursor is the next offset."""

    def __init__(self, total: int, size: int = 10, field: str = "follows") -> None:
        self.total, self.size, self.field = total, size, field
        self.cursors: list[str | None] = []
        self.in_flight = 0
        self.max_ahead = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        self.cursors.append(cursor)
        self.in_flight += 1
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        start = int(cursor or 0)
        items = [{"n": n} for n in range(start, min(start + self.size, self.total))]
        body: dict[str, object] = {self.field: items, "subject": {"did": "did:plc:x"}}
        if start + self.size < self.total:
            body["cursor"] = str(start + self.size)
        return httpx.Response(200, json=body)


def client(server: object, **kwargs: Any) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))  # type: ignore[arg-type]
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http,
                           public_host="https://public.test", **kwargs)


async def test_items_come_in_order_and_stop_without_cursor() -> None:
    server = PagedServer(95)
    async with client(server) as bsky:
        items = [item.n async for item in bsky.paginate("app.bsky.graph.getFollows", actor="a.test", limit=10)]
    assert items == list(range(95))
    assert server.cursors == [None, *[str(n) for n in range(10, 100, 10)]]


async def test_pages_and_max_items() -> None:
    server = PagedServer(95)
    async with client(server) as bsky:
        pages = [len(page.follows) async for page in bsky.paginate("app.bsky.graph.getFollows").pages()]
        some = await bsky.paginate("app.bsky.graph.getFollows", max_items=25).collect()
    assert pages == [10] * 9 + [5]
    assert [i.n for i in some] == list(range(25))


async def test_never_more_than_one_page_ahead() -> None:
    server = PagedServer(50)
    fetched_when_seen: list[int] = []
    async with client(server) as bsky:
        async for page in bsky.paginate("app.bsky.graph.getFollows").pages():
            await asyncio.sleep(0.05)  # the caller is slow: the next page is prefetched meanwhile
            fetched_when_seen.append(len(server.cursors))
            assert page.follows
    # while page k (1-based) is being handled, at most page k+1 has been requested
    assert all(fetched <= k + 1 for k, fetched in enumerate(fetched_when_seen, start=1))
    assert fetched_when_seen[0] == 2, "the next page is fetched while the caller works"


async def test_empty_page_repeating_its_cursor_stops() -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        calls.append(cursor)
        if cursor is None:
            return httpx.Response(200, json={"logs": [{"rev": "1"}], "cursor": "c1"})
        return httpx.Response(200, json={"logs": [], "cursor": "c1"})

    async with client(handler) as bsky:
        logs = await bsky.paginate("chat.bsky.convo.getLog", hostname="https://public.test").collect()
    assert [log.rev for log in logs] == ["1"] and calls == [None, "c1"]


async def test_unknown_list_field_needs_items_argument() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"a": [1], "b": [2]})

    async with client(handler) as bsky:
        with pytest.raises(InvalidInput, match="items="):
            await bsky.paginate("com.example.list").collect()
        assert await bsky.paginate("com.example.list", items="b").collect() == [2]


async def test_resume_saves_a_cursor_only_after_its_page_is_finished() -> None:
    server = PagedServer(30)
    async with client(server) as bsky:
        paginator = bsky.paginate("app.bsky.graph.getFollows", resume=True, cursor_key="alice")
        seen = 0
        async for _ in paginator:
            seen += 1
            if seen == 15:  # stop in the middle of the second page
                break
        [(saved,)] = await bsky.store.execute_sql("SELECT cursor FROM bsky_cursor")
        assert saved == "10", "only the first (finished) page's cursor is saved"
        rest = [i.n async for i in bsky.paginate("app.bsky.graph.getFollows", resume=True, cursor_key="alice")]
        assert rest == list(range(10, 30)), "the unfinished page is seen again, nothing is lost"
        again = [i.n async for i in bsky.paginate("app.bsky.graph.getFollows", resume=True, cursor_key="bob")]
        assert again == list(range(30)), "another cursor_key has its own cursor"
        explicit = [i.n async for i in bsky.paginate("app.bsky.graph.getFollows", resume=True,
                                                     cursor_key="alice", cursor="20")]
        assert explicit == list(range(20, 30)), "an explicit cursor bypasses the store"
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql("SELECT cursor_key, cursor_passed, cursor_received FROM bsky_api_call_log "
                                            "WHERE cursor_key = 'alice' ORDER BY id")
    assert rows[0] == ("alice", None, "10")
    assert ("alice", "10", "20") in rows


async def test_convo_log_first_resumed_run_starts_at_the_zero_cursor() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("createSession"):
            return httpx.Response(200, json={"did": "did:plc:me", "handle": "me.test",
                                             "accessJwt": "a.b.c", "refreshJwt": "d.e.f"})
        seen.append(request)
        return httpx.Response(200, json={"logs": [], "cursor": request.url.params.get("cursor", "now")})

    async with client(handler, username="me.test", password="pw") as bsky:
        await bsky.get_convo_logs().collect()
    [request] = seen
    assert request.url.params["cursor"] == ZERO_CURSOR
    assert request.headers["atproto-proxy"] == "did:web:api.bsky.chat#bsky_chat"


class Collections:
    """``listRecords`` as a PDS answers it: a cursor after every non-empty page, none after the
    empty page that ends the listing; each collection has ``per_collection`` records."""

    def __init__(self, per_collection: int = 30, size: int = 10) -> None:
        self.per_collection, self.size = per_collection, size
        self.cursors: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        collection, cursor = request.url.params["collection"], request.url.params.get("cursor")
        self.cursors.append((collection, cursor))
        start = int(cursor or 0)
        size = int(request.url.params.get("limit", self.size))
        records = [{"uri": f"{collection}/{n}"} for n in range(start, min(start + size, self.per_collection))]
        body: dict[str, object] = {"records": records}
        if records:
            body["cursor"] = str(start + len(records))
        return httpx.Response(200, json=body)


async def test_resume_without_cursor_key_keeps_a_cursor_per_parameters() -> None:
    server = Collections()
    async with client(server) as bsky:
        def listing(collection: str, **options: Any) -> Paginator:
            return bsky.paginate("com.atproto.repo.listRecords", repo="did:plc:x", collection=collection,
                                 resume=True, **options)

        first = await listing("com.example.a").collect()
        assert len(first) == 30
        assert len(await listing("com.example.b").collect()) == 30, "another collection has its own cursor"
        again = listing("com.example.a", limit=5)  # the page size does not change what is listed
        assert await again.collect() == [] and again.finished
        keys = {row[0] for row in await bsky.store.execute_sql("SELECT cursor_key FROM bsky_cursor")}
    assert keys == {"collection=com.example.a&repo=did%3Aplc%3Ax", "collection=com.example.b&repo=did%3Aplc%3Ax"}


async def test_a_finished_resumed_listing_says_so_and_restart_lists_it_all_again(
        caplog: pytest.LogCaptureFixture) -> None:
    server = Collections(per_collection=25)
    async with client(server) as bsky:
        def listing(**options: Any) -> Paginator:
            return bsky.paginate("com.atproto.repo.listRecords", collection="c", resume=True,
                                 **options)

        done = listing()
        assert not done.finished
        assert len(await done.collect()) == 25 and done.finished
        with caplog.at_level(logging.INFO, logger="pysky_async"):
            assert await listing().collect() == []
        assert "at its end, nothing new since the last run" in caplog.text and "restart=True" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="pysky_async"):
            assert await listing().collect() == []
        assert caplog.text == "", "said once at INFO (a poller's empty runs are DEBUG)"
        server.cursors.clear()
        assert len(await listing(restart=True).collect()) == 25, "restart lists it all again"
        assert server.cursors[0] == ("c", None), "the saved cursor is not sent on restart"
        assert await listing().collect() == [], "and saves as it goes"
        partial = listing(restart=True, max_items=10)
        assert len(await partial.collect()) == 10 and not partial.finished
        assert len(await listing().collect()) == 15, "a restart stopped early resumes from its own cursor"
        with pytest.raises(UsageError, match="resume=True"):
            bsky.paginate("com.atproto.repo.listRecords", collection="c", restart=True)


def test_default_cursor_key_is_stable_and_bounded() -> None:
    assert default_cursor_key({}) == ""
    assert default_cursor_key({"limit": 50, "cursor": "x", "b": True, "a": "é"}) == \
        default_cursor_key({"a": "é", "b": True}) == "a=%C3%A9&b=true"
    assert default_cursor_key({"uris": ["at://1", "at://2"], "q": None}) == "uris=at%3A%2F%2F1&uris=at%3A%2F%2F2"
    long = default_cursor_key({"q": "x" * 300})
    assert long.startswith("sha256:") and len(long) == 71 and long != default_cursor_key({"q": "y" * 300})


async def test_list_records_keeps_apart_the_cursors_of_both_orders() -> None:
    server = Collections(per_collection=15)
    async with client(server) as bsky:
        assert len(await bsky.list_records("com.example.c", "did:plc:x", reverse=True, resume=True).collect()) == 15
        assert len(await bsky.list_records("com.example.c", "did:plc:x", resume=True).collect()) == 15
