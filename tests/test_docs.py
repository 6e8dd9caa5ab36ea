"""The documentation site builds without a warning (``mkdocs build --strict``, as ``nox -s docs``)
and its API reference documents every public name: each name of ``pysky_async.__all__`` has its
own entry (an anchor ``pysky_async.<name>``) in the built reference page. The guide's code blocks
run in tests/test_readme.py, with the README's. A page can still show a README section
(``<!-- readme: ... -->``, docs/hooks.py), its links pointed at the site's pages."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pysky_async

ROOT = Path(__file__).resolve().parent.parent



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


@pytest.mark.slow  # builds the whole site: not one of the fast tests
def test_the_reference_documents_every_public_name(site: Path) -> None:
    page = (site / "reference" / "index.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'id="pysky_async\.(\w+)"', page))
    missing = sorted(set(pysky_async.__all__) - documented)
    assert missing == [], f"the API reference has no entry for {missing}"


@pytest.mark.slow
def test_every_guide_page_is_built(site: Path) -> None:
    pages = sorted(p.stem for p in (ROOT / "docs" / "guide").glob("*.md"))
    assert pages
    assert [p for p in pages if not (site / "guide" / p / "index.html").is_file()] == []


def test_a_page_shows_a_readme_section_with_its_links_pointed_at_the_site() -> None:
    """``<!-- readme: Title -->`` becomes that README section's body; the README's links into
    docs/ and to its own sections that a guide page holds become links between the site's pages."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    hooks: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    title = next(t for t in re.findall(r"^## (.+)$", readme, re.M) if "](docs/guide/" in hooks.readme_section(t))
    body = hooks.readme_section(title)
    page, config = _Page("guide/sample.md"), {"docs_dir": str(ROOT / "docs")}
    shown = hooks.on_page_markdown(f"# Sample\n\n<!-- readme: {title} -->\n", page, config)
    assert "<!-- readme:" not in shown
    assert body.strip().splitlines()[0] in shown
    links = re.findall(r"\]\(([^)#]+\.md)\)", shown)
    assert links and all(not link.startswith("docs/") for link in links), links
    assert all((ROOT / "docs" / "guide" / link).resolve().is_file() for link in links), links
    with pytest.raises(ValueError, match="no section"):
        hooks.readme_section("No such section")


class _File:
    def __init__(self, src_uri: str) -> None:
        self.src_uri = src_uri


class _Page:
    """What the hook reads of mkdocs' Page."""

    def __init__(self, src_uri: str) -> None:
        self.file = _File(src_uri)
