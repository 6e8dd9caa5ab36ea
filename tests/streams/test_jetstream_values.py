"""Jetstream records carry the same value types as firehose records: a blob's ``ref`` (a CID link)
is a ``CID`` and a byte string is ``bytes`` on both, so one handler works on either source.

The records are written to the real PDS and read back from its firehose and from the
Jetstream-compatible server fed by that firehose (which writes links as ``{"$link"}`` and bytes
as ``{"$bytes"}``, as Jetstream does)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pysky_async import CID, AsyncBskyClient
from pysky_async._streams import (
    CommitEvent,
    EventContext,
    FirehoseSource,
    JetstreamSource,
    Source,
    StreamConsumer,
    StreamEvent,
)
from pysky_async._streams.jetstream import decode_message

from ..realnet.pds import PdsServer
from ..test_pds_sessions import listen_host
from .conftest import new_accounts
from .jetstream_server import JetstreamServer
from .workload import wait_for

pytestmark = pytest.mark.anyio

LINK = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"


def jetstream_commit(record: dict[str, Any]) -> dict[str, Any]:
    return {"did": "did:plc:abc", "time_us": 1725911162329308, "kind": "commit",
            "commit": {"rev": "3l3qo2vutsw2b", "operation": "create", "collection": "app.bsky.feed.post",
                       "rkey": "3l3qo2vuowo2b", "record": record, "cid": LINK}}


def test_links_and_bytes_in_a_jetstream_record_become_cid_and_bytes() -> None:
    record = {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-09-09T19:46:02.102Z",
              "embed": {"$type": "app.bsky.embed.images", "images": [
                  {"alt": "", "image": {"$type": "blob", "ref": {"$link": LINK}, "mimeType": "image/png",
                                        "size": 72}}]},
              "raw": {"$bytes": "AP9ieXRlcw"}}
    source = JetstreamSource(["ws://127.0.0.1:1"])
    [op] = source.decode(json.dumps(jetstream_commit(record))).ops  # type: ignore[attr-defined]
    assert op.record is not None
    assert op.record["embed"]["images"][0]["image"]["ref"] == CID.decode(LINK)
    assert op.record["raw"] == b"\x00\xffbytes"
    assert op.record["text"] == "hi"


def test_a_record_without_links_is_decoded_as_before() -> None:
    record = {"$type": "app.bsky.feed.like", "createdAt": "2024-09-09T19:46:02.102Z",
              "subject": {"uri": "at://did:plc:abc/app.bsky.feed.post/3l3qo2vuowo2b", "cid": LINK}}
    [op] = JetstreamSource(["ws://127.0.0.1:1"]).decode(json.dumps(jetstream_commit(record))).ops  # type: ignore[attr-defined]
    assert op.record == record  # a strong ref's cid is a string in the lexicon, and stays one
    [op] = decode_message(jetstream_commit(record)).ops  # type: ignore[attr-defined]
    assert op.record == record


def test_a_malformed_link_is_left_as_it_came() -> None:
    record = {"$type": "com.example.x", "ref": {"$link": "not a cid"}, "b": {"$bytes": "!!"}}
    [op] = JetstreamSource(["ws://127.0.0.1:1"]).decode(json.dumps(jetstream_commit(record))).ops  # type: ignore[attr-defined]
    assert op.record == record


async def records_from(source: Source, did: str, count: int) -> dict[str, Any]:
    records: dict[str, Any] = {}

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if isinstance(event, CommitEvent) and event.did == did:
            records.update({op.path: op.record for op in event.ops})

    consumer = StreamConsumer(source, handler, start_cursor=0)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: len(records) >= count)
    finally:
        await consumer.stop()
        await task
    return records


async def test_one_handler_sees_the_same_records_on_the_firehose_and_on_jetstream(pds: PdsServer) -> None:
    [account] = new_accounts(pds, 1)
    async with AsyncBskyClient(username=account.handle, password=account.password, auth_host=listen_host(pds),
                               plc_directory=pds.plc_url, database_url=":memory:") as bsky:
        blob = await bsky.upload_blob(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
        await bsky.create_record("app.bsky.feed.post", {
            "text": "with an image", "createdAt": "2026-01-01T00:00:00Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]}})
        await bsky.create_record("com.example.raw", {"raw": b"\x00\xffbytes", "link": CID.decode(LINK)},
                                 validate=False)
    jetstream = JetstreamServer(pds.listen_url)
    await jetstream.start()
    try:
        await jetstream.caught_up()
        from_jetstream = await records_from(JetstreamSource([jetstream.url], dids=[account.did]), account.did, 2)
    finally:
        await jetstream.stop()
    from_firehose = await records_from(FirehoseSource(pds.listen_url), account.did, 2)
    assert from_jetstream == from_firehose
    [post] = [r for path, r in from_jetstream.items() if path.startswith("app.bsky.feed.post/")]
    assert isinstance(post["embed"]["images"][0]["image"]["ref"], CID)
    [raw] = [r for path, r in from_jetstream.items() if path.startswith("com.example.raw/")]
    assert raw["raw"] == b"\x00\xffbytes" and raw["link"] == CID.decode(LINK)
