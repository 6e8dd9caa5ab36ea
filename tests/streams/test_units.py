"""Stream pieces without a server: the watermark, frame and Jetstream decoding, filters."""

from __future__ import annotations

import json

import libipld
import pytest
import zstandard

from pysky_async import FrameDecodeError, StreamServerError
from pysky_async._streams import CommitEvent, InfoEvent, JetstreamSource, RepoOp, decode_frame, v1_dictionary
from pysky_async._streams.consumer import _Filters
from pysky_async._streams.watermark import Watermark

encode = libipld.encode_dag_cbor


def test_watermark_passes_only_a_fully_handled_prefix() -> None:
    mark = Watermark(cursor=10)
    entries = [mark.add(c) for c in (11, 12, None, 13, 14)]
    mark.finish(entries[1])
    mark.finish(entries[3])
    assert (mark.cursor, len(mark)) == (10, 5)  # 11 is still running
    mark.finish(entries[0])
    assert (mark.cursor, len(mark)) == (12, 3)  # 11 and 12 done; the #info entry (None) is not
    mark.finish(entries[2])
    assert (mark.cursor, len(mark)) == (13, 1)
    cursor, passed, callbacks = mark.take()
    assert (cursor, passed, callbacks) == (13, 4, [])
    mark.give_back(passed, callbacks)  # a failed commit: counted again next time
    assert mark.take()[1] == 4


def test_info_too_big_and_error_frames() -> None:
    info = decode_frame(encode({"op": 1, "t": "#info"}) + encode({"name": "OutdatedCursor", "message": "too old"}))
    assert isinstance(info, InfoEvent) and (info.name, info.message, info.cursor) == ("OutdatedCursor", "too old", None)
    body = {"seq": 2**40, "repo": "did:plc:x", "time": "2026-12-01T00:00:00Z", "rev": "r", "tooBig": True,
            "blocks": b"", "ops": [{"action": "create", "path": "app.bsky.feed.post/abc", "cid": None}]}
    big = decode_frame(encode({"op": 1, "t": "#commit"}) + encode(body))
    assert isinstance(big, CommitEvent) and big.too_big and big.cursor == 2**40  # 64-bit seqs
    assert big.ops == (RepoOp("create", "app.bsky.feed.post", "abc", None, None),)
    with pytest.raises(StreamServerError, match="the server sent error ConsumerTooSlow: slow") as raised:
        decode_frame(encode({"op": -1}) + encode({"error": "ConsumerTooSlow", "message": "slow"}))
    assert (raised.value.error, raised.value.server_message) == ("ConsumerTooSlow", "slow")
    assert not isinstance(raised.value, FrameDecodeError)  # not "undecodable": the server said what was wrong
    with pytest.raises(StreamServerError) as raised:
        decode_frame(encode({"op": -1}) + encode({"error": "FutureCursor"}))  # message is optional
    assert (raised.value.error, raised.value.server_message) == ("FutureCursor", None)
    with pytest.raises(FrameDecodeError, match=r"not \{error, message\}"):
        decode_frame(encode({"op": -1}) + encode({"message": "no name"}))


def jetstream_event(kind: str = "commit") -> dict[str, object]:
    return {"did": "did:plc:a", "time_us": 1_700_000_000_000_000, "kind": kind,
            "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.like", "rkey": "k",
                       "cid": "bafy", "record": {"$type": "app.bsky.feed.like"}}}


def test_jetstream_messages_plain_compressed_and_bad() -> None:
    plain = JetstreamSource(["wss://js.example"]).decode(json.dumps(jetstream_event()))
    assert isinstance(plain, CommitEvent) and plain.cursor == 1_700_000_000_000_000
    assert plain.ops[0].path == "app.bsky.feed.like/k" and plain.time.startswith("2023-11-14T22:13:20")
    compressor = zstandard.ZstdCompressor(dict_data=zstandard.ZstdCompressionDict(v1_dictionary()))
    compressed = JetstreamSource(["wss://js.example"], compress=True)
    assert compressed.decode(compressor.compress(json.dumps(jetstream_event()).encode())) == plain
    for bad in (b"\x28\xb5\x2f\xfd garbage", "not json", json.dumps(jetstream_event("labels")), "[1]"):
        source = compressed if isinstance(bad, bytes) else JetstreamSource(["wss://js.example"])
        with pytest.raises(FrameDecodeError):
            source.decode(bad)


def test_jetstream_urls_rewind_the_cursor_and_move_many_dids_to_the_hello() -> None:
    source = JetstreamSource(["https://a.example", "b.example"], collections=["app.bsky.feed.*"], dids=["did:plc:a"],
                             compress=True, rewind=2.0)
    assert source.urls(10_000_000) == [
        f"wss://{host}/subscribe?wantedCollections=app.bsky.feed.%2A&wantedDids=did%3Aplc%3Aa&cursor=8000000&"
        "compress=true" for host in ("a.example", "b.example")]
    many = JetstreamSource(["wss://a.example"], dids=[f"did:plc:{n}" for n in range(101)])
    assert many.urls(None) == ["wss://a.example/subscribe?requireHello=true"]
    assert len(many.options_update()["payload"]["wantedDids"]) == 101


def test_filters_narrow_a_commit_to_the_wanted_collections() -> None:
    ops = (RepoOp("create", "app.bsky.feed.post", "1", None), RepoOp("create", "app.bsky.graph.follow", "2", None))
    commit = CommitEvent(1, "did:plc:a", "", ops=ops)
    assert _Filters(["app.bsky.feed.*"], None).apply(commit) == CommitEvent(1, "did:plc:a", "", ops=ops[:1])
    assert _Filters(["app.bsky.actor.profile"], None).apply(commit) is None
    assert _Filters(None, ["did:plc:b"]).apply(commit) is None
    assert _Filters(None, None).apply(commit) is commit
