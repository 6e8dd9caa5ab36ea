"""Single-flight login and refresh, for app-password and OAuth sessions alike.

Refresh tokens are single use: two token requests with the same one log the account out. So
one request per account at a time, across coroutines and processes, and no database lock
held while it is on the network (a slow token endpoint would lock every other writer out):

- within a process, ``SingleFlight`` runs the work as one task per account, shielded from its
  callers: a caller cancelled half way (a web request whose client left) neither cancels the
  token request nor loses the rotated pair; later callers join the running task;
- across processes, ``hold_lease`` takes a lease row with an expiry in a short transaction
  (``bsky_refresh_lease``); whoever waits polls until it is free, then re-reads the stored
  session. The network call runs within ``NETWORK_DEADLINE`` (less than the lease's lifetime)
  and the holder stores the new pair and gives the lease back in one short transaction. A
  holder that died leaves a lease that expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._exceptions import RequestTimeout, StorageError

if TYPE_CHECKING:  # the storage modules load SQLAlchemy: imported where used, not at import
    from sqlalchemy.ext.asyncio import AsyncSession

    from ._storage.store import Store

logger = logging.getLogger("pysky_async")

T = TypeVar("T")

NETWORK_DEADLINE = 60.0
"""A login or token request that takes longer than this fails (and frees the account for a retry)."""
LEASE_TTL = 90.0
"""A lease lasts this long: longer than ``NETWORK_DEADLINE``, so it only expires when its holder died."""
POLL_FIRST, POLL_MAX = 0.02, 0.5
"""How often a process waiting for another's lease looks again (doubling from the first to the max)."""


class SingleFlight(Generic[T]):
    """One running task per key; callers that come while it runs await the same task, shielded."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of the task running for ``key``, started with ``work()`` if there is none.
        Cancelling a caller leaves the task running (its result is used when it lands)."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(work(), name=f"pysky_async refresh of {key}")
            self._running[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        return await asyncio.shield(task)

    def _done(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled() and task.exception() is not None:  # retrieved, even if every caller left
            logger.debug("%s failed: %s", task.get_name(), task.exception())


@dataclass
class Lease:
    """A lease this process holds; ``release(db)`` gives it back inside the caller's transaction
    (with the new session), else leaving ``hold_lease`` gives it back on its own."""

    name: str
    holder: str
    released: bool = False

    async def release(self, db: AsyncSession) -> None:
        from ._storage.repositories import LeaseRepository

        await LeaseRepository(db).release(self.name, self.holder)
        self.released = True


@contextlib.asynccontextmanager
async def hold_lease(store: Store, name: str, *, ttl: float | None = None) -> AsyncIterator[Lease]:
    """Hold the lease ``name``: wait (polling) while another process holds it unexpired."""
    from ._storage.repositories import LeaseRepository

    holder = secrets.token_hex(16)
    delay = POLL_FIRST
    while True:
        async with store.transaction() as db:
            if await LeaseRepository(db).take(name, holder, LEASE_TTL if ttl is None else ttl):
                break
        await asyncio.sleep(delay)
        delay = min(delay * 2, POLL_MAX)
    lease = Lease(name, holder)
    try:
        yield lease
    finally:
        if not lease.released:
            try:
                async with store.transaction() as db:
                    await lease.release(db)
            except StorageError as exc:
                logger.warning("could not give back the refresh lease %s (%s); it expires on its own", name, exc)


async def within_deadline(what: str, call: Awaitable[T], deadline: float | None = None) -> T:
    """``await call``, failing with ``RequestTimeout`` after ``deadline`` seconds."""
    seconds = NETWORK_DEADLINE if deadline is None else deadline
    try:
        return await asyncio.wait_for(call, seconds)
    except asyncio.TimeoutError as exc:
        raise RequestTimeout(f"{what} got no answer within {seconds:g} s; the next call tries again") from exc
