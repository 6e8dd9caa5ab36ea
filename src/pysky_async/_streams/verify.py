"""Verification of firehose commits before a handler sees them: signature, blocks, MST proofs, chain.

``CommitVerifier`` (also exported as ``SignatureVerifier``) is what ``StreamConsumer(verifier=...)``
calls for each ``#commit`` (and ``#sync``). ``verify`` chooses how much is proven:

- ``"signature"``: the commit block's ``sig`` (compact, low-S) against the repo's ``#atproto`` key;
- ``"proofs"`` (default): that, every block hash-checked against its CID, and each op proven
  against the signed MST root (inclusion for creates/updates, exclusion for deletes);
- ``"inductive"``: that, and the Sync 1.1 check: the ops inverted against the partial tree
  give back the commit's ``prevData``.

A commit that fails is counted by reason, logged with its repo, seq and reason, and then dropped
(``policy="drop"``) or handed on with ``event.invalid`` set (``policy="flag"``). With ``chain``
on, each repo's verified (rev, MST root) is followed: a commit whose ``since``/``prevData`` do not
continue it, or a ``#sync`` that declares another root, marks the repo desynchronized (and, with a
``store``, queues it in ``bsky_repo_sync_state`` for a resync from ``getRepo``); the commit itself,
proven on its own, is still delivered. Keys come from the DID document through ``resolve_did``
and are cached; a signature that does not verify re-resolves the key once (it may have rotated).

With ``processes=N``, commits are proven (blocks, proofs, signature) in N worker processes while
the loop decodes the next frames; the loop still proves some itself whenever the workers have
enough queued, and all of them if the workers cannot run. Use the verifier as ``async with``
(or call ``aclose()``) to stop the workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal

import anyio

from .._exceptions import PyskyError, StorageError, StreamError, VerificationError
from .._storage.repo_sync import ACTIVE, RepoSyncStateRepository
from .._storage.store import Store
from .._sync.blocks import cid_str
from .._sync.commit import CommitOp, ProvenCommit, load_commit, prove_commit
from .._sync.crypto import CheckSignature, signature_checker, signing_key
from .._sync.proof_worker import Job, key_spec
from .events import CommitEvent, StreamEvent, SyncEvent
from .proof_pool import ProofPool

logger = logging.getLogger("pysky_async.streams")
ResolveDid = Callable[[str], Awaitable[dict[str, Any]]]
VerifyMode = Literal["signature", "proofs", "inductive"]
Policy = Literal["drop", "flag", "pass"]

__all__ = ["CommitVerifier", "SignatureVerifier", "signing_key"]

_THREAD_BYTES = 256 * 1024
"""Commits with bigger CAR slices are proven in a worker thread (small ones cost less than the hop)."""


class CommitVerifier:
    """Proves commits before the handler (pass it to ``StreamConsumer(verifier=...)``).

    Args:
        resolve_did: returns a DID document (``bsky.identity.resolve_did``).
        verify: ``"signature"``, ``"proofs"`` (default) or ``"inductive"`` (see the module doc).
        policy: ``"drop"`` (the handler never sees a commit that fails) or ``"flag"`` (it does, with
            ``event.invalid`` naming the reason; ``"pass"`` is the same). Failures are always
            counted (``failures``) and logged.
        chain: follow each repo's chain (``since``/``prevData``) and mark breaks; needs every
            commit of a repo, so turn it off when the consumer filters collections.
        store: where desynchronized repos are queued (``bsky_repo_sync_state``).
        processes: worker processes proving commits beside the event loop (0: all on the loop).
            On a machine with spare cores this raises the commits verified per second; the
            checks are the same. Stop them with ``aclose()`` or ``async with``.
    """

    def __init__(self, resolve_did: ResolveDid, *, verify: VerifyMode = "proofs", policy: Policy = "drop",
                 chain: bool = True, store: Store | None = None, processes: int = 0) -> None:
        if policy not in ("drop", "flag", "pass"):
            raise StreamError(f"policy must be 'drop' or 'flag', not {policy!r}")
        if verify not in ("signature", "proofs", "inductive"):
            raise StreamError(f"verify must be 'signature', 'proofs' or 'inductive', not {verify!r}")
        if processes < 0:
            raise StreamError(f"processes must be 0 (prove on the event loop) or more, not {processes}")
        self.processes = processes
        self.resolve_did = resolve_did
        self.verify = verify
        self.policy = policy
        self.chain = chain
        self.store = store
        self.verified = 0
        self.failed = 0
        self.key_refreshes = 0
        self.failures: Counter[str] = Counter()
        """Failed events by reason (``signature``, ``block-cid``, ``op-mismatch``, ``prev-data``...)."""
        self.desynchronized: Counter[str] = Counter()
        """Chain breaks by repo (each one queued for a resync when a store is given)."""
        self._keys: dict[str, CheckSignature] = {}
        self._specs: dict[str, tuple[str, bytes]] = {}
        self._heads: dict[str, tuple[str, bytes]] = {}
        self._pool: ProofPool | None = None
        self.offloaded = 0
        """Commits proven in a worker process (``processes``)."""

    async def __aenter__(self) -> CommitVerifier:
        """Start the worker processes (``processes``) and wait until they are ready."""
        pool = await self._pool_here()
        if pool is not None:
            await pool.wait_ready()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the worker processes (if any); a later check starts them again."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()

    async def _pool_here(self) -> ProofPool | None:
        """The worker pool of the running loop, started on first use (None without ``processes``)."""
        if not self.processes:
            return None
        pool = self._pool
        if pool is None or pool.loop is not asyncio.get_running_loop():
            pool = self._pool = ProofPool(self.processes)
            await pool.start()
        return pool

    def summary(self) -> str:
        """One line: verified, failed by reason, desynchronized repos."""
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.failures.most_common()) or "none"
        return (f"{self.verified} verified, {self.failed} failed ({reasons}), "
                f"{len(self.desynchronized)} repos desynchronized")

    async def _key(self, did: str, *, fresh: bool = False) -> CheckSignature:
        if fresh or did not in self._keys:
            key = signing_key(await self.resolve_did(did))
            self._keys[did] = signature_checker(key)
            self._specs[did] = key_spec(key)
        return self._keys[did]

    async def _signed(self, did: str, proven: ProvenCommit) -> None:
        if (await self._key(did))(proven.unsigned, proven.sig):
            return
        self.key_refreshes += 1
        if not (await self._key(did, fresh=True))(proven.unsigned, proven.sig):
            raise VerificationError(f"the commit of {did} is not signed by its #atproto key", reason="signature")

    async def check(self, event: StreamEvent) -> bool:
        """True if ``event`` proves itself; failures are counted, logged and (policy) flagged."""
        try:
            if isinstance(event, CommitEvent):
                await self._check_commit(event)
            elif isinstance(event, SyncEvent):
                await self._check_sync(event)
            else:
                return True
        except VerificationError as exc:
            return self._failed(event, exc.reason, str(exc))
        except PyskyError as exc:  # an unresolvable DID fails this event, not the stream
            return self._failed(event, "key-unavailable", f"cannot get the signing key: {exc}")
        except (KeyError, TypeError, ValueError) as exc:
            return self._failed(event, "malformed", f"a malformed event body: {exc!r}")
        self.verified += 1
        return True

    def _failed(self, event: StreamEvent, reason: str, message: str) -> bool:
        self.failed += 1
        self.failures[reason] += 1
        logger.warning("stream: %s of %s at cursor %s failed verification [%s]: %s (%s)", type(event).__name__,
                       event.did, event.cursor, reason, message,
                       "dropped" if self.policy == "drop" else "passed on, flagged")
        if self.policy != "drop":
            object.__setattr__(event, "invalid", reason)  # the one field a verifier sets on a frozen event
        return False

    async def _check_commit(self, event: CommitEvent) -> None:
        body = event.frame
        if body is None:
            raise VerificationError("the event was decoded without its blocks (FirehoseSource(keep_commit=True))",
                                    reason="no-blocks")
        if body.get("tooBig"):
            raise VerificationError("a tooBig commit carries no proofs", reason="too-big")
        car, commit_cid, rev = body.get("blocks") or b"", body.get("commit"), str(body["rev"])
        prev_data, since = body.get("prevData"), body.get("since")
        proven = await self._proven_in_worker(event, body, car, commit_cid, rev, since, prev_data) if (
            self.processes) else None
        if proven is None:
            if len(car) > _THREAD_BYTES:
                proven = await anyio.to_thread.run_sync(
                    lambda: self._prove(car, commit_cid, body, event.did, rev, since, prev_data))
            else:
                proven = self._prove(car, commit_cid, body, event.did, rev, since, prev_data)
            await self._signed(event.did, proven)
        if self.chain:
            await self._follow(event, proven, since, prev_data)

    async def _proven_in_worker(self, event: CommitEvent, body: dict[str, Any], car: bytes, commit_cid: Any,
                                rev: str, since: Any, prev_data: Any) -> ProvenCommit | None:
        """The commit proven and signature-checked by a worker process (None: prove it on the loop)."""
        pool = await self._pool_here()
        if pool is None or not pool.available:
            return None
        ops = () if self.verify == "signature" else tuple(
            (op.action, op.path, op.cid, op.prev) for op in map(CommitOp.from_frame, body["ops"]))
        await self._key(event.did)
        job: Job = (self.verify, car, commit_cid, ops, event.did, rev, since, prev_data, self._specs[event.did])
        verdict = await pool.prove(job)
        if verdict is None:
            return None
        self.offloaded += 1
        outcome, first, second = verdict
        if outcome == "failed":
            raise VerificationError(str(second), reason=str(first))
        if outcome == "malformed":
            raise ValueError(first)
        if outcome == "signature":  # as _signed: the key may have rotated; fetched again, proven here
            self.key_refreshes += 1
            check = await self._key(event.did, fresh=True)
            proven = self._prove(car, commit_cid, body, event.did, rev, since, prev_data)
            if not check(proven.unsigned, proven.sig):
                raise VerificationError(f"the commit of {event.did} is not signed by its #atproto key",
                                        reason="signature")
            return proven
        return ProvenCommit(event.did, str(first), second, b"", b"", {})

    def _prove(self, car: bytes, commit_cid: Any, body: dict[str, Any], did: str, rev: str, since: Any,
               prev_data: Any) -> ProvenCommit:
        if self.verify == "signature":
            return load_commit(car, commit_cid, did=did, rev=rev)[0]
        return prove_commit(car, commit_cid, [CommitOp.from_frame(op) for op in body["ops"]], did=did, rev=rev,
                            since=since, prev_data=prev_data, inductive=self.verify == "inductive")

    async def _follow(self, event: CommitEvent, proven: ProvenCommit, since: Any, prev_data: Any) -> None:
        head = self._heads.get(event.did)
        if head is not None:
            rev, data = head
            if proven.rev <= rev:
                raise VerificationError(f"rev {proven.rev} does not follow the verified {rev}", reason="stale-rev")
            if since != rev:
                await self._desync(event.did, proven, f"a gap: the commit follows rev {since}, the last verified "
                                                      f"is {rev}")
            elif prev_data is not None and prev_data != data:
                await self._desync(event.did, proven, f"prevData {cid_str(prev_data)} is not the last verified "
                                                      f"root {cid_str(data)}")
        self._heads[event.did] = (proven.rev, proven.data)

    async def _check_sync(self, event: SyncEvent) -> None:
        body = event.frame
        if body is None:
            raise VerificationError("the event was decoded without its blocks (FirehoseSource(keep_commit=True))",
                                    reason="no-blocks")
        proven, _nodes = load_commit(body.get("blocks") or b"", None, did=event.did, rev=str(body["rev"]))
        await self._signed(event.did, proven)
        head = self._heads.get(event.did)
        if head is not None and head[1] != proven.data:
            await self._desync(event.did, proven, f"#sync declares root {cid_str(proven.data)} at rev {proven.rev}")
        self._heads[event.did] = (proven.rev, proven.data)

    async def _desync(self, did: str, proven: ProvenCommit, why: str) -> None:
        self.desynchronized[did] += 1
        logger.warning("stream: repo %s desynchronized (%s); queued for a resync", did, why)
        if self.store is None:
            return
        try:
            async with self.store.transaction() as session:
                await RepoSyncStateRepository(session).mark_desynchronized(
                    did, rev=proven.rev, data_cid=cid_str(proven.data), reason=why)
        except StorageError as exc:
            logger.warning("stream: could not queue %s for a resync: %s", did, exc)

    async def mark_active(self, did: str) -> None:
        """Record ``did`` as in sync again at its last verified head (after a resync)."""
        head = self._heads.get(did)
        self.desynchronized.pop(did, None)
        if self.store is not None:
            async with self.store.transaction() as session:
                await RepoSyncStateRepository(session).save(
                    did, rev=None if head is None else head[0], data_cid=None if head is None else cid_str(head[1]),
                    status=ACTIVE)


SignatureVerifier = CommitVerifier
"""The earlier name of ``CommitVerifier`` (it now proves more than the signature)."""
