"""The CID value type: round trips, JSON, and the official data-model and CID-syntax fixtures."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import libipld
import pytest

from pysky_async import CID, InvalidInput
from pysky_async._json_body import atproto_json
from pysky_async._sync.blocks import cid_for
from pysky_async._sync.records import decode_record

INTEROP = Path(__file__).parent.parent / "data" / "atproto-interop"
EXAMPLE = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


def lines(name: str) -> list[str]:
    text = (INTEROP / name).read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line and not line.startswith("#")]


def test_round_trips_str_bytes_and_json() -> None:
    cid = CID.decode(EXAMPLE)
    assert str(cid) == EXAMPLE and repr(cid) == f"CID({EXAMPLE!r})"
    assert CID.from_bytes(bytes(cid)) == cid and hash(CID.from_bytes(bytes(cid))) == hash(cid)
    assert bytes(cid) == libipld.decode_multibase(EXAMPLE)[1]
    assert cid.json() == {"$link": EXAMPLE} and cid.codec == CID.DAG_CBOR
    assert CID(cid_for(b"x", 0x55)).codec == CID.RAW
    assert str(CID(cid_for(b"x"))) == libipld.encode_cid(cid_for(b"x"))
    assert pickle.loads(pickle.dumps(cid)) == cid
    assert len({cid, CID.decode(EXAMPLE)}) == 1 and cid != bytes(cid) and cid != EXAMPLE
    with pytest.raises(AttributeError):
        cid._raw = b""


@pytest.mark.parametrize("raw", [
    cid_for(b"x"), cid_for(b"x", 0x55), cid_for(b"x", 0x70),
    b"\x01\x71\x00\x03abc",  # an identity multihash
    b"\x01\x71\x13\x40" + bytes(64),  # sha2-512
    cid_for(b"x")[:9],  # truncated: libipld refuses it, base64 still prints it
    cid_for(b"x") + b"extra",  # libipld would print the CID without the trailing bytes
    b"\x12\x20" + bytes(32),  # CIDv0 bytes: printed as base32 bytes, never as "Qm..."
])
def test_str_is_the_rfc4648_base32_of_exactly_the_bytes(raw: bytes) -> None:
    # the fast path (libipld's encoder) and the fallback print the same text for every input
    expected = "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    assert str(CID(raw)) == expected


def test_decode_accepts_any_multibase_and_prints_base32() -> None:
    cid = CID.decode(EXAMPLE)
    base58 = libipld.encode_multibase("z", bytes(cid))
    assert CID.decode(base58) == cid and str(CID.decode(base58)) == EXAMPLE


@pytest.mark.parametrize("bad", ["", "bafy", "not a cid", "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"])
def test_decode_refuses_what_is_not_a_cidv1(bad: str) -> None:
    with pytest.raises(InvalidInput, match="CID"):
        CID.decode(bad)


def test_from_bytes_refuses_a_truncated_cid() -> None:
    with pytest.raises(InvalidInput, match="binary CID"):
        CID.from_bytes(cid_for(b"x")[:-1])
    with pytest.raises(InvalidInput):
        CID.from_bytes(b"\x12\x20" + hashlib.sha256(b"x").digest())  # a CIDv0 multihash


def test_official_cid_syntax_examples() -> None:
    """Every CIDv1 of the valid list decodes and round-trips; nothing of the invalid list decodes."""
    decoded = 0
    for text in lines("cid_syntax_valid.txt"):
        try:
            cid = CID.decode(text)
        except InvalidInput:
            continue  # syntactically a CID, but not a whole CIDv1 value (e.g. "z7x3CtScH765HvShXT")
        decoded += 1
        assert CID.decode(str(cid)) == cid and str(cid).startswith("b")
    assert decoded >= 3  # the bafy.../zdj7... examples
    for text in lines("cid_syntax_invalid.txt"):
        with pytest.raises(InvalidInput):
            CID.decode(text)


def _fixtures() -> list[dict[str, Any]]:
    data = json.loads((INTEROP / "data-model-fixtures.json").read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


@pytest.mark.parametrize("fixture", _fixtures(), ids=lambda f: f["cid"][-8:])
def test_official_data_model_fixtures(fixture: dict[str, Any]) -> None:
    """DAG-CBOR -> record with CID links -> atproto JSON equals the fixture's JSON; the block's CID matches."""
    block = base64.b64decode(fixture["cbor_base64"] + "==")
    assert str(CID(cid_for(block))) == fixture["cid"]
    record = decode_record(block)
    assert atproto_json(record) == fixture["json"]
    links = json.dumps(fixture["json"]).count('"$link"')
    assert _count_cids(record) == links


def _count_cids(value: Any) -> int:
    if isinstance(value, CID):
        return 1
    if isinstance(value, dict):
        return sum(_count_cids(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_cids(v) for v in value)
    return 0


def test_firehose_records_carry_links_as_cids() -> None:
    from pysky_async import CommitEvent, lex
    from pysky_async._streams.firehose import decode_frame

    from ..streams.repo_builder import RepoWriter, frame, tid

    blob = cid_for(b"an image", 0x55)
    post = {"$type": "app.bsky.feed.post", "text": "a picture", "createdAt": "2026-12-04T00:00:00.000Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {
                "$type": "blob", "ref": blob, "mimeType": "image/png", "size": 8}}]}}
    writer = RepoWriter("did:plc:cidfirehosetest000000000")
    event = decode_frame(frame(writer.commit([("create", f"app.bsky.feed.post/{tid()}", post)])))
    assert isinstance(event, CommitEvent)
    [op] = event.ops
    assert op.record is not None
    ref = op.record["embed"]["images"][0]["image"]["ref"]
    assert isinstance(ref, CID) and ref == CID(blob)
    assert atproto_json(op.record)["embed"]["images"][0]["image"]["ref"] == {"$link": str(CID(blob))}
    model = op.record_as(lex.app.bsky.feed.Post)
    assert model is not None and model.text == "a picture"
