"""Identifier value types: clear ValueErrors before any request."""

from __future__ import annotations

import datetime as dt

import pytest

from pysky_async import (
    AtUri,
    Datetime,
    Did,
    Handle,
    InvalidIdentifier,
    InvalidInput,
    Nsid,
    RecordKey,
    Tid,
    at_uri_from_text,
    handle_from_text,
)


@pytest.mark.parametrize("value", [
    "", "at://", "at:/did:plc:x", "did:plc:x/app.bsky.feed.post/1", "at://did:plc:x/not-an-nsid",
    "at://did:plc:x/app.bsky.feed.post/bad key", "at://did:plc:x/app.bsky.feed.post/..",
    "at://did:plc:x/app.bsky.feed.post/a/b", "at://bad_handle/app.bsky.feed.post/1",
    "https://example.com/profile/a.test/post/1", "https://bsky.app/profile/a.test/post",
    "https://bsky.app/profile/not a handle/post/3k", "https://bsky.app/search?q=x",
])
def test_malformed_uris_and_links_raise(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        at_uri_from_text(value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidInput)
    assert repr(value)[1:-1] in str(info.value) or value == ""


def test_uris_and_bsky_app_links_parse() -> None:
    uri = AtUri.parse("at://did:plc:abc/app.bsky.feed.post/3k2la3b")
    assert (uri.authority, uri.collection, uri.rkey) == ("did:plc:abc", "app.bsky.feed.post", "3k2la3b")
    assert str(uri) == "at://did:plc:abc/app.bsky.feed.post/3k2la3b"
    link = at_uri_from_text(" https://bsky.app/profile/Alice.Test/post/3k2la3b ")
    assert str(link) == "at://alice.test/app.bsky.feed.post/3k2la3b" and not link.has_did
    assert at_uri_from_text("https://bsky.app/profile/did:plc:abc/post/3k2la3b").has_did
    assert str(AtUri.parse("at://did:plc:abc")) == "at://did:plc:abc"
    assert at_uri_from_text("at://did:plc:abc/app.bsky.feed.post/3k2la3b/#x") == uri


@pytest.mark.parametrize("value", [
    " at://did:plc:abc", "at://did:plc:abc/", "at://did:plc:abc/app.bsky.feed.post#frag",
    "at://did:plc:abc?q=1", "https://bsky.app/profile/alice.test/post/3k2la3b",
])
def test_at_uri_parse_is_strict_and_points_to_the_lenient_helper(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="at_uri_from_text"):
        AtUri.parse(value)


def test_at_uri_constructor_given_a_whole_uri_says_use_parse() -> None:
    with pytest.raises(InvalidIdentifier, match=r"use AtUri\.parse"):
        AtUri("at://did:plc:abc/app.bsky.feed.post/3k2la3b")


@pytest.mark.parametrize(("kind", "value"), [
    (Handle, " alice.test"), (Handle, "alice.test "), (Handle, "@alice.test"), (Nsid, "com.example-.foo"),
    (Handle, "\u212a.test"),  # KELVIN SIGN lower-cases to an ASCII k: still not a handle
])
def test_value_types_do_not_trim_or_guess(kind: type[str], value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        kind(value)


def test_handle_helper_takes_typed_handles() -> None:
    assert handle_from_text("  @Alice.Bsky.Social ") == Handle("alice.bsky.social")
    with pytest.raises(InvalidIdentifier):
        handle_from_text("@alice")


def test_datetime_of_an_aware_datetime_and_not_a_naive_one() -> None:
    moment = dt.datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert Datetime.of(moment) == "2024-05-01T12:00:00.123Z"
    with pytest.raises(InvalidIdentifier, match="time zone"):
        Datetime.of(dt.datetime(2024, 5, 1))


@pytest.mark.parametrize(("kind", "bad"), [
    (Did, "did:plc"), (Did, "plc:abc"), (Did, "did:PLC:abc"), (Did, "did:plc:abc:"),
    (Handle, "alice"), (Handle, "-alice.test"), (Handle, "alice..test"), (Handle, "al ice.test"),
    (Handle, "alice.123"), (Nsid, "app.bsky"), (Nsid, "app..bsky.post"), (Nsid, "app.bsky.1post"),
    (RecordKey, ""), (RecordKey, "."), (RecordKey, "a/b"), (Tid, "3jzfcijpj2z2"), (Tid, "zzzzzzzzzzzzz"),
])
def test_bad_identifiers_raise_with_an_example(kind: type[str], bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match="expected something like"):
        kind(bad)


def test_good_identifiers() -> None:
    assert Did("did:web:localhost%3A2583").method == "web"
    assert Handle("Alice.Bsky.Social") == "alice.bsky.social"
    assert Nsid("com.example.fooBar") == "com.example.fooBar"
    assert RecordKey("self") == "self"


def test_tids_are_13_chars_sortable_and_round_trip() -> None:
    tids = [Tid.next() for _ in range(1000)]
    assert tids == sorted(tids) and len(set(tids)) == 1000
    assert all(len(t) == 13 for t in tids)
    made = Tid.from_parts(1_700_000_000_000_000, 42)
    assert Tid(made).timestamp_us == 1_700_000_000_000_000 and Tid(made).clock_id == 42
