"""Text into facets: markdown, detection as the official SDK does it, byte offsets, threads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysky_async import InvalidPost, split_thread
from pysky_async._richtext import grapheme_count, parse


def spans(text: str) -> list[tuple[str, str]]:
    rich = parse(text)
    encoded = rich.text.encode("utf-8")
    found = [(encoded[f.byteStart:f.byteEnd].decode(), f.uri or f.tag or "") for f in rich.facets]
    found += [(encoded[s:e].decode(), "@" + handle) for s, e, handle in rich.mentions]
    return sorted(found)


def test_markdown_link_becomes_a_facet_over_the_visible_text_after_emoji() -> None:
    rich = parse("👩‍👩‍👧 café [the docs](https://atproto.com/specs) ✨")
    assert rich.text == "👩‍👩‍👧 café the docs ✨"
    [facet] = rich.facets
    assert rich.text.encode()[facet.byteStart:facet.byteEnd] == b"the docs"
    assert facet.byteStart == len("👩‍👩‍👧 café ".encode()) and facet.uri == "https://atproto.com/specs"


def test_everything_else_stays_exactly_as_written() -> None:
    text = "Shopping:\n- eggs\n- milk\n* bread\n2*3*4 = 24, _not italic_, `code`, 1. one\n\n**bold?**"
    assert parse(text).text == text


def test_markdown_images_leave_the_text() -> None:
    rich = parse("Look at this\n![a cat on a mat](cat.jpg)")
    assert rich.text == "Look at this"
    assert [(i.alt, i.source) for i in rich.images] == [("a cat on a mat", "cat.jpg")]


def test_detects_links_mentions_and_tags_like_the_sdk() -> None:
    found = spans("hi @alice.test and @bob.example.com, see example.com/x. or (https://a.org/b) #rust! #1 #ok-go")
    assert found == sorted([
        ("@alice.test", "@alice.test"), ("@bob.example.com", "@bob.example.com"),
        ("example.com/x", "https://example.com/x"), ("https://a.org/b", "https://a.org/b"),
        ("#rust", "rust"), ("#ok-go", "ok-go"),
    ])


def test_not_a_handle_or_domain_is_left_alone() -> None:
    assert spans("email me at x@y, read file.txt or v1.2, @nodot") == []


def test_markdown_wins_over_detection_and_facets_never_overlap() -> None:
    rich = parse("[example.com #tag @a.test](https://example.org) example.com")
    assert [(f.byteStart, f.uri) for f in rich.facets] == [(0, "https://example.org"),
                                                           (len("example.com #tag @a.test "), "https://example.com")]
    assert rich.mentions == []


def test_length_limits() -> None:
    parse("é" * 300).check_length()
    with pytest.raises(InvalidPost, match="301 characters"):
        parse("a" * 301).check_length()
    family = "👨‍👩‍👧‍👦"  # one grapheme, 25 bytes
    assert grapheme_count(family * 120) == 120
    with pytest.raises(InvalidPost, match="bytes"):
        parse(family * 121).check_length()


def test_split_thread_keeps_words_and_links_whole() -> None:
    words = " ".join(f"word{n}" for n in range(150)) + " [a link with spaces](https://example.com/x) end"
    parts = split_thread(words * 2)
    assert len(parts) > 1
    for part in parts:
        rich = parse(part)
        rich.check_length()
        assert "[a link" not in rich.text
    assert " ".join(parts).split() == (words * 2).split()
    assert "a link with spaces" in " ".join(parse(p).text for p in parts)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200),
       st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="[]()\n"), min_size=1,
               max_size=30))
def test_offsets_are_character_boundaries_that_slice_back(prefix: str, label: str) -> None:
    text = f"{prefix} [{label}](https://example.com/p) #tag{prefix[:5]} @alice.test {prefix}"
    rich = parse(text)
    encoded = rich.text.encode("utf-8")
    previous_end = 0
    for facet in rich.facets:
        assert previous_end <= facet.byteStart < facet.byteEnd <= len(encoded)
        piece = encoded[facet.byteStart:facet.byteEnd].decode("utf-8")  # raises if a character is cut
        if facet.uri == "https://example.com/p":
            assert piece == label
        if facet.tag is not None:
            assert piece == "#" + facet.tag
        previous_end = facet.byteEnd
    for start, end, handle in rich.mentions:
        assert encoded[start:end].decode("utf-8").lower() == "@" + handle
