"""Typed stream events: what firehose frames and Jetstream messages decode to."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from ..lex._base import LexObject

Action = Literal["create", "update", "delete"]
M = TypeVar("M", bound="LexObject")


@dataclass(frozen=True, slots=True)
class RepoOp:
    """One record operation of a commit; ``record`` is None for deletes (and tooBig commits)."""

    action: Action
    collection: str
    rkey: str
    cid: str | None
    record: dict[str, Any] | None = None
    prev: str | None = None
    """The record's CID before an update or delete (Sync 1.1 firehose commits; None otherwise)."""

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.rkey}"

    def record_as(self, model: type[M]) -> M | None:
        """The record as ``model`` (a record model such as ``lex.app.bsky.feed.Post``); None when
        there is none (a delete). ``InvalidInput`` when the op is in another collection than the
        model's; ``InvalidResponse`` when the record does not fit the model."""
        from .._typed_record import check_collection, typed_record

        if self.record is None:
            check_collection(model, self.collection, self.path, "op")
            return None
        return typed_record(model, self.collection, self.path, self.record, "op")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Common fields: ``cursor`` is the firehose seq or the Jetstream time_us (None for #info)."""

    cursor: int | None
    did: str
    time: str
    """The event time as the server sent it (ISO 8601); see ``timestamp()``."""

    def timestamp(self) -> float | None:
        """The event time as a POSIX timestamp, or None if it is missing or unparsable."""
        try:
            return dt.datetime.fromisoformat(self.time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class CommitEvent(StreamEvent):
    """A repo commit with its operations; ``too_big`` commits carry no record values."""

    rev: str = ""
    since: str | None = None
    commit: str | None = None
    ops: tuple[RepoOp, ...] = ()
    too_big: bool = False
    signed_commit: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """The decoded commit block (with ``sig``), kept only by ``FirehoseSource(keep_commit=True)``."""
    prev_data: str | None = None
    """The repo's MST root before this commit (Sync 1.1), the link a verifier checks the chain with."""
    frame: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """The decoded frame body (blocks, binary CIDs), kept by ``keep_commit`` for verification."""
    invalid: str | None = field(default=None, compare=False)
    """Why verification failed, on a commit a ``CommitVerifier(policy="flag")`` passed on; else None."""
    live: bool = True
    """False for a backfilled record (``bsky.sync.backfill``): one ``create`` op from a verified repo
    snapshot at ``rev``, with ``cursor`` None; True for a commit read from a stream."""


@dataclass(frozen=True, slots=True)
class IdentityEvent(StreamEvent):
    """The DID document or handle of ``did`` may have changed."""

    handle: str | None = None


@dataclass(frozen=True, slots=True)
class AccountEvent(StreamEvent):
    """The hosting status of ``did`` changed (``status``: takendown, suspended, deleted, ...)."""

    active: bool = True
    status: str | None = None


@dataclass(frozen=True, slots=True)
class SyncEvent(StreamEvent):
    """The repo of ``did`` was reset to ``rev``: consumers should re-sync it."""

    rev: str = ""
    frame: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """The decoded frame body (its ``blocks`` hold the signed commit), kept by ``keep_commit``."""
    invalid: str | None = field(default=None, compare=False)
    """Why verification failed, on an event a ``CommitVerifier(policy="flag")`` passed on; else None."""


@dataclass(frozen=True, slots=True)
class InfoEvent(StreamEvent):
    """A message from the server, e.g. ``name == "OutdatedCursor"`` (the cursor was too old)."""

    name: str = ""
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
