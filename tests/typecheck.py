"""Run mypy or pyright on a file (or on src/) in a subprocess and read what they report.

Each checker runs in its own process: mypy in the test process would leave its whole program graph
for every later test's ``gc.collect()`` to walk (3-5 s per test on Python 3.10). pyright comes with
the test extra (the ``pyright[nodejs]`` package on PyPI; the npm one on PATH also does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Report:
    """What a checker said: the type each ``reveal_type`` line showed, and the errors in order."""

    revealed: dict[int, str] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    output: str = ""  # everything it printed, for assertion messages

    @property
    def error_lines(self) -> list[int]:
        """The lines with at least one error, sorted."""
        return sorted({line for line, _ in self.errors})


def mypy(path: Path) -> Report:
    """``mypy --strict`` on one file, with the project's configuration (this checkout's src/) and its cache
    (.mypy_cache, which ``mypy`` before the tests fills: src/ and the libraries are not checked again; a
    file with errors or notes is never cached, so its report is always a full one)."""
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-absolute-path",
                             str(path)], capture_output=True, text=True, check=False, cwd=ROOT)
    stdout = result.stdout
    assert result.returncode in (0, 1), f"mypy did not run (exit {result.returncode}):\n{stdout}{result.stderr}"
    revealed = {int(line): kind for line, kind in re.findall(r":(\d+): note: Revealed type is \"([^\"]+)\"", stdout)}
    errors = [(int(line), message) for line, message in re.findall(r":(\d+): error: (.*)", stdout)]
    return Report(revealed, errors, stdout)


def pyright_executable() -> str:
    """The venv's pyright, else the one on PATH."""
    found = shutil.which("pyright", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found is not None, "pyright is missing: pip install -e '.[test]' installs it"
    return found


def pyright(path: Path) -> Report:
    """pyright in strict mode on one file (a copy, alone in a project importing this checkout's src/)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / path.name).write_text(path.read_text())
        (Path(tmp) / "pyrightconfig.json").write_text(json.dumps({
            "include": [path.name], "extraPaths": [str(ROOT / "src")],
            "pythonVersion": "3.10", "typeCheckingMode": "strict"}))
        return _run_pyright(Path(tmp))


def pyright_project() -> Report:
    """pyright on what pyproject's ``[tool.pyright]`` names (src/, at its standard level)."""
    return _run_pyright(ROOT)


def _run_pyright(project: Path) -> Report:
    result = subprocess.run([pyright_executable(), "--outputjson", "--pythonpath", sys.executable, "-p", str(project)],
                            capture_output=True, text=True, cwd=project, check=False)
    try:
        diagnostics = json.loads(result.stdout)["generalDiagnostics"]
    except (ValueError, KeyError):
        raise AssertionError(f"pyright gave no report (exit {result.returncode}):\n{result.stdout}{result.stderr}") \
            from None
    revealed = {d["range"]["start"]["line"] + 1: re.sub(r'^Type of ".*" is "(.*)"$', r"\1", d["message"], flags=re.S)
                for d in diagnostics if d["severity"] == "information"}
    errors = [(d["range"]["start"]["line"] + 1,
               f"{d.get('file', '')}:{d['range']['start']['line'] + 1}: {d['message']} ({d.get('rule', '')})")
              for d in diagnostics if d["severity"] == "error"]
    return Report(revealed, errors, result.stdout)
