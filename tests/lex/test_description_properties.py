"""Lexicon properties *named* ``description`` (feed generators, profiles, lists) are fields with
rules, not documentation: ``lex.validate`` checks them (the pinned schemas once dropped them along
with the documentation strings)."""

from __future__ import annotations

import pytest

from pysky_async import InvalidInput
from pysky_async.lex._validate import pinned_schemas, validate_data

NOW = "2026-12-04T12:00:00.000Z"


@pytest.mark.parametrize(("nsid", "record", "limit"), [
    ("app.bsky.feed.generator", {"did": "did:web:feeds.example.com", "displayName": "Feed", "createdAt": NOW}, 300),
    ("app.bsky.actor.profile", {}, 256),
    ("app.bsky.graph.list", {"purpose": "app.bsky.graph.defs#curatelist", "name": "L", "createdAt": NOW}, 300),
])
def test_description_lengths_are_checked(nsid: str, record: dict[str, str], limit: int) -> None:
    validate_data({**record, "description": "d" * limit}, nsid)
    with pytest.raises(InvalidInput, match="description"):
        validate_data({**record, "description": "d" * (limit + 1)}, nsid)


def test_documentation_strings_are_still_left_out() -> None:
    generator = pinned_schemas()["app.bsky.feed.generator"]["main"]
    assert "description" not in generator
    assert generator["record"]["properties"]["description"] == {"maxGraphemes": 300, "maxLength": 3000,
                                                                "type": "string"}
