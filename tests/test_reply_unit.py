"""A reply reads its parent once: the parent's strong ref and its thread root come from one getRecord."""

from __future__ import annotations

import json

import httpx
import pytest

from .test_client_unit import Server, client

pytestmark = pytest.mark.anyio

PARENT = "at://did:plc:parent/app.bsky.feed.post/3kparent"
ROOT = {"uri": "at://did:plc:root/app.bsky.feed.post/3kroot", "cid": "bafyroot"}


async def test_a_reply_fetches_its_parent_once() -> None:
    server = Server()
    server.routes["com.atproto.repo.getRecord"] = httpx.Response(200, json={
        "uri": PARENT, "cid": "bafyparent",
        "value": {"$type": "app.bsky.feed.post", "text": "parent", "createdAt": "2026-01-01T00:00:00.000Z",
                  "reply": {"root": ROOT, "parent": ROOT}}})
    server.routes["com.atproto.repo.createRecord"] = httpx.Response(200, json={
        "uri": "at://did:plc:me/app.bsky.feed.post/3kmine", "cid": "bafymine"})
    async with client(server, username="me.test", password="pw") as bsky:
        await bsky.create_post("a reply", reply_uri=PARENT)
    reads = [r for r in server.requests if r.url.path.endswith("/com.atproto.repo.getRecord")]
    assert len(reads) == 1, [str(r.url) for r in reads]
    [create] = [r for r in server.requests if r.url.path.endswith("/com.atproto.repo.createRecord")]
    reply = json.loads(create.content)["record"]["reply"]
    assert reply == {"root": ROOT, "parent": {"uri": PARENT, "cid": "bafyparent"}}
