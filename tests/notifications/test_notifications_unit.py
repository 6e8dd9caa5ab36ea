"""``bsky.notifications`` against an httpx.MockTransport AppView: the paging bounds, the reasons
filter when an AppView ignores ``reasons``, the watermark with a notification left undone, and
the ``seenAt`` sent."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from pysky_async import AsyncBskyClient
from pysky_async._notifications import format_time, parse_time

from ..conftest import fake_jwt

pytestmark = pytest.mark.anyio

PDS = "https://pds.example.com"
T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)


def at(minutes: float) -> str:
    return format_time(T0 + dt.timedelta(minutes=minutes))


class AppView:
    """Notifications newest first, two per page; ``reasons`` ignored (an older AppView)."""

    def __init__(self, items: list[tuple[str, str, float]]) -> None:
        self.items = items  # (rkey, reason, minutes after T0), newest first
        self.pages: list[str | None] = []
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1]
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(200, json={
                "did": "did:plc:me", "handle": "me.test", "accessJwt": fake_jwt(), "refreshJwt": fake_jwt(),
                "didDoc": {"service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                        "serviceEndpoint": PDS}]}})
        if nsid == "app.bsky.notification.updateSeen":
            self.seen.append(json.loads(request.content)["seenAt"])
            return httpx.Response(200)
        cursor = request.url.params.get("cursor")
        self.pages.append(cursor)
        start = int(cursor or 0)
        page = self.items[start:start + 2]
        body: dict[str, Any] = {"notifications": [
            {"uri": f"at://did:plc:fan/app.bsky.feed.post/{rkey}", "cid": "bafy", "reason": reason,
             "author": {"did": "did:plc:fan", "handle": "fan.test"}, "record": {"text": rkey},
             "isRead": True, "indexedAt": at(minutes)} for rkey, reason, minutes in page]}
        if start + 2 < len(self.items):
            body["cursor"] = str(start + 2)
        return httpx.Response(200, json=body)


def client(appview: AppView) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(appview))
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, username="me.test",
                           password="pw")


def test_times_parse_with_any_fraction_and_offset() -> None:
    assert parse_time("2026-12-04T12:00:00Z") == T0
    assert parse_time("2026-12-04T12:00:00.5Z") == T0 + dt.timedelta(milliseconds=500)
    assert parse_time("2026-12-04T13:00:00.123456789+01:00") == T0 + dt.timedelta(microseconds=123456)
    assert format_time(T0 + dt.timedelta(milliseconds=7)) == "2026-12-04T12:00:00.007Z"


async def test_a_pass_pages_back_to_the_watermark_filters_reasons_and_keeps_undone_ones() -> None:
    appview = AppView([("m3", "mention", 30), ("l1", "like", 25), ("m2", "mention", 20), ("m1", "mention", 10)])
    async with client(appview) as bsky:
        yielded = []
        async for n in bsky.notifications.unhandled("bot", reasons=["mention"], lookback=dt.timedelta(minutes=5)):
            yielded.append(n.record.text)
            if n.record.text != "m2":  # m2 is left undone
                await n.done()
        assert yielded == ["m1", "m2", "m3"], "oldest first, the like filtered out"
        assert appview.pages == [None, "2"], "a first run lists everything"
        assert appview.seen == [at(30 + 1 / 60_000)], "seen up to just past the newest handled"
        appview.pages.clear()
        again = [n.record.text async for n in bsky.notifications.unhandled(
            "bot", reasons=["mention"], lookback=dt.timedelta(minutes=5))]
        assert again == ["m2"], "the undone one comes back"
        assert appview.pages == [None, "2"], "the watermark stayed before it: back to 20 - 5 minutes"
        assert appview.seen == [at(30 + 1 / 60_000)], "nothing handled, nothing marked"
        async for n in bsky.notifications.unhandled("bot", reasons=["mention"], lookback=dt.timedelta(minutes=5)):
            await n.done()
        appview.pages.clear()
        assert [n async for n in bsky.notifications.unhandled(
            "bot", reasons=["mention"], lookback=dt.timedelta(minutes=3))] == []
        assert appview.pages == [None], "the watermark at 30: the first page reaches past 30 - 3 minutes"


async def test_process_stops_at_a_failing_handler_and_leaves_that_one() -> None:
    appview = AppView([("m2", "mention", 20), ("m1", "mention", 10)])
    handled: list[str] = []

    async def handler(n: Any) -> None:
        if n.record.text == "m2":
            raise RuntimeError("the handler failed")
        handled.append(n.record.text)

    async with client(appview) as bsky:
        with pytest.raises(RuntimeError):
            await bsky.notifications.process(handler, "bot")
        assert handled == ["m1"]
        assert [n.record.text async for n in bsky.notifications.unhandled("bot")] == ["m2"]
