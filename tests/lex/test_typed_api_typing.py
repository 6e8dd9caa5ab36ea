"""mypy --strict and pyright --strict see the typed public API (tests/lex/typed_api_cases.py):
typed records, pages and stream ops, and misspelt keywords rejected instead of taken by ``**options``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..typecheck import mypy, pyright

CASES = Path(__file__).with_name("typed_api_cases.py")
LINES = CASES.read_text().splitlines()
EXPECTED = {n: line.split("# R: ", 1)[1].strip() for n, line in enumerate(LINES, 1) if "# R: " in line}
ERRORS = sorted(n for n, line in enumerate(LINES, 1) if "# E" in line)


def short(kind: str) -> str:
    """mypy's qualified names as pyright prints them (``pysky_async._records.Record`` -> ``Record``)."""
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", kind)


def test_the_cases_file_has_what_it_checks() -> None:
    assert len(EXPECTED) == 10 and len(ERRORS) == 6


@pytest.mark.slow  # a type checker: once, in the full suite, not on every Python
def test_mypy_reveals_the_typed_api_and_rejects_misspelt_keywords() -> None:
    report = mypy(CASES)
    assert {line: short(kind) for line, kind in report.revealed.items()} == EXPECTED, report.output
    assert report.error_lines == ERRORS, report.output
    for keyword in ('"timout"', '"rkye"', '"lang"', '"swap"'):
        assert keyword in report.output


@pytest.mark.slow
def test_pyright_reveals_the_same_types_and_rejects_the_same_calls() -> None:
    report = pyright(CASES)
    assert report.revealed == EXPECTED, report.output
    assert report.error_lines == ERRORS, report.output
