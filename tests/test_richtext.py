"""Text into facets: markdown, detection as the official SDK does it, byte offsets, threads."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysky_async import InvalidPost, detect_facets, split_thread
from pysky_async._graphemes import grapheme_count
from pysky_async._richtext import parse

from .conformance.corpus import rich_texts


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
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200),
       st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="[]()\n"), min_size=1,
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


def test_real_top_level_domains_and_not_file_names() -> None:
    """The issue's examples: @alice.photography and @band.music are mentions, main.go is not a link."""
    assert spans("hi @alice.photography and @band.music") == [("@alice.photography", "@alice.photography"),
                                                             ("@band.music", "@band.music")]
    assert spans("edit main.go and notes.txt, see bsky.social") == [("bsky.social", "https://bsky.social")]


def test_cashtags_become_upper_case_tag_facets() -> None:
    facets = detect_facets("buy $aapl, ($GOOG) not $TOOLONG or $1BTC")
    assert [(f.byteStart, f.byteEnd, f.tag) for f in facets] == [(4, 9, "$AAPL"), (12, 17, "$GOOG")]


def test_tag_length_counts_graphemes_not_code_points() -> None:
    family = "🇫🇷"  # 2 code points (4 UTF-16 units), 1 grapheme
    assert [f.tag for f in detect_facets("#" + family * 64)] == [family * 64]
    assert detect_facets("#" + family * 65) == []


def test_javascript_semantics_of_digits_boundaries_and_spaces() -> None:
    assert [f.tag for f in detect_facets("#١٢٣")] == ["١٢٣"]  # JS \d is ASCII: Arabic-Indic digits make a tag
    assert [f.did for f in detect_facets("@alice.testé")] == ["alice.test"]  # JS \b is ASCII: é ends the handle
    assert [f.tag for f in detect_facets("a\ufeff#tag")] == ["tag"]  # U+FEFF is JS whitespace
    assert detect_facets("a\x1c#tag") == []  # U+001C is Python whitespace, not JS
    assert detect_facets("@alice.COM HTTPS://example.com") == []  # the SDK matches TLDs and "http" in lower case


def test_overlapping_detections_are_reported_but_parse_keeps_one() -> None:
    facets = detect_facets("#x(@a.com")
    assert {(f.did, f.tag) for f in facets} == {("a.com", None), (None, "x(@a.com")}
    rich = parse("#x(@a.com")
    assert rich.mentions == [(3, 9, "a.com")] and rich.facets == []


def test_a_virama_without_a_consonant_before_it_does_not_join_the_next_consonant() -> None:
    """Unicode's GB9c joins consonant+virama+consonant only; the regex module's \\X also joins a
    bare virama to the next consonant. Intl.Segmenter (and Bluesky) count two here."""
    assert grapheme_count("\u09cd\u0915") == 2
    assert grapheme_count("\u0915\u094d\u0937") == 1  # क्ष: a real conjunct is one
    assert grapheme_count("e\u0301\r\n🇫🇷🇺") == 4


def test_parse_keeps_every_detected_facet_when_none_overlap() -> None:
    """create_post's parse() adds only the no-overlap rule on top of detect_facets (compared with
    the official SDK in tests/conformance): over the generated corpus, texts without overlapping
    detections give the same facets and mentions."""
    checked = 0
    for text in rich_texts(1000):
        detected = sorted((f.byteStart, f.byteEnd, f.did, f.uri, f.tag) for f in detect_facets(text))
        if any(a[1] > b[0] for a, b in itertools.pairwise(detected)):
            continue
        rich = parse(text, markdown=False)
        got = sorted([(f.byteStart, f.byteEnd, None, f.uri, f.tag) for f in rich.facets]
                     + [(s, e, handle, None, None) for s, e, handle in rich.mentions])
        assert got == detected, text
        checked += 1
    assert checked > 900


def test_split_thread_cuts_long_words_at_unicode_graphemes() -> None:
    word = "\u0915\u094d\u0937" * 400  # क्ष, one grapheme of 3 code points
    parts = split_thread(word)
    assert len(parts) > 1 and "".join(parts) == word
    assert all(len(part) % 3 == 0 and grapheme_count(part) <= 300 for part in parts)
