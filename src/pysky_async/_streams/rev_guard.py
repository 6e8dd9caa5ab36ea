"""Effects exactly once, by ``rev`` (Tap's rule): a repo's events apply only above its newest applied rev.

Two checks. When an event is dispatched, ``RevGuard.admit`` compares its rev with the newest rev
this consumer admitted or committed for the repo (stored revs are loaded in batches, once per
repo): a replay is skipped before the handler runs. When on-commit work commits, ``apply`` compares
again inside the cursor's transaction, against the stored rev, and advances it there: a commit
that succeeded but lost its reply and is retried finds its own rev stored and runs nothing twice.
TIDs compare as strings.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .._storage.repo_revs import RepoRevRepository
from .._storage.store import Store
from .row_inserts import run_work
from .watermark import OnCommit

logger = logging.getLogger("pysky_async.streams")

_BATCH = 500


class RevStep:
    """The on-commit work of one event of repo ``did`` at ``rev``: it runs only above the stored rev."""

    __slots__ = ("did", "rev", "strict", "work")

    def __init__(self, did: str, rev: str, strict: bool = True) -> None:
        self.did = did
        self.rev = rev
        self.strict = strict
        """False: an equal rev runs too (Jetstream sends one event per op, all at the commit's rev)."""
        self.work: list[OnCommit] = []

    async def __call__(self, session: AsyncSession) -> Any:
        """Run alone (outside ``apply``): check, run and advance this one step."""
        await apply(session, "", [self])


async def apply(session: AsyncSession, consumer: str, work: Sequence[OnCommit]) -> int:
    """Run ``work`` in order inside ``session``'s transaction; a ``RevStep`` runs only if its rev is
    above the repo's stored (or earlier in this batch) rev, and advances it. Returns the steps skipped."""
    steps = [each for each in work if isinstance(each, RevStep)]
    revs = RepoRevRepository(session)
    # PostgreSQL: the stored revs are read and advanced to the batch's newest in one statement (the
    # outcome is the same: a repo's stored rev ends at the newest rev applied, never lower)
    batch_newest: dict[str, str] = {}
    for step in steps:
        if step.rev > batch_newest.get(step.did, ""):
            batch_newest[step.did] = step.rev
    stored = await revs.advance_returning_stored(consumer, batch_newest)
    newest = dict(stored) if stored is not None else await revs.revs(consumer, batch_newest) if steps else {}
    advanced: dict[str, str] = {}
    skipped = 0
    runs: list[OnCommit] = []  # in order; the checks above need no effect of the work before them
    for each in work:
        if not isinstance(each, RevStep):
            runs.append(each)
            continue
        known = newest.get(each.did)
        if known is not None and (each.rev < known or (each.strict and each.rev == known)):
            skipped += 1
            logger.debug("skipping on-commit work of %s at rev %s: rev %s is applied", each.did, each.rev, known)
            continue
        runs.extend(each.work)
        newest[each.did] = advanced[each.did] = each.rev
    await run_work(session, runs)
    if stored is None:
        await revs.advance(consumer, advanced)
    return skipped


class RevGuard:
    """The newest rev admitted or committed per repo, in memory (bounded), backed by the database.

    Args:
        store: where stored revs are loaded from (None: in memory only).
        consumer: the consumer name the revs are kept under.
        max_cached: repos kept in memory; the oldest are forgotten (and loaded again when seen).
    """

    def __init__(self, store: Store | None, consumer: str, *, max_cached: int = 200_000) -> None:
        self.store = store
        self.consumer = consumer
        self.max_cached = max_cached
        self._revs: dict[str, str | None] = {}
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._loader: asyncio.Task[None] | None = None
        self._holds: dict[str, asyncio.Event] = {}

    async def admit(self, did: str, rev: str, strict: bool = True) -> bool:
        """True if ``rev`` is above every rev of ``did`` seen so far, or equal to it when not
        ``strict`` (and note it as the newest)."""
        revs = self._revs
        if did not in revs and self.store is not None:
            await self._load(did)
        known = revs.get(did)
        if known is not None and (rev < known or (strict and rev == known)):
            return False
        if did not in revs and len(revs) >= self.max_cached:
            for old in list(itertools.islice(revs, max(1, self.max_cached // 10))):
                del revs[old]
        revs[did] = rev
        return True

    def applied(self, did: str, rev: str) -> None:
        """``did`` is now applied up to ``rev`` (a backfill committed it): older events are skipped."""
        known = self._revs.get(did)
        if known is None or rev > known:
            self._revs[did] = rev

    # ---------------------------------------------------------------- holding a repo's live events
    def hold(self, did: str) -> None:
        """Hold ``did``'s events until ``release(did)`` (its backfill runs)."""
        self._holds.setdefault(did, asyncio.Event())

    def release(self, did: str) -> None:
        """Let ``did``'s held events go on (its backfill committed, or failed)."""
        event = self._holds.pop(did, None)
        if event is not None:
            event.set()

    @property
    def held(self) -> int:
        """Repos whose events are held now."""
        return len(self._holds)

    def gate(self, did: str) -> asyncio.Event | None:
        """The event to wait for before ``did``'s next event runs (None: it may run now)."""
        return self._holds.get(did)

    # ---------------------------------------------------------------- loading stored revs in batches
    async def _load(self, did: str) -> None:
        future = self._loading.get(did)
        if future is None:
            future = self._loading[did] = asyncio.get_running_loop().create_future()
            if self._loader is None:
                self._loader = asyncio.create_task(self._load_batches())
        await asyncio.shield(future)

    async def _load_batches(self) -> None:
        assert self.store is not None
        try:
            await asyncio.sleep(0)  # let the other repos' workers ask too
            while self._loading:
                dids = list(itertools.islice(self._loading, _BATCH))
                try:
                    async with self.store.transaction() as session:
                        found = await RepoRevRepository(session).revs(self.consumer, dids)
                except Exception as exc:  # the commit-time check still guards the effects
                    logger.warning("consumer %s: loading stored revs failed (%s); the check at commit guards "
                                   "the effects", self.consumer, exc)
                    found = {}
                for did in dids:
                    stored = found.get(did)
                    known = self._revs.get(did)
                    if known is None or (stored is not None and stored > known):
                        self._revs[did] = stored
                    future = self._loading.pop(did)
                    if not future.done():
                        future.set_result(None)
        finally:
            self._loader = None
