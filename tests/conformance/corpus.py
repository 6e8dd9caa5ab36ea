"""Deterministic generated texts for the differential tests (same seed, same corpus, every run)."""

from __future__ import annotations

import random

from pysky_async._detection import TOP_LEVEL_DOMAINS

SEED = 20261201

EMOJI = ["🦋", "👍🏽", "🇫🇷", "🇺🇸", "👩\u200d👩\u200d👧", "🏳\ufe0f\u200d🌈", "#\ufe0f\u20e3", "1\ufe0f\u20e3", "❤\ufe0f",
         "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"]
COMBINING = ["e\u0301", "a\u0308\u0323", "n\u0303", "\u0301", "o\u20e2"]
SCRIPTS = ["שלום", "مرحبا", "\u05d0\u05b8", "नमस्ते", "क्षत्रिय", "\u094d\u0915", "ক্ষ", "日本語", "한국어",
           "\u1100\u1161\u11a8", "ไทย", "Ελλάδα", "Привет", "straße", "ſtop", "\u212a", "İstanbul"]
DIGITS = ["123", "٣", "١٢٣", "०१२", "१", "𝟙𝟚", "٣a", "x١"]
SPACES = [" ", " ", " ", "\n", "\r\n", "\t", "\u00a0", "\u3000", "\u2028", "\u202f", "\ufeff", "\u200b", "\x1c",
          "\x85", "\u2009", ""]
PUNCT = [".", ",", "!", "?", ";", ":", ")", "(", "'", '"', "\u2019", "…", "—", "-", "_", "...", "!?", "»", "«",
         "¿", "।", "،", "*", "/"]
WORDS = ["hello", "the", "main.go", "notes.txt", "e.g.", "v1.2", "file.tar.gz", "x@y", "not@right", "a..b",
         "README.md", "index.php", "script.py", "image.png", "e.g./foo", "1.5", "3.14.com"]
COMMON_TLDS = ["com", "org", "net", "social", "app", "dev", "io", "photography", "music", "blue", "test", "local",
               "onion", "go", "md", "py", "txt", "png", "php", "co", "uk", "COM", "Org", "xn--p1ai", "invalid"]


def _tld(rng: random.Random, extra: list[str]) -> str:
    if extra and rng.random() < 0.03:
        return rng.choice(extra)
    known: list[str] = sorted(TOP_LEVEL_DOMAINS)  # a frozenset of Any: tld's list is untyped
    return rng.choice(rng.choice([COMMON_TLDS, known]))


def _label(rng: random.Random) -> str:
    return rng.choice(["alice", "bob", "band", "x", "a-b", "full123-chars", "UPPER", "b0b", "-lead", "trail-",
                       "9lives", "xn--bcher-kva", "o" * rng.choice([1, 63, 64])])


def _domain(rng: random.Random, extra: list[str]) -> str:
    return ".".join(_label(rng) for _ in range(rng.randint(1, 3))) + "." + _tld(rng, extra)


def _piece(rng: random.Random, extra: list[str]) -> str:
    kind = rng.randrange(12)
    if kind == 0:
        return "@" + _domain(rng, extra) + rng.choice(["", "", ".", "!", "é", "_x", "-", ")"])
    if kind == 1:
        scheme = rng.choice(["https://", "http://", "HTTPS://", "Http://", "", "", "ftp://"])
        path = rng.choice(["", "/", "/foo/bar", "/a?b=c#d", "/thing_(cool)", "/(x", "/ünï", "/%20"])
        return scheme + _domain(rng, extra) + path + rng.choice(["", "", ".", ",", ")", "!", "?:"])
    if kind == 2:
        body = rng.choice(["tag", "Tag", "1", "1a", "a1", "#hash", "double#rainbow", "with,punct", "n0n3s@n5e!",
                           "🦋", "butter🦋fly", "\ufe0ftag", "\u20e2tag", "a\u200bb", "tag___...", "日本", "١٢٣",
                           "x" * rng.choice([63, 64, 65]), "🇫🇷" * rng.choice([63, 64, 65]), "a\u0301" * 64,
                           "" ]) + rng.choice(["", "", "!", ".", "?", "…"])
        return rng.choice(["#", "#", "＃", "##"]) + body
    if kind == 3:
        ticker = rng.choice(["AAPL", "aapl", "A", "GOOGL", "TOOLONG", "100", "ABC12", "ABC123", "BTC", "éA", ""])
        return "$" + ticker + rng.choice(["", "", ".", ",", ")", "'", "\u2019", "!", "x", "-"])
    if kind == 4:
        return rng.choice(EMOJI)
    if kind == 5:
        return rng.choice(COMBINING)
    if kind == 6:
        return rng.choice(SCRIPTS)
    if kind == 7:
        return rng.choice(DIGITS)
    if kind == 8:
        return rng.choice(PUNCT)
    if kind == 9:
        return rng.choice(PUNCT) + _piece(rng, extra) + rng.choice(PUNCT)
    return rng.choice(WORDS)


def rich_texts(count: int = 2500, extra_tlds: list[str] | None = None) -> list[str]:
    """``count`` texts mixing mentions, links, bare domains, tags, cashtags, emoji, flags, ZWJ
    sequences, combining marks, RTL and Indic scripts, edge punctuation, U+FEFF and Unicode
    digits, separated by JavaScript and non-JavaScript whitespace (and sometimes nothing)."""
    rng = random.Random(SEED)
    extra = sorted(extra_tlds or [])
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 8)):
            parts.append(_piece(rng, extra))
            parts.append(rng.choice(SPACES))
        texts.append("".join(parts).strip(" ") if rng.random() < 0.5 else "".join(parts))
    return texts


GRAPHEME_ALPHABET = [
    *"ae1# ", "\r", "\n", "\u0301", "\u0308", "\u200d", "\u200c", "\ufe0f", "\u20e3", "\u00ad", "\ufeff",
                     "\U0001f468", "\U0001f469", "\U0001f467", "\U0001f3fd", "\U0001f1fa", "\U0001f1f8", "\U0001f1ec",
                     "\U0001f3f4", "\U000e0067", "\U000e007f", "\u1100", "\u1161", "\u11a8", "\uac00", "\uac01",
                     "\u0e33", "\u0e31", "\u0627", "\u0644", "\u05d0", "\u05b8", "\u0600", "\u0903", "\u093c",
                     "\u093f",
    # Indic consonants and viramas (InCB Consonant / Linker) of several scripts
    "\u0915", "\u0937", "\u0930", "\u094d", "\u0995", "\u09cd", "\u0a95", "\u0acd", "\u0b15", "\u0b4d", "\u0c15",
    "\u0c4d", "\u0d15", "\u0d4d", "\u0a15", "\u0a4d", "\u0b95", "\u0bcd", "\u1000", "\u1039", "\u1780", "\u17d2",
]


def grapheme_strings(count: int = 6000) -> list[str]:
    """``count`` short strings of characters whose grapheme rules interact (GB3-GB13)."""
    rng = random.Random(SEED + 1)
    return ["".join(rng.choice(GRAPHEME_ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(count)]
