"""Reads the official atproto interop syntax vectors committed under vectors/syntax/."""

from __future__ import annotations

from pathlib import Path

SYNTAX_DIR = Path(__file__).parent / "vectors" / "syntax"


def vector_lines(name: str) -> list[str]:
    """The test lines of ``syntax/<name>.txt``: comments and blank lines dropped, nothing stripped
    (leading and trailing spaces are part of several invalid vectors)."""
    text = (SYNTAX_DIR / f"{name}.txt").read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line.strip() and not line.startswith("#")]
