"""Validation on demand: the official lexicon record-data vectors, and the pinned Bluesky
lexicons checked on models (lengths in bytes and graphemes, formats, blobs, unions, nesting)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pysky_async import InvalidInput, lex
from pysky_async.lex._validate import validate_data

VECTORS = Path(__file__).with_name("vectors")
CATALOG = json.loads((VECTORS / "record.json").read_text("utf-8"))
SCHEMAS = {CATALOG["id"]: CATALOG["defs"]}


def cases(name: str) -> list[Any]:
    return [pytest.param(case["data"], id=case["name"])
            for case in json.loads((VECTORS / f"record-data-{name}.json").read_text("utf-8"))]


@pytest.mark.parametrize("data", cases("valid"))
def test_official_valid_records_pass(data: dict[str, Any]) -> None:
    validate_data(data, data["$type"], SCHEMAS)


@pytest.mark.parametrize("data", cases("invalid"))
def test_official_invalid_records_raise_invalid_input(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match=r"^\$"):
        validate_data(data, data["$type"], SCHEMAS)


feed, embed = lex.app.bsky.feed, lex.app.bsky.embed
NOW = "2026-12-04T12:00:00.000Z"
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
BLOB = lex.Blob(mime_type="image/png", ref=lex.CidLink(link=CID), size=1_000)


def image(blob: lex.Blob = BLOB, alt: str = "a cat") -> Any:
    return embed.ImagesImage(image=blob, alt=alt)


def test_a_valid_post_with_images_passes() -> None:
    lex.validate(feed.Post(text="héllo 👋🏽", created_at=NOW, langs=["en", "pt-BR"],
                           embed=embed.Images(images=[image(), image()])))


@pytest.mark.parametrize(("post", "where", "rule"), [
    (feed.Post(text="👋🏽" * 301, created_at=NOW), r"\$\.text", "301 graphemes, at most 300"),
    (feed.Post(text="a" * 3001, created_at=NOW), r"\$\.text", "3001 UTF-8 bytes, at most 3000"),
    (feed.Post(text="hi", created_at="yesterday"), r"\$\.createdAt", "not a valid datetime"),
    (feed.Post(text="hi", created_at=NOW, langs=["not a language"]), r"\$\.langs\[0\]", "language"),
    (feed.Post(text="hi", created_at=NOW, embed=embed.Images(images=[image()] * 5)), r"\$\.embed\.images",
     "5 items, at most 4"),
    (feed.Post(text="hi", created_at=NOW, embed=embed.Images(images=[image(lex.Blob(
        mime_type="text/plain", ref=BLOB.ref, size=10))])), r"\$\.embed\.images\[0\]\.image\.mimeType",
     "not accepted"),
    (feed.Post(text="hi", created_at=NOW, embed=embed.Images(images=[image(lex.Blob(
        mime_type="image/png", ref=BLOB.ref, size=2_000_001))])), r"\$\.embed\.images\[0\]\.image", "maxSize"),
    (feed.Post(text="hi", created_at=NOW, reply=feed.PostReplyRef(
        root=lex.com.atproto.repo.StrongRef(uri="not-a-uri", cid=CID),
        parent=lex.com.atproto.repo.StrongRef(uri="at://did:plc:abc/app.bsky.feed.post/1", cid=CID))),
     r"\$\.reply\.root\.uri", "at-uri"),
])
def test_a_post_breaking_a_rule_raises_invalid_input_naming_the_field_and_the_rule(
        post: Any, where: str, rule: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^{where}: .*{rule}"):
        lex.validate(post)


def test_validate_takes_models_only() -> None:
    with pytest.raises(InvalidInput, match="lexicon model"):
        lex.validate({"text": "hi"})
