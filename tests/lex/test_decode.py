"""lex.decode/convert/encode: the open-union fallback in its corners."""

from __future__ import annotations

import json

import msgspec
import pytest

from pysky_async import JsonObject, lex

feed, embed = lex.app.bsky.feed, lex.app.bsky.embed
AUTHOR = {"did": "did:plc:a", "handle": "a.test"}


def view(**extra: object) -> dict[str, object]:
    return {"uri": "at://did:plc:a/app.bsky.feed.post/1", "cid": "bafy", "author": AUTHOR, "record": {},
            "indexedAt": "2026-01-01T00:00:00Z", **extra}


def test_a_main_def_tagged_with_hash_main_is_still_typed() -> None:
    body = json.dumps(view(embed={"$type": "app.bsky.embed.external#view", "external": {
        "uri": "https://x", "title": "t", "description": "d"}}, labels=[])).encode()
    post = lex.decode(body, feed.PostView)
    assert isinstance(post.embed, embed.ExternalView)
    record = lex.convert({"$type": "app.bsky.feed.post#main", "text": "hi", "createdAt": "2026-01-01T00:00:00Z",
                          "embed": {"$type": "app.bsky.embed.images#main", "images": []}}, feed.Post)
    assert isinstance(record.embed, embed.Images)


def test_a_type_on_a_plain_ref_that_is_not_the_models_own_does_not_fail() -> None:
    body = json.dumps(view(author={**AUTHOR, "$type": "app.bsky.actor.defs#profileViewSomethingNewer"})).encode()
    assert lex.decode(body, feed.PostView).author.handle == "a.test"


def test_a_closed_union_still_rejects_an_unknown_type() -> None:
    # app.bsky.embed.recordWithMedia#view's media is open; com.atproto.repo.applyWrites#input's writes is closed
    with pytest.raises(msgspec.ValidationError):
        lex.convert({"repo": "did:plc:a", "writes": [{"$type": "com.atproto.repo.applyWrites#explode"}]},
                    lex.com.atproto.repo.ApplyWritesInput)


def test_a_model_holding_a_json_object_encodes_back_to_the_same_json() -> None:
    unknown = {"$type": "app.bsky.embed.hologram#view", "depth": 3}
    post = lex.decode(json.dumps(view(embed=unknown)).encode(), feed.PostView)
    assert isinstance(post.embed, JsonObject)
    assert json.loads(lex.encode(post))["embed"] == unknown
