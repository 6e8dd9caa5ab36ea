"""The package's import graph has no cycle: each module is read on its own (its AST), every import
counts (module level, inside functions, and under ``if TYPE_CHECKING:`` — a type-only cycle is still
two modules that cannot be understood, tested or moved apart)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pysky_async

pytestmark = pytest.mark.anyio

PACKAGE = Path(pysky_async.__file__).parent

KNOWN_TYPE_ONLY_EDGES = {("pysky_async._oauth._oauth", "pysky_async._client")}
"""``OAuth`` names ``AsyncBskyClient`` as the type its ``client_for`` returns (under TYPE_CHECKING).
The OAuth account is being re-plugged into the client through an account interface (issue 19, "One
shape", first item): that change removes this edge; then this set must become empty (checked below)."""


GENERATED = "pysky_async.lex."
"""The models generated from the lexicons (``pysky_async.lex.app.bsky.feed`` ...) import each other as
the lexicons refer to each other (``app.bsky.actor`` <-> ``app.bsky.embed``): that is the lexicons' graph,
not the library's, and attribute access keeps it lazy. Hand-written ``lex._*`` modules still count."""


def generated(name: str) -> bool:
    return name.startswith(GENERATED) and not name.rpartition(".")[2].startswith("_")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: {modules of this package it imports}}``, read from the source of each module."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                # "from . import x" imports the module x; "from .m import name" imports m
                targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                           for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_graph_reader_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_type_only_and_function_level_imports() -> None:
    graph = import_graph()
    assert "pysky_async._xrpc" in graph["pysky_async._identity"]  # under TYPE_CHECKING
    assert "pysky_async._oauth" in graph["pysky_async._client"]  # inside a property
    assert "pysky_async._streams.consumer" in graph["pysky_async._streams"]


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    for source, target in KNOWN_TYPE_ONLY_EDGES:
        assert target in graph[source], f"{source} no longer imports {target}: empty KNOWN_TYPE_ONLY_EDGES"
        graph[source].discard(target)
    library = {name: {t for t in targets if not generated(t)} for name, targets in graph.items() if not generated(name)}
    assert any(generated(name) for name in graph), "the generated models are no longer under " + GENERATED
    cycle = find_cycle(library)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_follow_graph_export_does_not_import_the_client() -> None:
    assert not {"pysky_async._client", "pysky_async"} & import_graph()["pysky_async._graph"]


async def test_the_follow_graph_export_runs_on_what_it_is_given(tmp_path: Path) -> None:
    import csv

    import httpx

    from pysky_async import AsyncBskyClient, export_follow_graph

    follows = {"did:plc:a": ["did:plc:b", "did:plc:out"], "did:plc:b": ["did:plc:a"]}

    def server(request: httpx.Request) -> httpx.Response:
        nsid, params = request.url.path.rsplit("/", 1)[-1], request.url.params
        if nsid == "app.bsky.feed.searchPosts":
            return httpx.Response(200, json={"posts": [{"author": {"did": d}} for d in follows]})
        if nsid == "app.bsky.actor.getProfile":
            return httpx.Response(200, json={"did": params["actor"], "handle": "x.test", "followsCount": 2})
        if nsid == "app.bsky.graph.getFollows":
            return httpx.Response(200, json={"follows": [{"did": d} for d in follows[params["actor"]]]})
        return httpx.Response(404, json={"error": "NotFound"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    async with AsyncBskyClient(database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3", http_client=http) as bsky:
        report = await export_follow_graph(bsky, "#q", tmp_path / "g.csv", progress=False)
    await http.aclose()
    with (tmp_path / "g.csv").open(newline="") as f:
        rows = {(row["source"], row["target"]) for row in csv.DictReader(f)}
    assert rows == {("did:plc:a", "did:plc:b"), ("did:plc:b", "did:plc:a")}
    assert (report.authors, report.edges, report.calls) == (2, 2, 5)
