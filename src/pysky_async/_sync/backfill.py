"""Backfill: whole repos, verified, through a stream consumer's handler, each repo's effects exactly once.

Each repo is fetched and verified (``fetch``: ``bsky.sync.get_repo``), and each of its records is
handed to the handler as a ``CommitEvent`` with ``live=False``: one ``create`` op, the repo's
``rev``, ``cursor`` None, and the same ``EventContext`` a stream consumer gives. The records'
``on_commit`` work and the repo's "backfilled at rev R" row (``bsky_repo_rev``) commit in one
transaction, so a run killed at any point and started again under the same name finishes the job
and applies no repo twice. Beside a live consumer of the same name (``live=``), each repo's live
events wait while it backfills, and afterwards only those above the backfilled rev apply (Tap's rule).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .._exceptions import InvalidInput, PyskyError, VerificationError
from .._storage.repo_revs import DONE, RepoRevRepository
from .._storage.store import Store
from .._streams.consumer import EventContext, Handler, StreamConsumer, _Filters
from .._streams.events import CommitEvent, RepoOp
from .._streams.rev_guard import RevGuard
from .._streams.row_inserts import run_work
from .._streams.watermark import Entry, OnCommit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger("pysky_async.sync")


class RecordLike(Protocol):
    """One record of a verified repo (``RepoRecord``)."""

    @property
    def collection(self) -> str: ...
    @property
    def rkey(self) -> str: ...
    @property
    def cid(self) -> Any: ...
    @property
    def record(self) -> dict[str, Any]: ...


class RepoLike(Protocol):
    """A verified repo (``VerifiedRepo``): its DID, ``rev`` and records."""

    @property
    def did(self) -> str: ...
    @property
    def rev(self) -> str: ...
    @property
    def records(self) -> Sequence[RecordLike]: ...


FetchRepo = Callable[[str, str | None], Awaitable[RepoLike]]
"""``await fetch(did, host)``: the verified repo of ``did`` (from ``host``; None: its own PDS)."""
Download = Callable[[str, str | None], Awaitable[bytes]]
"""``await download(did, host)``: the repo CAR of ``did``, not verified yet (the host's slot is held
only while this runs)."""
VerifyCar = Callable[[str, bytes], Awaitable[RepoLike]]
"""``await verify(did, car)``: the verified repo in ``car`` (runs after the host's slot is free)."""
HostOf = Callable[[str], Awaitable[str | None]]
"""``await host_of(did)``: the host a repo is fetched from (the key of the per-host bounds)."""


@dataclass
class BackfillStats:
    """Progress of a backfill: repos done of ``repos``, records handed on, failures by DID."""

    repos: int = 0
    """Repos in the job (known once the enumeration ended)."""
    done: int = 0
    """Repos whose records committed in this run."""
    already_done: int = 0
    """Repos an earlier run had backfilled (skipped)."""
    failed: dict[str, str] = field(default_factory=dict)
    """DID -> why its fetch or verification failed (a later run tries it again)."""
    records: int = 0
    handler_errors: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        """Repos finished in any way (done now, done before, failed)."""
        return self.done + self.already_done + len(self.failed)

    @property
    def records_per_second(self) -> float:
        """Records handed on per second since the run started."""
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        return (f"{self.finished}/{self.repos} repos ({self.done} now, {self.already_done} before, "
                f"{len(self.failed)} failed), {self.records} records, {self.records_per_second:.0f} records/s, "
                f"{self.handler_errors} handler errors")


_Ready = tuple[str, str, list[OnCommit], "asyncio.Future[str | None]"]
"""A repo handled and waiting for its commit: DID, rev, its on-commit work, the commit's outcome."""


class _HostBudget:
    """At most ``per_host`` fetches at once and ``rate`` fetches a second, per host."""

    def __init__(self, per_host: int, rate: float | None) -> None:
        self.per_host = per_host
        self.interval = 0.0 if not rate else 1.0 / rate
        self._slots: dict[str | None, asyncio.Semaphore] = {}
        self._next: dict[str | None, float] = {}

    async def __call__(self, host: str | None) -> asyncio.Semaphore:
        slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
        if self.interval:
            now = time.monotonic()
            at = max(now, self._next.get(host, now))
            self._next[host] = at + self.interval
            if at > now:
                await asyncio.sleep(at - now)
        return slots


class Backfill:
    """Backfills repos into ``handler``, resumably, each repo's effects exactly once.

    Args:
        handler: the stream handler, ``async def handler(event, ctx)``; backfilled records arrive
            as ``CommitEvent``s with ``live=False`` (see the module docstring).
        store / name: the database and the consumer name the job's state is kept under (a rerun
            under the same name skips the repos already done and retries the failed ones).
        fetch: ``await fetch(did, host)`` -> the verified repo (``bsky.sync.get_repo``); or, instead,
        download / verify: ``await download(did, host)`` -> the CAR, ``await verify(did, car)`` -> the
            verified repo. Split so, a host's slot is held for the download only: the next repo downloads
            while this one is verified, handled and committed (``bsky.sync.backfill`` does this).
        dids / listing: the repos: explicit DIDs, or an async iterable of DIDs (``listRepos``).
        host_of: the host of a repo, for the per-host bounds (default: one host for all).
        collections: only these collections' records reach the handler (``prefix.*`` allowed).
        concurrency: repos fetched and handled at once; per_host: of them, at most this many
            downloading from one host at once (with download / verify; with fetch, fetched and
            verified); rate: fetches per second per host (None: unbounded).
        live: a live ``StreamConsumer`` of the same ``name`` running beside: it holds each repo's
            events until its backfill committed, then applies only those above the backfilled rev.
    """

    def __init__(self, handler: Handler, *, store: Store, name: str, fetch: FetchRepo | None = None,
                 download: Download | None = None, verify: VerifyCar | None = None,
                 dids: Iterable[str] | None = None, listing: AsyncIterable[str] | None = None,
                 host_of: HostOf | None = None, collections: Iterable[str] | None = None,
                 concurrency: int = 8, per_host: int = 4, rate: float | None = None,
                 live: StreamConsumer | None = None, log_interval: float = 10.0) -> None:
        if (dids is None) == (listing is None):
            raise InvalidInput("a backfill needs the repos: pass dids= (a list of DIDs) or listing= "
                               "(e.g. bsky.sync.list_repos(service)), not both")
        if (fetch is None) == (download is None and verify is None) or (download is None) != (verify is None):
            raise InvalidInput("a backfill gets its repos either by fetch= (download and verify) or by "
                               "download= and verify= together")
        if concurrency < 1 or per_host < 1:
            raise InvalidInput("concurrency and per_host must be at least 1")
        if live is not None and live.name != name:
            raise InvalidInput(f"the live consumer is named {live.name!r}, the backfill {name!r}: give both the "
                               "same name, so the rev guard is shared")
        self.handler = handler
        self.store = store
        self.name = name
        self.fetch = fetch
        self.download = download
        self.verify = verify
        self._dids = list(dict.fromkeys(dids)) if dids is not None else None
        self._listing = listing
        self._host_of = host_of
        self._filters = _Filters(collections, None)
        self.concurrency = concurrency
        self._budget = _HostBudget(per_host, rate)
        self.live = live
        self.guard: RevGuard | None = live.revs if live is not None else None
        self.log_interval = log_interval
        self.stats = BackfillStats()
        self._planned: list[str] | None = None
        self._queue: asyncio.Queue[str] | None = None
        self._ready: list[_Ready] = []
        self._committing = asyncio.Lock()

    async def prepare(self) -> list[str]:
        """Enumerate the repos (once) and hold each one's live events; returns the DIDs."""
        if self._planned is None:
            if self._dids is not None:
                planned = self._dids
            else:
                assert self._listing is not None
                planned = list(dict.fromkeys([did async for did in self._listing]))
            if self.guard is not None:
                for did in planned:
                    self.guard.hold(did)
            self._planned = planned
            self.stats.repos = len(planned)
        return self._planned

    async def run(self) -> BackfillStats:
        """Backfill every repo not done yet; returns the stats (``failed`` names the repos that failed)."""
        planned = await self.prepare()
        async with self.store.transaction() as session:
            before = await RepoRevRepository(session).backfilled(self.name)
        todo: list[str] = []
        for did in planned:
            row = before.get(did)
            if row is not None and row.backfill == DONE:
                self.stats.already_done += 1
                if self.guard is not None and row.rev is not None:
                    self.guard.applied(did, row.rev)
                self._release(did)
            else:
                todo.append(did)
        logger.info("backfill %s: %d repos, %d done before, %d to go", self.name, len(planned),
                    self.stats.already_done, len(todo))
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._queue = queue
        for did in todo:
            queue.put_nowait(did)
        reporter = asyncio.create_task(self._report())
        try:
            await asyncio.gather(*(self._worker(queue) for _ in range(min(self.concurrency, len(todo)))))
        finally:
            reporter.cancel()
            for did in todo:  # a cancelled run leaves nothing held
                self._release(did)
        logger.info("backfill %s finished: %s", self.name, self.stats.summary())
        return self.stats

    def stop(self) -> None:
        """Start no more repos; ``run()`` returns once the repos in progress committed."""
        queue = self._queue
        while queue is not None and not queue.empty():
            self._release(queue.get_nowait())

    async def _worker(self, queue: asyncio.Queue[str]) -> None:
        while not queue.empty():
            did = queue.get_nowait()
            try:
                await self._one(did)
            finally:
                self._release(did)

    def _release(self, did: str) -> None:
        if self.guard is not None:
            self.guard.release(did)

    async def _one(self, did: str) -> None:
        host = await self._host_of(did) if self._host_of is not None else None
        slots = await self._budget(host)
        try:
            if self.fetch is not None:
                async with slots:
                    repo = await self.fetch(did, host)
            else:
                assert self.download is not None and self.verify is not None
                async with slots:  # the host's slot for the download only
                    car = await self.download(did, host)
                repo = await self.verify(did, car)
        except PyskyError as exc:
            tag = f" ({exc.reason})" if isinstance(exc, VerificationError) else ""
            reason = f"{type(exc).__name__}{tag}: {exc}"
            self.stats.failed[did] = reason
            logger.warning("backfill %s: %s failed: %s", self.name, did, reason)
            async with self.store.transaction() as session:
                await RepoRevRepository(session).mark_failed(self.name, did, reason)
            return
        entry = Entry(None)
        context = EventContext(entry, True)
        now = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        handled = 0
        wanted = self._filters
        for record in repo.records:
            if not wanted.any_collection and not wanted.collection(record.collection):
                continue
            op = RepoOp("create", record.collection, record.rkey, str(record.cid), record.record)
            event = CommitEvent(None, did, now, rev=repo.rev, ops=(op,), live=False)
            try:
                await self.handler(event, context)
            except Exception:
                self.stats.handler_errors += 1
                logger.exception("backfill %s: handler failed on %s/%s; counted as handled", self.name, did, op.path)
            handled += 1
        try:
            rev = await self._commit(did, repo.rev, entry.callbacks or [])
        except Exception as exc:  # nothing of this repo committed: a later run does it again
            reason = f"its effects did not commit: {type(exc).__name__}: {exc}"
            self.stats.failed[did] = reason
            logger.warning("backfill %s: %s failed: %s", self.name, did, reason)
            return
        if rev is None:  # another run got there first
            self.stats.already_done += 1
            return
        if self.guard is not None:
            self.guard.applied(did, rev)
        self.stats.done += 1
        self.stats.records += handled

    async def _commit(self, did: str, rev: str, work: list[OnCommit]) -> str | None:
        """Commit a repo's work and its "done at rev" row; repos ready at the same time share one
        transaction (a group commit: one SQLite write instead of one per repo). Returns the rev
        stored, or None if the repo was done already."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._ready.append((did, rev, work, future))
        async with self._committing:
            if not future.done():
                batch, self._ready = self._ready, []
                await self._commit_batch(batch)
        return future.result()

    async def _commit_batch(self, batch: list[_Ready]) -> None:
        try:
            stored: dict[str, str | None] = {}
            async with self.store.transaction() as session:
                await self._before_commit(session, [did for did, *_ in batch])
                revs = RepoRevRepository(session)
                rows = await revs.get_many(self.name, [did for did, *_ in batch])
                done: dict[str, str] = {}
                for did, rev, work, _ in batch:
                    row = rows.get(did)
                    if row is not None and row.backfill == DONE:
                        stored[did] = None
                        continue
                    await run_work(session, work)
                    done[did] = rev if row is None or row.rev is None or rev > row.rev else row.rev
                    stored[did] = done[did]
                await revs.mark_backfilled_many(self.name, done)  # one statement for the group
                await self._after_commit(session, [did for did, *_ in batch])
        except Exception as exc:
            if len(batch) > 1:  # one repo's work failed the group: commit each alone
                for item in batch:
                    await self._commit_batch([item])
                return
            batch[0][3].set_exception(exc)
            return
        for did, _, _, future in batch:
            future.set_result(stored[did])

    async def _before_commit(self, session: AsyncSession, dids: list[str]) -> None:
        """Hook: first in a batch's transaction (a shared job locks its rows here)."""

    async def _after_commit(self, session: AsyncSession, dids: list[str]) -> None:
        """Hook: last in a batch's transaction, the repos' effects in it (a shared job marks them done)."""

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.log_interval)
            logger.info("backfill %s: %s", self.name, self.stats.summary())


class Follow:
    """A backfill and a live consumer of the same name, run together (``bsky.sync.follow``)."""

    def __init__(self, backfill: Backfill, consumer: StreamConsumer) -> None:
        self.backfill = backfill
        self.consumer = consumer

    async def run(self) -> None:
        """Hold the backfill's repos, connect the live stream, backfill, then stay live until ``stop()``."""
        await self.backfill.prepare()
        live = asyncio.create_task(self.consumer.run())
        try:
            while self.consumer.stats.connects == 0 and not live.done():
                await asyncio.wait([live], timeout=0.05)
            if not live.done():
                await self.backfill.run()
            await live
        finally:
            if not live.done():
                await self.consumer.stop()
                await live

    async def stop(self) -> None:
        """Stop the backfill (repos in progress finish) and the live consumer (it drains and commits)."""
        self.backfill.stop()
        await self.consumer.stop()
