"""The documentation site builds without a warning (``mkdocs build --strict``, as ``nox -s docs``)
and its API reference documents every public name: each name of ``pysky_async.__all__`` has its
own entry (an anchor ``pysky_async.<name>``) in the built reference page. The guide's code blocks
run in tests/test_readme.py, with the README's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pysky_async

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # builds the whole site: not one of the fast tests


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import mkdocstrings  # noqa: F401
    except ImportError:
        if os.environ.get("PYSKY_REQUIRE_REALNET") == "1":
            pytest.fail("the docs extra is not installed: pip install -e '.[docs]'", pytrace=False)
        pytest.skip("the docs extra is not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return out


def test_the_reference_documents_every_public_name(site: Path) -> None:
    page = (site / "reference" / "index.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'id="pysky_async\.(\w+)"', page))
    missing = sorted(set(pysky_async.__all__) - documented)
    assert missing == [], f"the API reference has no entry for {missing}"


def test_every_guide_page_is_built(site: Path) -> None:
    pages = sorted(p.stem for p in (ROOT / "docs" / "guide").glob("*.md"))
    assert pages
    assert [p for p in pages if not (site / "guide" / p / "index.html").is_file()] == []
