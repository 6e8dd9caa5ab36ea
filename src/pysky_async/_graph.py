"""The follow-graph export: who, among the authors of posts matching a search, follows whom.

    pysky-async graph --query '#databs' --out databs.csv

1. Search posts (paginated, resumed) and collect the distinct authors.
2. For each author, with bounded concurrency: the profile (through the profile cache) and all
   follows (paginated, resumed per author), written to the CSV page by page.

Resumable: a rerun after Ctrl-C or a crash continues from the persisted cursors, skips authors
that were finished (``<out>.progress``), and never writes a row twice (rows already in the CSV
are skipped). The client's rate limiting (request limiter, retries, 429 handling) applies to
every call.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._call_log import CallLogWriter
    from ._pagination import Paginator
    from ._profiles import Profiles

logger = logging.getLogger("pysky_async")

COLUMNS = ["source", "target", "source_avatar_url", "source_posts_count", "source_followers_count",
           "source_follows_count"]


@dataclass(frozen=True)
class GraphReport:
    """What an export did."""

    authors: int
    edges: int
    calls: int
    seconds: float

    def __str__(self) -> str:
        return (f"{self.authors} authors, {self.edges} edges written, {self.calls} API calls, "
                f"{self.seconds:.1f} s")


class _Progress:
    """A tqdm bar on a terminal (if tqdm is installed), plain log lines otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done = total, 0
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

                self.bar = tqdm(total=total, unit="author", file=sys.stderr)
            except ImportError:
                pass

    def advance(self, author: str, edges: int) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        else:
            logger.info("graph: %d/%d authors done (%s: %d edges)", self.done, self.total, author, edges)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Output:
    """The CSV and the progress file, both append-only; rows already written are skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.progress_path = path.with_name(path.name + ".progress")
        self.rows: set[tuple[str, str]] = set()
        if path.exists():
            with path.open(newline="") as existing:
                self.rows = {(row["source"], row["target"]) for row in csv.DictReader(existing)}
        self.authors: list[str] = []
        self.finished: set[str] = set()
        if self.progress_path.exists():
            for line in self.progress_path.read_text().splitlines():
                kind, _, did = line.partition(" ")
                if kind == "author" and did not in self.authors:
                    self.authors.append(did)
                elif kind == "done":
                    self.finished.add(did)
        new_file = not path.exists() or path.stat().st_size == 0
        self.csv_file = path.open("a", newline="")
        self.writer = csv.writer(self.csv_file)
        if new_file:
            self.writer.writerow(COLUMNS)
        self.progress_file = self.progress_path.open("a")

    def note(self, kind: str, did: str) -> None:
        self.progress_file.write(f"{kind} {did}\n")
        self.progress_file.flush()

    def write(self, rows: list[list[Any]]) -> int:
        fresh = [row for row in rows if (row[0], row[1]) not in self.rows]
        self.writer.writerows(fresh)
        self.csv_file.flush()
        self.rows.update((row[0], row[1]) for row in fresh)
        return len(fresh)

    def close(self) -> None:
        self.csv_file.close()
        self.progress_file.close()


class Paginate(Protocol):
    """``bsky.paginate``: a cursor-based listing of an endpoint."""

    def __call__(self, endpoint: str, *, cursor_key: str | None = ..., resume: bool = ...,
                 **params: Any) -> Paginator: ...


class GraphClient(Protocol):
    """What ``export_follow_graph`` takes from a client (an ``AsyncBskyClient``)."""

    @property
    def paginate(self) -> Paginate: ...

    @property
    def profiles(self) -> Profiles: ...

    @property
    def call_log(self) -> CallLogWriter: ...


class FollowGraphExport:
    """The export job, given what it uses: listings, the profile cache and the call log (to count calls).

    Args:
        paginate: ``bsky.paginate`` (resumed listings of searchPosts and getFollows).
        profiles: ``bsky.profiles`` (through the profile cache).
        call_log: ``bsky.call_log``: the calls made are counted there and flushed at the end.
    """

    def __init__(self, paginate: Paginate, profiles: Profiles, call_log: CallLogWriter) -> None:
        self._paginate = paginate
        self._profiles = profiles
        self._call_log = call_log

    async def run(self, query: str, out: str | Path, *, concurrency: int = 8, include_outsiders: bool = False,
                  progress: bool = True, on_author: Callable[[str], object] | None = None) -> GraphReport:
        """Write the follow graph of the authors of posts matching ``query`` to the CSV ``out``
        (see ``export_follow_graph``)."""
        started = time.monotonic()
        calls_before = self._call_log.rows_added
        output = _Output(Path(out))
        try:
            await self._collect_authors(query, output)
            edges = await self._write_follows(query, output, concurrency, include_outsiders, progress, on_author)
        finally:
            output.close()
        await self._call_log.flush()
        return GraphReport(len(output.authors), edges, self._call_log.rows_added - calls_before,
                           time.monotonic() - started)

    async def _collect_authors(self, query: str, output: _Output) -> None:
        known = set(output.authors)
        async for post in self._paginate("app.bsky.feed.searchPosts", q=query, limit=100, resume=True,
                                         cursor_key=f"graph:{query}"):
            did = post.author.did
            if did not in known:
                known.add(did)
                output.authors.append(did)
                output.note("author", did)

    async def _write_follows(self, query: str, output: _Output, concurrency: int, include_outsiders: bool,
                             progress: bool, on_author: Callable[[str], object] | None) -> int:
        community = set(output.authors)
        todo = [did for did in output.authors if did not in output.finished]
        bar = _Progress(len(todo), progress)
        semaphore = asyncio.Semaphore(concurrency)
        edges = 0

        async def one(author: str) -> None:
            nonlocal edges
            async with semaphore:
                profile = await self._profiles.get(author)
                written = 0
                async for page in self._paginate("app.bsky.graph.getFollows", actor=author, limit=100, resume=True,
                                                 cursor_key=f"graph:{query}:{author}").pages():
                    rows = [[author, follow["did"], profile.raw.get("avatar", ""), profile.raw.get("postsCount", 0),
                             profile.raw.get("followersCount", 0), profile.raw.get("followsCount", 0)]
                            for follow in page.require("follows")[0]
                            if include_outsiders or follow["did"] in community]
                    written += output.write(rows)
                output.note("done", author)
                edges += written
                bar.advance(author, written)
                if on_author is not None:
                    on_author(author)

        try:
            await asyncio.gather(*(one(author) for author in todo))
        finally:
            bar.close()
        return edges


async def export_follow_graph(bsky: GraphClient, query: str, out: str | Path, *, concurrency: int = 8,
                              include_outsiders: bool = False, progress: bool = True,
                              on_author: Callable[[str], object] | None = None) -> GraphReport:
    """Write the follow graph of the authors of posts matching ``query`` to the CSV ``out``.

    Args:
        bsky: the client (an ``AsyncBskyClient``) whose listings, profile cache and call log are used.
        concurrency: authors processed at once.
        include_outsiders: also write follows of accounts that are not among the authors.
        progress: show a progress bar (tqdm, on a terminal) or log lines.
        on_author: called with each author's DID when it is finished (for tests and UIs).
    """
    export = FollowGraphExport(bsky.paginate, bsky.profiles, bsky.call_log)
    return await export.run(query, out, concurrency=concurrency, include_outsiders=include_outsiders,
                            progress=progress, on_author=on_author)
