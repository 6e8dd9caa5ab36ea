"""``bsky.sync``: whole repositories, verified (``get_repo``), and the repo listings of a host.

``get_repo`` downloads ``com.atproto.sync.getRepo`` through the client's pipeline (the body is
read chunk by chunk and refused past ``max_bytes``), takes the ``#atproto`` key from the DID
document (re-resolved once when the signature does not verify: the key may have rotated) and
runs ``verify_repo`` in a worker thread. Nothing here imports libipld or cryptography until used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import InvalidInput, InvalidResponse, PyskyError, ResponseTooLarge, VerificationError
from .._syntax import Did, Nsid

if TYPE_CHECKING:
    from .._identity import IdentityResolver
    from .._storage.store import Store
    from .._streams.consumer import Handler, StreamConsumer
    from .._xrpc import Xrpc
    from .backfill import Backfill, Follow
    from .repo import VerifiedRepo

REPO_MAX_BYTES = 1024 * 1024 * 1024
"""``get_repo``'s default bound (1 GiB): the largest Bluesky repos (accounts with millions of
records) are a few hundred MB; a bound still stops a hostile host from filling memory."""
_THREAD_BYTES = 64 * 1024
"""CARs bigger than this are verified in a worker thread (smaller ones cost less than the hop)."""


@dataclass(frozen=True, slots=True)
class RepoListing:
    """One repo of ``list_repos``: its DID, head commit CID, rev, and hosting status."""

    did: str
    head: str
    rev: str
    active: bool = True
    status: str | None = None
    """Why the repo is inactive (``takendown``, ``suspended``, ``deactivated``...), else None."""


class Sync:
    """Repository sync: ``await bsky.sync.get_repo(did)``, ``bsky.sync.list_repos(service)``."""

    def __init__(self, xrpc: Xrpc, identity: IdentityResolver, store: Store | None = None) -> None:
        self._xrpc = xrpc
        self._identity = identity
        self._store = store

    async def get_repo(self, did: str, *, service: str | None = None, collections: Collection[str] | None = None,
                       max_bytes: int = REPO_MAX_BYTES, since: str | None = None) -> VerifiedRepo:
        """The verified records of ``did``'s repo (see ``verify_repo``), from its PDS or ``service``.

        Args:
            did: the repo's DID.
            service: the host to ask (a PDS or relay); default: the PDS in the DID document.
            collections: only decode and return these collections' records (the whole tree is
                still verified).
            max_bytes: refuse a CAR larger than this (``ResponseTooLarge``); default 1 GiB.
            since: a rev: ask only for what changed after it. The answer is then a partial
                CAR that does not prove the whole tree: not supported yet (``InvalidInput``).

        Raises:
            VerificationError: the CAR does not prove itself (``reason`` says why).
            ResponseTooLarge: the CAR is larger than ``max_bytes``.
            IdentityNotFound: the DID does not resolve (or names no PDS).
        """
        if not did.startswith("did:"):
            raise InvalidInput(f"get_repo takes a DID, not {did!r}: for a handle, pass "
                               "await bsky.identity.resolve_handle(handle)")
        did = Did(did)
        if since is not None:
            raise InvalidInput("get_repo(since=...) returns a partial CAR that cannot be verified as a whole "
                               "repo; fetch the whole repo (since=None) and compare revs")
        if collections is not None:
            collections = [Nsid(c) for c in collections]
        if max_bytes < 1:
            raise InvalidInput(f"max_bytes must be positive, not {max_bytes}")
        car = await self._download(did, service, max_bytes)
        return await self.verify(car, did=did, collections=collections)

    async def _download(self, did: str, service: str | None, max_bytes: int) -> bytes:
        """The repo CAR of ``did`` from ``service`` (else its PDS), unverified, at most ``max_bytes``."""
        host = service or await self._identity.pds_endpoint(did)
        request = self._xrpc.request("GET", "com.atproto.sync.getRepo", host, {"did": did})
        request.context.max_response_bytes = max_bytes
        try:
            return bytes((await self._xrpc.send(request)).content)
        except ResponseTooLarge as exc:
            raise ResponseTooLarge(f"the repo of {did} at {host} is larger than max_bytes={max_bytes}; the rest "
                                   "was not read. Pass a larger get_repo(max_bytes=...) if repos this large "
                                   "are expected") from exc

    async def verify(self, car: bytes, *, did: str, collections: Collection[str] | None = None) -> VerifiedRepo:
        """Verify a repo CAR of ``did`` already at hand against its DID document's ``#atproto`` key
        (re-resolved once on a signature failure); big CARs are verified in a worker thread."""
        from .crypto import signing_key

        document = await self._identity.resolve_did(did)
        try:
            return await _verify_off_loop(car, did, signing_key(document), collections)
        except VerificationError as exc:
            if exc.reason != "signature":
                raise
        fresh = await self._identity.resolve_did(did, fresh=True)  # the key may have rotated
        return await _verify_off_loop(car, did, signing_key(fresh), collections)

    async def list_repos(self, service: str, *, limit: int = 1000) -> AsyncIterator[RepoListing]:
        """Every repo a PDS or relay hosts (``com.atproto.sync.listRepos``), page by page."""
        cursor: str | None = None
        while True:
            repos, cursor = await self._repo_page(service, limit, cursor)
            for repo in repos:
                yield repo
            if not cursor:
                return

    async def _repo_page(self, service: str, limit: int, cursor: str | None) -> tuple[list[RepoListing], str | None]:
        """One page of ``listRepos`` after ``cursor``, and the cursor of the next (None: the last page)."""
        page = await self._page("com.atproto.sync.listRepos", service, {"limit": limit}, cursor)
        repos = []
        for item in _items(page, "com.atproto.sync.listRepos"):
            try:
                repos.append(RepoListing(str(item["did"]), str(item["head"]), str(item["rev"]),
                                         bool(item.get("active", True)), item.get("status")))
            except KeyError as exc:
                raise InvalidResponse(f"com.atproto.sync.listRepos from {service}: a repo without {exc}") from exc
        following = page.get("cursor")
        return repos, str(following) if following else None

    async def list_repos_by_collection(self, collection: str, service: str, *,
                                       limit: int = 2000) -> AsyncIterator[str]:
        """The DIDs of repos holding records of ``collection`` (``com.atproto.sync.listReposByCollection``,
        served by relays' collection directories, not by a PDS)."""
        collection = Nsid(collection)
        cursor: str | None = None
        while True:
            page = await self._page("com.atproto.sync.listReposByCollection", service,
                                    {"collection": collection, "limit": limit}, cursor)
            for item in _items(page, "com.atproto.sync.listReposByCollection"):
                did = item.get("did")
                if not isinstance(did, str):
                    raise InvalidResponse(f"com.atproto.sync.listReposByCollection from {service}: a repo "
                                          "without a did")
                yield did
            cursor = page.get("cursor")
            if not cursor:
                return

    def backfill(self, handler: Handler, *, name: str, dids: Collection[str] | None = None,
                 service: str | None = None, collections: Collection[str] | None = None, concurrency: int = 8,
                 per_host: int = 4, rate: float | None = None, max_bytes: int = REPO_MAX_BYTES,
                 live: StreamConsumer | None = None, shared: bool = False, claim_ttl: float = 60.0,
                 label: str | None = None, relist: bool = False) -> Backfill:
        """A backfill of whole repos into a stream ``handler`` (``Backfill``), not started: ``await job.run()``.

        Each repo is fetched with ``get_repo`` (from ``service``, else its own PDS) and verified; each
        record reaches ``handler`` as a ``CommitEvent`` with ``live=False``, one ``create`` op and the
        repo's ``rev``. The job's state is kept in the client's database under ``name``: a rerun skips
        the repos done and retries the failed ones; no repo's ``on_commit`` work is applied twice.

        Args:
            dids: the repos; None: every active repo ``service`` lists (``listRepos``).
            collections: only these collections' records (``prefix.*`` allowed).
            concurrency / per_host / rate: repos at once; of them, downloads at once from one host (a
                repo is verified, handled and committed after its download, outside this bound, so
                a concurrency above per_host keeps each host busy); fetches a second per host.
            live: a consumer of the same ``name`` running beside (see ``follow``).
            shared: run as one worker of the crawl job ``name`` in the database (``SharedBackfill``):
                any number of processes on any machines with the same ``name`` and database share the
                repos; a dead worker's repos are taken over ``claim_ttl`` seconds after it died.
                ``label`` is stored with each repo this worker did (e.g. the file it writes to).
                ``service``'s repos are listed once per job (by one worker, resumed at its cursor if
                it dies); ``relist=True`` lists a finished job again at this worker's start (new
                repos join it; those done stay done).
        """
        from .backfill import Backfill

        if self._store is None:
            raise InvalidInput("a backfill keeps its state in a database: use the client's bsky.sync")
        if dids is None and service is None:
            raise InvalidInput("backfill which repos? pass dids=[...] or service= (its listRepos is enumerated)")
        exact = None if collections is None or any(c.endswith(".*") for c in collections) else list(collections)

        async def download(did: str, host: str | None) -> bytes:
            # the DID document (its key verifies the commit) is resolved while the CAR downloads:
            # one round trip per repo instead of two
            resolving = asyncio.ensure_future(self._identity.resolve_did(did))
            try:
                return await self._download(Did(did), host, max_bytes)
            finally:
                with contextlib.suppress(PyskyError):  # verify() resolves again and reports it
                    await resolving

        async def verify(did: str, car: bytes) -> VerifiedRepo:
            return await self.verify(car, did=did, collections=exact)

        async def host_of(did: str) -> str | None:
            return service if service is not None else await self._identity.pds_endpoint(did)

        listing = None
        if dids is None:
            assert service is not None

            async def active() -> AsyncIterator[str]:
                async for repo in self.list_repos(service):
                    if repo.active:
                        yield repo.did

            listing = active()
        if shared:
            from .._crawl.enumeration import ListedPage
            from .._crawl.shared_backfill import SharedBackfill

            async def pages(cursor: str | None) -> AsyncIterator[ListedPage]:
                # listed once per job, page by page: a listing taken over resumes at the stored cursor
                assert service is not None
                while True:
                    repos, cursor = await self._repo_page(service, 1000, cursor)
                    yield ListedPage([repo.did for repo in repos if repo.active], cursor, last=cursor is None)
                    if cursor is None:
                        return

            return SharedBackfill(handler, store=self._store, name=name, download=download, verify=verify,
                                  dids=dids, listing=listing, host_of=host_of, collections=collections,
                                  concurrency=concurrency, per_host=per_host, rate=rate, live=live,
                                  claim_ttl=claim_ttl, label=label, pages=pages if dids is None else None,
                                  relist=relist)
        return Backfill(handler, store=self._store, name=name, download=download, verify=verify, dids=dids,
                        listing=listing, host_of=host_of, collections=collections, concurrency=concurrency,
                        per_host=per_host, rate=rate, live=live)

    def follow(self, handler: Handler, *, name: str, service: str, dids: Collection[str] | None = None,
               collections: Collection[str] | None = None, start_cursor: int | None = None,
               concurrency: int = 8, per_host: int = 4, rate: float | None = None,
               max_bytes: int = REPO_MAX_BYTES, live_concurrency: int = 32, max_pending: int = 2000) -> Follow:
        """Backfill and live together (Tap's rule), not started: ``await follow.run()`` until ``stop()``.

        The firehose of ``service`` (a PDS or relay) runs under ``name`` beside a backfill of the
        same repos (``dids``, else ``service``'s ``listRepos``): a repo's live events wait while it
        backfills, then only those with a ``rev`` above the backfilled one reach ``handler``. Live
        events of repos outside the backfill flow at once. The backfill starts once the firehose is
        connected, so nothing between the snapshot and the live tail is missed.
        """
        from .._streams.consumer import StreamConsumer
        from .._streams.firehose import FirehoseSource
        from .backfill import Follow

        consumer = StreamConsumer(FirehoseSource(service), handler, store=self._store, name=name,
                                  collections=collections, start_cursor=start_cursor, concurrency=live_concurrency,
                                  max_pending=max_pending)
        job = self.backfill(handler, name=name, dids=dids, service=service, collections=collections,
                            concurrency=concurrency, per_host=per_host, rate=rate, max_bytes=max_bytes, live=consumer)
        return Follow(job, consumer)

    async def _page(self, nsid: str, service: str, params: dict[str, Any], cursor: str | None) -> dict[str, Any]:
        request = self._xrpc.request("GET", nsid, service, {**params, **({"cursor": cursor} if cursor else {})})
        return dict((await self._xrpc.send(request)).raw)


def _items(page: dict[str, Any], nsid: str) -> list[dict[str, Any]]:
    repos = page.get("repos")
    if not isinstance(repos, list) or not all(isinstance(item, dict) for item in repos):
        raise InvalidResponse(f"{nsid} answered without a list of repos")
    return repos


async def _verify_off_loop(car: bytes, did: str, key: Any, collections: Collection[str] | None) -> VerifiedRepo:
    from .repo import verify_repo

    if len(car) <= _THREAD_BYTES:
        return verify_repo(car, did=did, key=key, collections=collections)
    return await anyio.to_thread.run_sync(lambda: verify_repo(car, did=did, key=key, collections=collections))
