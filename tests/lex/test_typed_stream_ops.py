"""Stream ops give a typed record on request: ``op.record_as(lex.app.bsky.feed.Post)``, for
firehose records (DAG-CBOR: binary CID links) and Jetstream records (JSON) alike."""

from __future__ import annotations

import re

import libipld
import pytest

from pysky_async import CID, InvalidInput, InvalidResponse, lex
from pysky_async._streams.events import RepoOp
from pysky_async._sync.blocks import RAW, cid_for, cid_str
from pysky_async._sync.repo import RepoRecord

IMAGE_CID = cid_for(b"an image", RAW)


def cbor_with_link(cid: bytes) -> bytes:
    """A DAG-CBOR map {"ref": <CID link, tag 42>}: what a blob's ref is inside a firehose block."""
    data = b"\x00" + cid
    return b"\xa1\x63ref" + b"\xd8\x2a" + bytes([0x58, len(data)]) + data


def firehose_post() -> dict[str, object]:
    ref = libipld.decode_dag_cbor(cbor_with_link(IMAGE_CID))["ref"]  # as the firehose decodes a block
    assert isinstance(ref, bytes)
    return {"$type": "app.bsky.feed.post", "text": "cat", "createdAt": "2026-01-01T00:00:00.000Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [
                {"alt": "a cat", "image": {"$type": "blob", "ref": ref, "mimeType": "image/jpeg", "size": 8}}]}}


def test_a_firehose_record_with_binary_cid_links_comes_as_the_model() -> None:
    post = RepoOp("create", "app.bsky.feed.post", "3k", "bafyrei", firehose_post()).record_as(lex.app.bsky.feed.Post)
    assert isinstance(post, lex.app.bsky.feed.Post) and post.text == "cat"
    assert isinstance(post.embed, lex.app.bsky.embed.Images)
    image = post.embed.images[0].image
    assert image.ref is not None and image.ref.link == cid_str(IMAGE_CID) and image.mime_type == "image/jpeg"


def test_a_jetstream_record_comes_as_the_model_with_unknown_fields_tolerated() -> None:
    record = {"$type": "app.bsky.feed.like", "createdAt": "2026-01-01T00:00:00Z", "someFutureField": {"x": 1},
              "subject": {"uri": "at://did:plc:a/app.bsky.feed.post/1", "cid": "bafyrei"}}
    like = RepoOp("create", "app.bsky.feed.like", "3k", "bafyrei", record).record_as(lex.app.bsky.feed.Like)
    assert like is not None and like.subject.uri == "at://did:plc:a/app.bsky.feed.post/1"


def test_a_delete_has_no_record_and_another_collection_is_refused() -> None:
    assert RepoOp("delete", "app.bsky.feed.post", "3k", None).record_as(lex.app.bsky.feed.Post) is None
    with pytest.raises(InvalidInput, match=re.escape("app.bsky.feed.like, not app.bsky.feed.post")):
        RepoOp("create", "app.bsky.feed.like", "3k", "c", {"$type": "app.bsky.feed.like"}).record_as(
            lex.app.bsky.feed.Post)


@pytest.mark.parametrize("record", [{"$type": "app.bsky.feed.post", "createdAt": "2026-01-01T00:00:00Z"},
                                    {"$type": "app.bsky.feed.post", "text": ["no"], "createdAt": "x"}])
def test_a_record_that_does_not_fit_raises_invalid_response_naming_its_path(record: dict[str, object]) -> None:
    with pytest.raises(InvalidResponse, match=re.escape("app.bsky.feed.post/3k")):
        RepoOp("create", "app.bsky.feed.post", "3k", "c", record).record_as(lex.app.bsky.feed.Post)


def test_a_delete_with_another_collections_model_is_refused_too() -> None:
    with pytest.raises(InvalidInput, match=re.escape("check op.collection first")):
        RepoOp("delete", "app.bsky.feed.like", "3k", None).record_as(lex.app.bsky.feed.Post)


def test_a_repo_record_converts_and_refuses_as_an_op_does() -> None:
    """``RepoRecord.record_as`` (a verified repo's) shares the op's conversion; its messages name ``record``."""
    post = RepoRecord("app.bsky.feed.post", "3k", CID(IMAGE_CID), firehose_post()).record_as(lex.app.bsky.feed.Post)
    assert post.text == "cat" and isinstance(post.embed, lex.app.bsky.embed.Images)
    assert post.embed.images[0].image.ref is not None and post.embed.images[0].image.ref.link == cid_str(IMAGE_CID)
    with pytest.raises(InvalidInput, match=re.escape("check record.collection first")):
        RepoRecord("app.bsky.feed.like", "3k", CID(IMAGE_CID), {}).record_as(lex.app.bsky.feed.Post)
    with pytest.raises(InvalidResponse, match=re.escape("app.bsky.feed.post/3k does not fit Post")):
        RepoRecord("app.bsky.feed.post", "3k", CID(IMAGE_CID), {"text": ["no"]}).record_as(lex.app.bsky.feed.Post)
