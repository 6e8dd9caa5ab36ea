"""What ``bsky.notifications`` costs per notification: a burst of N mentions handled in one pass
(listing, the handled-set lookup, one ``done()`` transaction each, ``updateSeen``), then a pass
with nothing new, against an httpx.MockTransport AppView (no network) on an SQLite file.

    .venv/bin/python benchmarks/bench_notifications.py [--count 1000]

Prints a markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import tempfile
import time
from typing import Any

import httpx

from pysky_async import AsyncBskyClient
from pysky_async._notifications import format_time

PDS = "https://pds.example.com"


def fake_jwt() -> str:
    """An unsigned JWT-shaped token valid for an hour (the mock PDS never checks it)."""

    def segment(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = segment({"sub": "did:plc:me", "exp": time.time() + 3600})
    return f"{segment({'alg': 'HS256', 'typ': 'at+jwt'})}.{claims}.c2ln"


def appview(count: int) -> httpx.MockTransport:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30)
    items = [{"uri": f"at://did:plc:fan/app.bsky.feed.post/{i:08d}", "cid": "bafy", "reason": "mention",
              "author": {"did": "did:plc:fan", "handle": "fan.test"}, "record": {"text": str(i)}, "isRead": True,
              "indexedAt": format_time(start + dt.timedelta(milliseconds=i))} for i in reversed(range(count))]

    def handle(request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1]
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(200, json={
                "did": "did:plc:me", "handle": "me.test", "accessJwt": fake_jwt(), "refreshJwt": fake_jwt(),
                "didDoc": {"service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                        "serviceEndpoint": PDS}]}})
        if nsid == "app.bsky.notification.updateSeen":
            return httpx.Response(200)
        offset = int(request.url.params.get("cursor", "0"))
        limit = int(request.url.params.get("limit", "50"))
        body: dict[str, Any] = {"notifications": items[offset:offset + limit]}
        if offset + limit < len(items):
            body["cursor"] = str(offset + limit)
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handle)


async def run(count: int) -> list[tuple[str, float, int]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        http = httpx.AsyncClient(transport=appview(count))
        async with AsyncBskyClient(database_url=f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", http_client=http,
                                   username="me.test", password="pw", request_limit=None) as bsky:
            await bsky.login()
            for label in (f"a burst of {count} mentions, each done()", "the next pass: nothing new"):
                started = time.perf_counter()
                handled = 0
                async for n in bsky.notifications.unhandled("bench", reasons=["mention"], page_size=100):
                    await n.done()
                    handled += 1
                rows.append((label, time.perf_counter() - started, handled))
        await http.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    rows = asyncio.run(run(args.count))
    print("| pass | handled | seconds | ms per notification |")
    print("|---|---:|---:|---:|")
    for label, seconds, handled in rows:
        per = f"{seconds / handled * 1000:.2f}" if handled else "-"
        print(f"| {label} | {handled} | {seconds:.2f} | {per} |")


if __name__ == "__main__":
    main()
