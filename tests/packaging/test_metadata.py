"""What PyPI shows about the project comes from pyproject's [project] table: a classifier for each
Python the version matrix tests (noxfile.py's ``PYTHONS``) and nothing else, the asyncio and typing
classifiers a user filters on, keywords, and one consistent set of project addresses that the
documentation site (mkdocs.yml) uses too."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest and mypy depend on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
URL_NAMES = ["Homepage", "Documentation", "Repository", "Issues", "Changelog"]


def project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        table: dict[str, Any] = tomllib.load(file)["project"]
    return table


def matrix_pythons() -> list[str]:
    """noxfile.py's PYTHONS, read without importing nox (not installed in the test venvs)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PYTHONS" for t in node.targets):
            value: list[str] = ast.literal_eval(node.value)
            return value
    raise AssertionError("noxfile.py defines no PYTHONS list")


def mkdocs_setting(key: str) -> str:
    match = re.search(rf"^{key}: (\S+)$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    assert match, f"mkdocs.yml has no {key}"
    return match[1]


def test_one_classifier_per_tested_python_and_no_other() -> None:
    pythons = matrix_pythons()
    assert pythons == sorted(pythons, key=lambda v: tuple(map(int, v.split(".")))) and len(pythons) >= 2
    classifiers = project()["classifiers"]
    versions = [c.rsplit(" :: ", 1)[1] for c in classifiers
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert versions == pythons, f"classifiers name Pythons {versions}, the matrix tests {pythons}"
    assert project()["requires-python"] == f">={pythons[0]}"


def test_classifiers_for_asyncio_and_typing_users() -> None:
    classifiers = project()["classifiers"]
    for wanted in ("Framework :: AsyncIO", "Typing :: Typed", "Programming Language :: Python :: 3 :: Only"):
        assert wanted in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert classifiers == sorted(set(classifiers), key=classifiers.index), "a classifier is listed twice"
    assert (ROOT / "src" / "pysky_async" / "py.typed").is_file(), "Typing :: Typed promises a py.typed marker"


def test_keywords_name_the_protocol() -> None:
    keywords = project()["keywords"]
    assert {"bluesky", "atproto", "asyncio"} <= set(keywords)
    assert len(keywords) == len(set(keywords))


def test_one_consistent_set_of_project_urls() -> None:
    urls: dict[str, str] = project()["urls"]
    assert list(urls) == URL_NAMES
    assert all(url.startswith("https://") for url in urls.values())
    repository = urls["Repository"]
    assert urls["Homepage"] == repository
    assert urls["Issues"] == f"{repository}/issues"
    assert urls["Changelog"].startswith(f"{repository}/blob/") and urls["Changelog"].endswith("/CHANGELOG.md")
    assert mkdocs_setting("repo_url") == repository
    assert mkdocs_setting("site_url").rstrip("/") == urls["Documentation"].rstrip("/")
    assert repository.endswith("/" + mkdocs_setting("repo_name"))
