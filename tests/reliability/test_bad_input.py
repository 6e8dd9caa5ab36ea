"""Bad input gets a PyskyError before any request: fuzzed post text with lone surrogates (1,423 of
10,000 raised UnicodeEncodeError before), non-strings where identifiers go."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from pysky_async import AsyncBskyClient, AtUri, InvalidInput, InvalidPost, Post, detect_facets

pytestmark = pytest.mark.anyio

PIECES = ["hello ", "@alice.bsky.social ", "#tag ", "$AAPL ", "https://example.com/x ", "👩🏽‍💻", "🇯🇵", "é", "नमस्ते",
          "שלום ", "\ufeff", "\u0301", "１２３ ", "main.go "]


def fuzzed_texts(count: int, seed: int = 14) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(PIECES) for _ in range(rng.randrange(1, 8))]
        if rng.random() < 0.15:  # a lone surrogate somewhere, as a bad decoder or a cut UTF-16 pair leaves
            parts.insert(rng.randrange(len(parts) + 1), chr(rng.randrange(0xD800, 0xE000)))
        texts.append("".join(parts))
    return texts


def test_fuzzed_post_text_raises_only_invalid_post() -> None:
    bad = 0
    for text in fuzzed_texts(10_000):
        has_surrogate = any(0xD800 <= ord(c) < 0xE000 for c in text)
        try:
            Post(text).check()
            detect_facets(text)
        except InvalidPost as exc:
            assert has_surrogate and "lone surrogate" in str(exc), text
            bad += 1
        else:
            assert not has_surrogate, f"{text!r} passed"
    assert 1_000 < bad < 2_000


async def test_a_post_with_a_lone_surrogate_sends_nothing(tmp_path: Path) -> None:
    sent: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(500)

    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http, \
            AsyncBskyClient(username="me.test", password="pw", auth_host="https://pds.test", retry=None,
                            database_url=f"sqlite+aiosqlite:///{tmp_path}/b.sqlite3", http_client=http) as bsky:
        with pytest.raises(InvalidPost, match=r"lone surrogate \('\\ud83d' at position 6\)"):
            await bsky.create_post("hello \ud83d")
    assert sent == [], "not even a login"


@pytest.mark.parametrize("value", [None, 5, b"at://did:plc:x/c/r", ["at://x"]])
def test_identifiers_that_are_not_strings_are_invalid_input(value: object) -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        AtUri.parse(value)  # type: ignore[arg-type]
