"""Tolerance: 10,000 seeded random answers of the common endpoints, with unknown ``$type``s in
open unions, extra fields everywhere and optional fields left out, decode without an exception;
an unknown ``$type`` becomes a ``JsonObject`` and everything known stays typed."""

from __future__ import annotations

import random
import types
import typing
from typing import Any

import msgspec
import pytest

from pysky_async import JsonObject, lex
from pysky_async.lex import _base

feed, actor, graph = lex.app.bsky.feed, lex.app.bsky.actor, lex.app.bsky.graph
OUTPUTS: list[type[msgspec.Struct]] = [
    feed.GetTimelineOutput, feed.GetAuthorFeedOutput, feed.GetPostThreadOutput, feed.GetPostsOutput,
    feed.GetLikesOutput, feed.GetRepostedByOutput, feed.SearchPostsOutput, feed.GetFeedOutput,
    feed.GetQuotesOutput, actor.ProfileViewDetailed, actor.GetProfilesOutput, actor.SearchActorsOutput,
    actor.GetPreferencesOutput, graph.GetFollowsOutput, graph.GetFollowersOutput, graph.GetListsOutput,
    lex.app.bsky.notification.ListNotificationsOutput, lex.com.atproto.repo.GetRecordOutput,
    lex.com.atproto.repo.ListRecordsOutput, lex.com.atproto.server.GetSessionOutput,
]
N_ANSWERS = 10_000
MAX_DEPTH = 5


class Maker:
    """Random JSON for a model type: optional fields present half the time, an extra field in
    every object, and in an open union a member with an unknown ``$type`` one time in four."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.unknown_types = 0
        self.fields: dict[type, tuple[msgspec.structs.FieldInfo, ...]] = {}

    def value(self, tp: Any, depth: int) -> Any:
        rng = self.rng
        if tp is str:
            return rng.choice(["", "x", "did:plc:abc", "ünïcode ✓", "2026-01-01T00:00:00Z"])
        if tp is bool:
            return rng.random() < 0.5
        if tp is int:
            return rng.randint(-5, 10_000)
        if tp is Any or tp is msgspec.Raw:  # msgspec.Raw: a lazy `unknown` field (_base.lazy_json)
            return {"$type": "app.example.anything", "n": rng.randint(0, 9)}
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            return self.struct(tp, depth)
        origin = typing.get_origin(tp)
        if origin is list:
            (item,) = typing.get_args(tp)
            return [self.value(item, depth + 1) for _ in range(rng.randint(0, 3 if depth < MAX_DEPTH else 0))]
        if origin is dict:
            return {"k": rng.randint(0, 9), "$type": "app.example.record"}
        if origin is typing.Union or origin is types.UnionType:
            members = [m for m in typing.get_args(tp) if m is not type(None)]
            structs = [m for m in members if isinstance(m, type) and issubclass(m, msgspec.Struct)]
            if _base._UNKNOWN in structs and rng.random() < 0.25:
                self.unknown_types += 1
                return {"$type": f"app.example.future#v{rng.randint(0, 99)}", "field": [1, {"a": None}]}
            known = [m for m in members if m is not _base._UNKNOWN]
            return self.value(rng.choice(known), depth)
        raise AssertionError(f"no maker for {tp!r}")

    def struct(self, cls: type[msgspec.Struct], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        tag = cls.__struct_config__.tag
        if tag is not None and cls is not _base._UNKNOWN:
            out["$type"] = tag
        if cls not in self.fields:
            self.fields[cls] = msgspec.structs.fields(cls)
        for field in self.fields[cls]:
            required = field.default is msgspec.NODEFAULT and field.default_factory is msgspec.NODEFAULT
            if required or (depth < MAX_DEPTH and self.rng.random() < 0.5):
                out[field.encode_name] = self.value(strip_none(field.type) if not required else field.type, depth + 1)
        out[f"futureField{self.rng.randint(0, 9)}"] = {"nested": [1, 2, {"$type": "x.y.z"}]}
        return out


def strip_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if not args or typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return tp
    return args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007


def json_objects(value: Any) -> int:
    if isinstance(value, JsonObject):
        return 1
    if isinstance(value, msgspec.Struct):
        return sum(json_objects(getattr(value, name)) for name in value.__struct_fields__)
    if isinstance(value, list):
        return sum(json_objects(item) for item in value)
    return 0


@pytest.mark.slow  # 20,000 answers: once, in the full suite, not on every Python
@pytest.mark.parametrize("seed", [0, 1])
def test_ten_thousand_generated_answers_decode_without_an_exception(seed: int) -> None:
    maker = Maker(random.Random(seed))
    decoded_unknowns = 0
    for n in range(N_ANSWERS // 2):
        output = OUTPUTS[n % len(OUTPUTS)]
        before = maker.unknown_types
        body = msgspec.json.encode(maker.value(output, 0))
        value = lex.decode(body, output)
        assert isinstance(value, output)
        found = json_objects(value)
        assert found == maker.unknown_types - before, body  # each unknown $type, and only those
        decoded_unknowns += found
    assert decoded_unknowns > N_ANSWERS // 20  # the open-union path was really taken
