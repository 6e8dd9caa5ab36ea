"""mypy --strict and pyright --strict see the typed public API (tests/lex/typed_api_cases.py):
typed records, pages and stream ops, and misspelt keywords rejected instead of taken by ``**options``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    pytest.importorskip("mypy")
    # in its own process: mypy in this one would leave its program graph for every later test's
    # gc.collect() to walk (seconds per test)
    stdout = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-absolute-path",
                             str(CASES)], capture_output=True, text=True, check=False).stdout
    revealed = {int(line): short(kind)
                for line, kind in re.findall(r":(\d+): note: Revealed type is \"([^\"]+)\"", stdout)}
    assert revealed == EXPECTED, stdout
    errors = sorted({int(line) for line in re.findall(r":(\d+): error:", stdout)})
    assert errors == ERRORS, stdout
    assert '"timout"' in stdout and '"rkye"' in stdout and '"lang"' in stdout and '"swap"' in stdout


@pytest.mark.slow
def test_pyright_reveals_the_same_types_and_rejects_the_same_calls(tmp_path: Path) -> None:
    pyright = shutil.which("pyright", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    assert pyright is not None, "pyright is missing: pip install -e '.[test]' installs it"
    (tmp_path / CASES.name).write_text(CASES.read_text())
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({
        "include": [CASES.name], "extraPaths": [str(CASES.parents[2] / "src")],
        "pythonVersion": "3.10", "typeCheckingMode": "strict"}))
    result = subprocess.run([pyright, "--outputjson", "--pythonpath", sys.executable, "-p", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path)
    diagnostics = json.loads(result.stdout)["generalDiagnostics"]
    revealed = {d["range"]["start"]["line"] + 1: re.sub(r'^Type of ".*" is "(.*)"$', r"\1", d["message"], flags=re.S)
                for d in diagnostics if d["severity"] == "information"}
    assert revealed == EXPECTED, diagnostics
    errors = sorted({d["range"]["start"]["line"] + 1 for d in diagnostics if d["severity"] == "error"})
    assert errors == ERRORS, diagnostics
