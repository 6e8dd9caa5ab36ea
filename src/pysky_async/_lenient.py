"""Lenient parsing of what people type or paste, kept apart from the strict value types.

``at_uri_from_text`` takes an ``at://`` URI or a ``https://bsky.app/profile/<handle|did>/<post|
lists|feed>/<rkey>`` link, with surrounding spaces, a trailing slash, a query or a fragment;
``handle_from_text`` takes ``@alice.bsky.social`` with surrounding spaces. Both return the strict
types (``AtUri``, ``Handle``) and raise ``InvalidIdentifier`` when nothing valid is left.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._exceptions import InvalidIdentifier
from ._syntax import AtUri, Handle

_BSKY_APP_HOSTS = ("bsky.app", "www.bsky.app", "staging.bsky.app")
_COLLECTION_BY_PATH = {"post": "app.bsky.feed.post", "lists": "app.bsky.graph.list",
                       "feed": "app.bsky.feed.generator"}


def handle_from_text(value: str) -> Handle:
    """A handle typed by a person: ``" @Alice.bsky.social "`` -> ``Handle("alice.bsky.social")``."""
    if not isinstance(value, str):
        raise InvalidIdentifier(f"a handle must be a string, not {type(value).__name__}")
    return Handle(value.strip().removeprefix("@"))


def at_uri_from_text(value: str | AtUri) -> AtUri:
    """An ``AtUri`` from an ``at://`` URI or a bsky.app link as pasted (spaces, trailing ``/``,
    ``?query`` and ``#fragment`` are dropped)."""
    if isinstance(value, AtUri):
        return value
    if not isinstance(value, str):
        raise InvalidIdentifier(f"an AT-URI must be a string, not {type(value).__name__}")
    text = value.strip()
    if text.startswith(("https://", "http://")):
        return _from_link(text)
    if not text.startswith("at://"):
        raise InvalidIdentifier(
            f"{value!r} is not an AT-URI: expected 'at://<did or handle>/<collection>/<rkey>' "
            "or a https://bsky.app/profile/.../post/... link"
        )
    return AtUri.parse(text.split("#", 1)[0].split("?", 1)[0].rstrip("/"))


def _from_link(link: str) -> AtUri:
    parts = urlsplit(link)
    segments = [s for s in parts.path.split("/") if s]
    if parts.hostname not in _BSKY_APP_HOSTS or len(segments) != 4 or segments[0] != "profile" \
            or segments[2] not in _COLLECTION_BY_PATH:
        raise InvalidIdentifier(
            f"{link!r} is not a Bluesky post link: expected https://bsky.app/profile/<handle or did>/post/<rkey>"
        )
    try:
        return AtUri(segments[1], _COLLECTION_BY_PATH[segments[2]], segments[3])
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"{link!r} is not a valid Bluesky link: {exc}") from None
