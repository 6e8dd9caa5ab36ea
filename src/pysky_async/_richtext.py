"""Post text into facets: markdown links and images, then links, mentions and hashtags.

Markdown ``[text](https://…)`` becomes a link facet over ``text``; ``![alt](path-or-url)``
becomes an image embed and leaves the text; everything else stays exactly as written. Bare
URLs and domains, ``@handle`` mentions, ``#hashtags`` and ``$CASHTAGS`` are detected exactly as
the official ``detectFacets`` of ``@atproto/api`` does (``_detection``; ``detect_facets`` gives
that list as is). ``parse`` keeps facets from overlapping (explicit and markdown facets first,
then mentions, links, tags, cashtags) and sorts them. Offsets are UTF-8 byte offsets and always
fall on character boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import regex

from ._detection import detect as detect_spans
from ._exceptions import InvalidPost
from ._graphemes import grapheme_count, split_graphemes

MAX_GRAPHEMES = 300
MAX_BYTES = 3000


@dataclass(frozen=True)
class Facet:
    """An explicit facet over UTF-8 bytes ``[byteStart, byteEnd)``: a link (``uri``), a
    mention (``did``) or a hashtag (``tag``) — exactly one of them."""

    byteStart: int
    byteEnd: int
    uri: str | None = None
    did: str | None = None
    tag: str | None = None

    def __post_init__(self) -> None:
        if sum(value is not None for value in (self.uri, self.did, self.tag)) != 1:
            raise InvalidPost("a Facet needs exactly one of uri=, did= or tag=")
        if not 0 <= self.byteStart < self.byteEnd:
            raise InvalidPost(f"facet byte range [{self.byteStart}, {self.byteEnd}) is empty or negative")

    def to_dict(self) -> dict[str, Any]:
        feature: dict[str, Any]
        if self.uri is not None:
            feature = {"$type": "app.bsky.richtext.facet#link", "uri": self.uri}
        elif self.did is not None:
            feature = {"$type": "app.bsky.richtext.facet#mention", "did": self.did}
        else:
            feature = {"$type": "app.bsky.richtext.facet#tag", "tag": self.tag}
        return {"$type": "app.bsky.richtext.facet", "index": {"byteStart": self.byteStart, "byteEnd": self.byteEnd},
                "features": [feature]}


@dataclass(frozen=True)
class MarkdownImage:
    """``![alt](source)`` found in the text: a file path or URL to attach as an image."""

    alt: str
    source: str


@dataclass
class RichText:
    """Text after markdown, with its facets; ``mentions`` still carry handles (resolved later)."""

    text: str
    facets: list[Facet] = field(default_factory=list)
    mentions: list[tuple[int, int, str]] = field(default_factory=list)  # byteStart, byteEnd, handle
    images: list[MarkdownImage] = field(default_factory=list)

    @property
    def graphemes(self) -> int:
        return grapheme_count(self.text)

    def check_length(self) -> None:
        """Raise InvalidPost when the text is over Bluesky's limits."""
        size = len(self.text.encode("utf-8"))
        graphemes = self.graphemes
        if graphemes > MAX_GRAPHEMES or size > MAX_BYTES:
            raise InvalidPost(
                f"the post text is {graphemes} characters ({size} bytes); Bluesky allows {MAX_GRAPHEMES} "
                f"characters and {MAX_BYTES} bytes: shorten it, or split it with split_thread()")


def utf8_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


_MD_IMAGE = regex.compile(r"!\[([^\[\]\n]*)\]\(([^()\s]+)\)")
_MD_LINK = regex.compile(r"(?<!!)\[([^\[\]\n]+)\]\((https?://[^\s()]+(?:\([^\s()]*\)[^\s()]*)*)\)")
def check_text(text: Any) -> str:
    """``text`` if it is a string that UTF-8 can carry; InvalidPost otherwise (a lone surrogate,
    e.g. from text decoded with ``errors="surrogateescape"`` or cut between a UTF-16 pair)."""
    if not isinstance(text, str):
        raise InvalidPost(f"post text must be a string, not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPost(
            f"the text has a lone surrogate ({text[exc.start]!r} at position {exc.start}), which is not valid "
            "Unicode and cannot be posted: decode the input with errors='replace', or fix where it came from"
        ) from None
    return text


def detect_facets(text: str) -> list[Facet]:
    """The facets the official ``detectFacets`` finds, in its order; a mention facet holds the
    handle as written in ``did`` (resolve it before posting). Facets may overlap here."""
    check_text(text)
    facets = []
    for start, end, kind, value in detect_spans(text):
        byte_start = utf8_offset(text, start)
        byte_end = byte_start + len(text[start:end].encode("utf-8"))
        key = {"mention": "did", "link": "uri", "tag": "tag"}[kind]
        facets.append(Facet(byte_start, byte_end, **{key: value}))
    return facets


def parse(text: str, *, markdown: bool = True, detect: bool = True, explicit: list[Facet] | None = None) -> RichText:
    """Markdown first, then detection on the resulting text. Facets never overlap: explicit
    facets (over the text after markdown) and markdown facets win over detected ones."""
    check_text(text)
    result = _apply_markdown(text) if markdown else RichText(text)
    result.facets.extend(explicit or [])
    if detect:
        taken = [(f.byteStart, f.byteEnd) for f in result.facets]
        for facet in detect_facets(result.text):
            if not _free(taken, facet.byteStart, facet.byteEnd):
                continue
            taken.append((facet.byteStart, facet.byteEnd))
            if facet.did is not None:
                result.mentions.append((facet.byteStart, facet.byteEnd, facet.did))
            else:
                result.facets.append(facet)
    result.facets.sort(key=lambda f: f.byteStart)
    result.mentions.sort()
    return result


def _free(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    return all(end <= s or start >= e for s, e in taken)


def _apply_markdown(text: str) -> RichText:
    images: list[MarkdownImage] = []

    def take_image(match: regex.Match[str]) -> str:
        images.append(MarkdownImage(match.group(1), match.group(2)))
        return ""

    text = _MD_IMAGE.sub(take_image, text)
    if images:  # an image line leaves no trailing blank behind
        text = text.rstrip()
    out: list[str] = []
    facets: list[Facet] = []
    position = 0
    size = 0
    for match in _MD_LINK.finditer(text):
        before = text[position:match.start()]
        out.append(before)
        size += len(before.encode("utf-8"))
        label = match.group(1)
        label_size = len(label.encode("utf-8"))
        out.append(label)
        facets.append(Facet(size, size + label_size, uri=match.group(2)))
        size += label_size
        position = match.end()
    out.append(text[position:])
    return RichText("".join(out), facets=facets, images=images)


def split_thread(text: str, *, max_graphemes: int = MAX_GRAPHEMES, max_bytes: int = MAX_BYTES) -> list[str]:
    """Split long post text into parts that each fit one post, at whitespace, never inside a
    markdown link/image or a word (a single word longer than a post is cut at graphemes)."""
    tokens = regex.findall(r"!?\[[^\[\]\n]*\]\([^()\s]+\)\S*|\S+|\s+", text)
    parts: list[str] = []
    current = ""

    def fits(candidate: str) -> bool:
        rendered = _apply_markdown(candidate).text
        return grapheme_count(rendered) <= max_graphemes and len(rendered.encode("utf-8")) <= max_bytes

    for token in tokens:
        if fits(current + token):
            current += token
            continue
        if current.strip():
            parts.append(current.strip())
        current = token.lstrip()
        while current and not fits(current):  # one token longer than a post: cut it
            clusters = split_graphemes(current)
            cut = len(clusters)
            while cut > 1 and not fits("".join(clusters[:cut])):
                cut = cut * 9 // 10 if cut > 20 else cut - 1
            parts.append("".join(clusters[:cut]))
            current = "".join(clusters[cut:])
    if current.strip():
        parts.append(current.strip())
    return parts
