"""``bsky.streams``: stream consumers built from a client, on its database and its identity resolver."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from .._storage.store import Store
from .collection_filter import check_collections
from .connection import Source
from .consumer import Handler, StreamConsumer
from .firehose import FirehoseSource
from .jetstream import PUBLIC_INSTANCES, JetstreamSource
from .labels import LabelConsumer, LabelHandler, LabelSource, LabelVerifier
from .verify import CommitVerifier, ResolveDid, SignatureVerifier

DEFAULT_RELAY = "wss://bsky.network"


class Streams:
    """Builds stream consumers (``bsky.streams.firehose(handler, name=...)``, ``.jetstream(...)``,
    ``.labels(...)``).

    A consumer with a ``name`` keeps its cursor in the client's database (a restart resumes
    there, not at ``start_cursor``; ``reset_cursor=True`` forgets it and starts at ``start_cursor``);
    without one, in memory. With ``group=`` the consumer is ``name``'s worker of that consumer group
    (``partitions``: of the source's log; see ``StreamConsumer``). The options are ``StreamConsumer``'s; the consumer is
    returned, not started: ``await consumer.run()`` (until ``await consumer.stop()``).

    Args:
        store: the client's store (``bsky.store``).
        resolve_did: DID documents for signature checks (``bsky.identity.resolve_did``).
    """

    def __init__(self, store: Store, resolve_did: ResolveDid) -> None:
        self._store = store
        self._resolve_did = resolve_did

    def firehose(self, handler: Handler, *, service: str = DEFAULT_RELAY, name: str | None = None,
                 verify: Literal["signature", "proofs", "inductive"] | CommitVerifier | None = None,
                 on_invalid: Literal["drop", "flag"] = "drop",
                 collections: Iterable[str] | None = None, dids: Iterable[str] | None = None,
                 start_cursor: int | None = None, concurrency: int = 32, max_pending: int = 2000,
                 commit_every: int = 500, commit_interval: float = 1.0, log_interval: float = 30.0,
                 silence_timeout: float = 60.0, backoff_max: float = 30.0,
                 max_frame_bytes: int = 5 * 1024 * 1024, reset_cursor: bool = False,
                 group: str | None = None, partitions: int | None = None) -> StreamConsumer:
        """A consumer of a relay's or PDS's firehose (``subscribeRepos``; ``service``: its URL).

        ``verify="proofs"`` (or ``"signature"``, ``"inductive"``) proves each commit against its repo's
        DID document, resolved through the client (``CommitVerifier``); what fails is dropped
        (``on_invalid="drop"``) or handed on with ``event.invalid`` set (``"flag"``). A named consumer
        queues repos whose chain breaks for a resync in the client's database; with ``collections``
        or ``dids`` the chain is not followed (filtered events would look like gaps).
        """
        verifier: CommitVerifier | None = None
        if isinstance(verify, str):
            filtered = collections is not None or dids is not None
            verifier = CommitVerifier(self._resolve_did, verify=verify, policy=on_invalid, chain=not filtered,
                                      store=self._store if name is not None else None)
        elif verify is not None:
            verifier = verify
        return self.consumer(FirehoseSource(service), handler, name=name, verifier=verifier,
                             collections=collections, dids=dids, start_cursor=start_cursor, concurrency=concurrency,
                             max_pending=max_pending, commit_every=commit_every, commit_interval=commit_interval,
                             log_interval=log_interval, silence_timeout=silence_timeout, backoff_max=backoff_max,
                             max_frame_bytes=max_frame_bytes, reset_cursor=reset_cursor, group=group,
                             partitions=partitions)

    def jetstream(self, handler: Handler, *, instances: Sequence[str] = PUBLIC_INSTANCES, name: str | None = None,
                  compress: bool = False, collections: Iterable[str] | None = None,
                  dids: Iterable[str] | None = None, start_cursor: int | None = None, concurrency: int = 32,
                  max_pending: int = 2000, commit_every: int = 500, commit_interval: float = 1.0,
                  log_interval: float = 30.0, silence_timeout: float = 60.0, backoff_max: float = 30.0,
                  max_frame_bytes: int = 5 * 1024 * 1024, reset_cursor: bool = False,
                  group: str | None = None, partitions: int | None = None) -> StreamConsumer:
        """A consumer of Jetstream v1 (``instances``: failover in order). ``collections`` and
        ``dids`` are also sent to the server, so it filters before sending."""
        collections, dids = check_collections(collections), list(dids or ())
        source = JetstreamSource(instances, collections=collections, dids=dids, compress=compress)
        return self.consumer(source, handler, name=name, collections=collections, dids=dids,
                             start_cursor=start_cursor, concurrency=concurrency, max_pending=max_pending,
                             commit_every=commit_every, commit_interval=commit_interval, log_interval=log_interval,
                             silence_timeout=silence_timeout, backoff_max=backoff_max,
                             max_frame_bytes=max_frame_bytes, reset_cursor=reset_cursor, group=group,
                             partitions=partitions)

    def labels(self, handler: LabelHandler, *, service: str, name: str | None = None, verify: bool = True,
               on_invalid: Literal["drop", "flag"] = "drop", dids: Iterable[str] | None = None,
               start_cursor: int | None = 0, concurrency: int = 32, max_pending: int = 2000,
               commit_every: int = 500, commit_interval: float = 1.0, log_interval: float = 30.0,
               silence_timeout: float = 60.0, backoff_max: float = 30.0,
               max_frame_bytes: int = 5 * 1024 * 1024) -> LabelConsumer:
        """A consumer of a labeler's labels (``com.atproto.label.subscribeLabels``; ``service``: its URL).

        ``handler(label, ctx)`` gets each ``LabelEvent``, in order per labelled account (a label and
        its negation never swap). Each label's signature is checked against its labeler's
        ``#atproto_label`` key (``verify=False``: not checked); one that fails is dropped
        (``on_invalid="drop"``) or handed on with ``label.invalid`` set (``"flag"``), and counted in
        ``consumer.stats.bad_signatures`` and ``consumer.label_verifier.failures``. A first run starts at
        ``start_cursor`` (default 0: every label the labeler still has, since labels are state; None:
        new labels only); a named consumer resumes where it stopped. ``dids``: only labels on these
        accounts (and their records).
        """
        verifier = LabelVerifier(self._resolve_did, policy=on_invalid) if verify else None
        return LabelConsumer(LabelSource(service), handler, verifier=verifier,
                             store=self._store if name is not None else None, name=name, dids=dids,
                             start_cursor=start_cursor, concurrency=concurrency, max_pending=max_pending,
                             commit_every=commit_every, commit_interval=commit_interval, log_interval=log_interval,
                             silence_timeout=silence_timeout, backoff_max=backoff_max,
                             max_frame_bytes=max_frame_bytes)

    def consumer(self, source: Source, handler: Handler, *, name: str | None = None,
                 verifier: SignatureVerifier | None = None, collections: Iterable[str] | None = None,
                 dids: Iterable[str] | None = None, start_cursor: int | None = None, concurrency: int = 32,
                 max_pending: int = 2000, commit_every: int = 500, commit_interval: float = 1.0,
                 log_interval: float = 30.0, silence_timeout: float = 60.0, backoff_max: float = 30.0,
                 max_frame_bytes: int = 5 * 1024 * 1024, reset_cursor: bool = False,
                 group: str | None = None, partitions: int | None = None) -> StreamConsumer:
        """A consumer of any ``Source`` (a ``FirehoseSource`` or ``JetstreamSource`` you configured)."""
        return StreamConsumer(source, handler, store=self._store if name is not None or group is not None else None,
                              name=name,
                              verifier=verifier, collections=collections, dids=dids, start_cursor=start_cursor,
                              concurrency=concurrency, max_pending=max_pending, commit_every=commit_every,
                              commit_interval=commit_interval, log_interval=log_interval,
                              silence_timeout=silence_timeout, backoff_max=backoff_max,
                              max_frame_bytes=max_frame_bytes, reset_cursor=reset_cursor, group=group,
                              partitions=partitions)
