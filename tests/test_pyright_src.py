"""pyright, which most editors run, finds nothing in src/ (pyproject's ``[tool.pyright]``: its
standard level, Python 3.10). mypy --strict covers src/, tests/, benchmarks/ and examples/ in CI."""

from __future__ import annotations

import pytest

from .typecheck import pyright_project

# about a minute of CPU: not one of the fast tests (.ci/run runs it)
pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_pyright_finds_no_error_in_src() -> None:
    report = pyright_project()
    assert report.errors == [], "\n".join(message for _, message in report.errors)
