"""Every value type against the official interop vectors: all valid lines accepted, all invalid
(and parse-invalid) lines rejected with InvalidIdentifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pysky_async import (
    AtIdentifier,
    AtUri,
    Cid,
    Datetime,
    Did,
    Handle,
    InvalidIdentifier,
    Language,
    Nsid,
    RecordKey,
    Tid,
    Uri,
)

from .vectors import SYNTAX_DIR, vector_lines

CHECKS: dict[str, Callable[[str], Any]] = {
    "atidentifier": AtIdentifier, "aturi": AtUri.parse, "cid": Cid, "datetime": Datetime, "did": Did,
    "handle": Handle, "language": Language, "nsid": Nsid, "recordkey": RecordKey, "tid": Tid, "uri": Uri,
}
INVALID_FILES = ("syntax_invalid", "parse_invalid")


def _cases(kind_of_file: tuple[str, ...]) -> list[Any]:
    cases = []
    for name, check in CHECKS.items():
        for suffix in kind_of_file:
            if (SYNTAX_DIR / f"{name}_{suffix}.txt").exists():
                cases += [pytest.param(check, line, id=f"{name}_{suffix}:{line[:40]!r}")
                          for line in vector_lines(f"{name}_{suffix}")]
    return cases


def test_every_vector_file_has_a_check() -> None:
    names = {path.name.split("_syntax_")[0].split("_parse_")[0] for path in SYNTAX_DIR.glob("*.txt")}
    assert names == set(CHECKS)
    assert len(_cases(("syntax_valid",))) >= 244 and len(_cases(INVALID_FILES)) >= 292


@pytest.mark.parametrize(("check", "line"), _cases(("syntax_valid",)))
def test_valid_vector_is_accepted(check: Callable[[str], Any], line: str) -> None:
    check(line)


@pytest.mark.parametrize(("check", "line"), _cases(INVALID_FILES))
def test_invalid_vector_is_rejected(check: Callable[[str], Any], line: str) -> None:
    with pytest.raises(InvalidIdentifier):
        check(line)
