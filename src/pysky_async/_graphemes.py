"""Counting user-perceived characters (extended grapheme clusters, Unicode UAX #29).

Bluesky limits post text in graphemes as ``Intl.Segmenter`` counts them. The ``regex`` module's
``\\X`` joins an Indic virama to the next consonant even with no consonant before it (rule GB9c
needs one), so the rules are applied here, with the Unicode properties ``regex`` provides.
"""

from __future__ import annotations

from functools import lru_cache

import regex

_GCB_VALUES = ("CR", "LF", "Control", "Extend", "ZWJ", "Regional_Indicator", "Prepend", "SpacingMark",
               "L", "V", "T", "LV", "LVT")
_GCB = [(name, regex.compile(rf"\p{{Grapheme_Cluster_Break={name}}}")) for name in _GCB_VALUES]
_PICTOGRAPHIC = regex.compile(r"\p{Extended_Pictographic}")
_INCB = [(name, regex.compile(rf"\p{{Indic_Conjunct_Break={name}}}")) for name in ("Consonant", "Linker", "Extend")]


@lru_cache(maxsize=4096)
def _properties(char: str) -> tuple[str, str, bool]:
    gcb = next((name for name, pattern in _GCB if pattern.match(char)), "Other")
    incb = next((name for name, pattern in _INCB if pattern.match(char)), "None")
    return gcb, incb, bool(_PICTOGRAPHIC.match(char))


def grapheme_count(text: str) -> int:
    """User-perceived characters (extended grapheme clusters), as Bluesky counts them."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return len(_starts(text))


def split_graphemes(text: str) -> list[str]:
    """``text`` cut into its extended grapheme clusters."""
    starts = _starts(text)
    return [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def _starts(text: str) -> list[int]:
    """The index of the first code point of every grapheme cluster."""
    starts = []
    prev = ("Control", "None", False)
    pictographic_run = False  # GB11: ExtPict Extend* seen, so ZWJ then ExtPict joins
    after_zwj_pictographic = False
    consonant_run = False  # GB9c: InCB=Consonant [Extend|Linker]* seen
    linker_seen = False
    regional_odd = False  # GB12/13: an odd number of regional indicators before
    for index, char in enumerate(text):
        props = _properties(char)
        gcb, incb, pictographic = props
        if index == 0 or _breaks(prev, props, after_zwj_pictographic, consonant_run and linker_seen,
                                 regional_odd):
            starts.append(index)
        # state for the next boundary
        after_zwj_pictographic = gcb == "ZWJ" and pictographic_run
        pictographic_run = pictographic or (pictographic_run and gcb == "Extend")
        if incb == "Consonant":
            consonant_run, linker_seen = True, False
        elif consonant_run and incb in ("Extend", "Linker"):
            linker_seen = linker_seen or incb == "Linker"
        else:
            consonant_run = linker_seen = False
        regional_odd = gcb == "Regional_Indicator" and not regional_odd
        prev = props
    return starts


def _breaks(prev: tuple[str, str, bool], here: tuple[str, str, bool], zwj_pictographic: bool,
            conjunct: bool, regional_odd: bool) -> bool:
    before, after = prev[0], here[0]
    if before == "CR" and after == "LF":
        return False  # GB3
    if before in ("Control", "CR", "LF") or after in ("Control", "CR", "LF"):
        return True  # GB4, GB5
    if before == "L" and after in ("L", "V", "LV", "LVT"):
        return False  # GB6
    if before in ("LV", "V") and after in ("V", "T"):
        return False  # GB7
    if before in ("LVT", "T") and after == "T":
        return False  # GB8
    if after in ("Extend", "ZWJ", "SpacingMark") or before == "Prepend":
        return False  # GB9, GB9a, GB9b
    if conjunct and here[1] == "Consonant":
        return False  # GB9c
    if zwj_pictographic and here[2]:
        return False  # GB11
    return not (regional_odd and after == "Regional_Indicator")  # GB12, GB13
