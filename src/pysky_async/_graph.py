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
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._exceptions import InvalidInput

if TYPE_CHECKING:
    from ._call_log import CallLogWriter
    from ._pagination import Paginator
    from ._profiles import Profiles
    from ._storage.store import Store

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
        self.label = f"{socket.gethostname()}:{path.resolve()}"[:255]
        """Who wrote these rows (a shared export's worker): this machine and the file."""
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

    def __init__(self, paginate: Paginate, profiles: Profiles, call_log: CallLogWriter,
                 store: Store | None = None) -> None:
        self._paginate = paginate
        self._profiles = profiles
        self._call_log = call_log
        self._store = store

    async def run(self, query: str, out: str | Path, *, concurrency: int = 8, include_outsiders: bool = False,
                  progress: bool = True, on_author: Callable[[str], object] | None = None,
                  shared: bool = False, claim_ttl: float = 60.0) -> GraphReport:
        """Write the follow graph of the authors of posts matching ``query`` to the CSV ``out``
        (see ``export_follow_graph``)."""
        started = time.monotonic()
        calls_before = self._call_log.rows_added
        output = _Output(Path(out))
        label = output.label
        try:
            if shared:
                await self._shared_authors(query, output, claim_ttl)
                edges = await self._shared_follows(query, output, concurrency, include_outsiders, on_author,
                                                   claim_ttl, label)
            else:
                await self._collect_authors(query, output, f"graph:{query}")
                edges = await self._write_follows(query, output, concurrency, include_outsiders, progress,
                                                  on_author)
        finally:
            output.close()
        await self._call_log.flush()
        return GraphReport(len(output.authors), edges, self._call_log.rows_added - calls_before,
                           time.monotonic() - started)

    async def _shared_authors(self, query: str, output: _Output, claim_ttl: float) -> None:
        """The authors of the crawl job ``graph:<query>``: its search is listed once, by one worker at a
        time (resumed at the stored cursor if that worker dies); every worker waits for the whole list,
        which is the community the follows are kept within."""
        from ._crawl.enumeration import CrawlEnumeration, ListedPage, enumerate_job
        from ._crawl.jobs import CrawlJobs
        from ._crawl.shared_backfill import worker_id

        if self._store is None:
            raise InvalidInput("a shared graph export keeps its job in a database: pass the client's store")
        store, job, worker = self._store, f"graph:{query}", worker_id()

        async def pages(cursor: str | None) -> AsyncIterator[ListedPage]:
            async for page in self._paginate("app.bsky.feed.searchPosts", q=query, limit=100,
                                             cursor=cursor).pages():
                posts = page.require("posts")[0]
                yield ListedPage(list(dict.fromkeys(post["author"]["did"] for post in posts)), page.raw.get("cursor"))

        while not await enumerate_job(store, job, worker, pages, ttl=claim_ttl):
            async with store.transaction() as session:
                state = await CrawlEnumeration(session, job).state()
            if state is not None and state.finished:
                break
            await asyncio.sleep(min(2.0, claim_ttl / 4))  # another worker lists: wait for the whole community
        async with store.transaction() as session:
            output.authors = await CrawlJobs(session, job).dids()

    async def _shared_follows(self, query: str, output: _Output, concurrency: int, include_outsiders: bool,
                              on_author: Callable[[str], object] | None, claim_ttl: float, label: str) -> int:
        """The authors' follows, each author claimed from the job ``graph:<query>`` by one worker."""
        from ._crawl.claims import work_through
        from ._crawl.shared_backfill import worker_id

        assert self._store is not None
        job = f"graph:{query}"
        community = set(output.authors)
        edges = 0

        async def handle(author: str) -> None:
            nonlocal edges
            edges += await self._author(query, author, output, community, include_outsiders)
            logger.info("graph: %s done", author)
            if on_author is not None:
                on_author(author)

        failed = await work_through(self._store, job, worker_id(), handle, label=label, concurrency=concurrency,
                                    claim_ttl=claim_ttl)
        if failed:
            raise InvalidInput(f"{len(failed)} authors failed ({'; '.join(f'{d}: {r}' for d, r in failed.items())}); "
                               "run the export again to retry them")
        return edges

    async def _author(self, query: str, author: str, output: _Output, community: set[str],
                      include_outsiders: bool) -> int:
        """One author's follows written (resumed from the stored cursor); returns the rows written."""
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
        return written

    async def _collect_authors(self, query: str, output: _Output, cursor_key: str) -> None:
        known = set(output.authors)
        async for post in self._paginate("app.bsky.feed.searchPosts", q=query, limit=100, resume=True,
                                         cursor_key=cursor_key):
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
                written = await self._author(query, author, output, community, include_outsiders)
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
                              on_author: Callable[[str], object] | None = None, shared: bool = False,
                              claim_ttl: float = 60.0) -> GraphReport:
    """Write the follow graph of the authors of posts matching ``query`` to the CSV ``out``.

    Args:
        bsky: the client (an ``AsyncBskyClient``) whose listings, profile cache and call log are used.
        concurrency: authors processed at once.
        include_outsiders: also write follows of accounts that are not among the authors.
        progress: show a progress bar (tqdm, on a terminal) or log lines.
        on_author: called with each author's DID when it is finished (for tests and UIs).
        shared: run as one worker of the crawl job ``graph:<query>`` in the client's database: the
            search is listed once per job (by one worker at a time, resumed at its stored cursor if
            that worker dies; the others wait for the whole list of authors), and every worker (any
            process, any machine, same database) writes the follows of the authors it claims to its
            own ``out``; a dead worker's authors are taken over ``claim_ttl`` seconds after it died,
            resuming from their stored cursors.
    """
    export = FollowGraphExport(bsky.paginate, bsky.profiles, bsky.call_log, getattr(bsky, "store", None))
    return await export.run(query, out, concurrency=concurrency, include_outsiders=include_outsiders,
                            progress=progress, on_author=on_author, shared=shared, claim_ttl=claim_ttl)
