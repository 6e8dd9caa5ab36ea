"""mkdocs hooks: pages that are generated from the code and the README, so they cannot drift.

- ``<!-- reference: __all__ -->`` in a page becomes one mkdocstrings entry (``::: pysky_async.X``)
  per name in ``pysky_async.__all__``, grouped by kind: the API reference covers exactly the public
  names, whatever is added later (tests/test_docs.py checks the built site).
- ``<!-- readme: Section title -->`` becomes that ``## Section title`` of README.md (its body, up to
  the next ``## ``): a page can show a README section without a second copy to keep in sync.
  The README's links to its own sections (``[x](#posts)``) are pointed at the guide page holding it,
  and its links into the site's sources (``[Posts](docs/guide/posts.md)``) at those pages.
- ``<!-- file: CHANGELOG.md -->`` becomes that file of the repository, its first heading dropped.
"""

from __future__ import annotations

import importlib
import inspect
import posixpath
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_README_MARK = re.compile(r"^<!-- readme: (?P<title>.+?) -->$", re.M)
_REFERENCE_MARK = "<!-- reference: __all__ -->"
_FILE_MARK = re.compile(r"^<!-- file: (?P<path>[\w./-]+) -->$", re.M)
_SECTION_LINK = re.compile(r"\]\(#(?P<slug>[\w-]+)\)")
_DOCS_LINK = re.compile(r"\]\(docs/(?P<path>[\w./-]+\.md)\)")

KINDS = [("Client and configuration", "class"), ("Functions", "function"), ("Constants", "constant"),
         ("Errors", "error")]


def _kind(value: Any) -> str:
    if isinstance(value, type):
        return "error" if issubclass(value, BaseException) else "class"
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return "function"
    return "constant"


def reference_markdown() -> str:
    package = importlib.import_module("pysky_async")
    names: list[str] = list(package.__all__)
    groups: dict[str, list[str]] = {kind: [] for _, kind in KINDS}
    for name in names:
        groups[_kind(getattr(package, name))].append(name)
    parts = []
    for title, kind in KINDS:
        if groups[kind]:
            parts.append(f"## {title}\n")
            parts.extend(f"::: pysky_async.{name}\n    options:\n      heading_level: 3\n" for name in groups[kind])
    return "\n".join(parts)


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(?P<body>.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise ValueError(f"README.md has no section '## {title}' (a guide page includes it)")
    return match["body"]


def slug(title: str) -> str:
    """The anchor GitHub and mkdocs' toc give a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).strip().replace(" ", "-")


def section_pages(docs_dir: Path) -> dict[str, str]:
    """README section anchor -> the page (relative to docs/) that includes that section."""
    pages = {}
    for page in sorted(docs_dir.rglob("*.md")):
        for match in _README_MARK.finditer(page.read_text(encoding="utf-8")):
            pages[slug(match["title"])] = page.relative_to(docs_dir).as_posix()
    return pages


def _link_sections(text: str, page: str, pages: dict[str, str]) -> str:
    def target(match: re.Match[str]) -> str:
        holder = pages.get(match["slug"])
        if holder is None or holder == page:
            return match[0]
        return f"]({posixpath.relpath(holder, posixpath.dirname(page) or '.')})"

    def docs_target(match: re.Match[str]) -> str:
        return f"]({posixpath.relpath(match['path'], posixpath.dirname(page) or '.')})"

    return _DOCS_LINK.sub(docs_target, _SECTION_LINK.sub(target, text))


def _file(path: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    return re.sub(r"\A# .*\n", "", text)


def on_page_markdown(markdown: str, page: Any, config: Any, **_: Any) -> str:
    path = page.file.src_uri
    pages = section_pages(Path(config["docs_dir"]))
    markdown = _README_MARK.sub(lambda m: _link_sections(readme_section(m["title"]), path, pages), markdown)
    markdown = _FILE_MARK.sub(lambda m: _file(m["path"]), markdown)
    if _REFERENCE_MARK in markdown:
        markdown = markdown.replace(_REFERENCE_MARK, reference_markdown())
    return markdown
