"""pysky_async's facet detection and grapheme counts against the official @atproto/api run in node.

No expected value is written here: the official package computes them at test time.
"""

from __future__ import annotations

import re

import pytest

from .differential import Comparison, Figures
from .oracle import INSTALL_SCRIPT

pytestmark = pytest.mark.realnet


def _show(comparison: Comparison) -> str:
    return "\n".join(f"{text!r}\n  ours:     {mine}\n  official: {theirs}"
                     for text, mine, theirs in comparison.other[:10])


def test_the_oracle_is_the_pinned_official_package(conformance_figures: Figures) -> None:
    pinned = re.search(r"^API_VERSION=(\S+)$", INSTALL_SCRIPT.read_text(), re.MULTILINE)
    assert pinned is not None and conformance_figures["api_version"] == pinned[1]


def test_official_detection_test_inputs_give_identical_facets(conformance_figures: Figures) -> None:
    official: Comparison = conformance_figures["official"]
    assert official.texts == 97 and official.facets > 50
    assert official.other == [], _show(official)


def test_generated_corpus_gives_identical_facets(conformance_figures: Figures) -> None:
    corpus: Comparison = conformance_figures["corpus"]
    assert corpus.texts >= 2000 and corpus.facets >= 1000
    assert corpus.other == [], _show(corpus)
    # the only tolerated difference: a TLD that one of the two IANA list snapshots lacks
    assert len(corpus.tld_list_only) <= corpus.texts // 20


def test_top_level_domain_lists_differ_only_by_recent_iana_changes(conformance_figures: Figures) -> None:
    assert len(conformance_figures["tld_diff"]) <= 20, sorted(conformance_figures["tld_diff"])


def test_grapheme_counts_match_intl_segmenter(conformance_figures: Figures) -> None:
    total, same, differing = conformance_figures["graphemes"]
    assert total >= 5000
    assert same == total, differing[:10]
