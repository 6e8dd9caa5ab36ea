"""Where a group's rows live: its log (one per source), the group and its partitions; the DID hash."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from sqlalchemy import text

from .._exceptions import StreamError
from .._storage.repositories import lock
from .._storage.store import Store
from .._streams.connection import Source
from . import DEFAULT_PARTITIONS


def partition_of(did: str, partitions: int) -> int:
    """The partition of ``did``: CRC-32 of its UTF-8 bytes mod ``partitions`` (stable across processes
    and versions, unlike ``hash()``); an event without a DID goes to partition 0."""
    if not did or partitions <= 1:
        return 0
    return zlib.crc32(did.encode()) % partitions


def log_key(source: Source) -> str:
    """The log a source's events go to: its ``key``, and for a source that filters on the server
    (Jetstream's ``collections`` / ``dids``) those filters too, since its log holds only what they let
    through. Groups on the same key share one log and one ingest."""
    key = source.key
    collections = sorted(getattr(source, "collections", None) or ())
    dids = sorted(getattr(source, "dids", None) or ())
    if collections or dids:
        digest = hashlib.sha256(repr((collections, dids)).encode()).hexdigest()[:16]
        key = f"{key}#filtered:{digest}"
    return key


@dataclass(frozen=True, slots=True)
class LogInfo:
    """A group's log: its row id, its source key and its number of partitions."""

    id: int
    source: str
    partitions: int


async def register(store: Store, source: str, group: str, partitions: int | None) -> LogInfo:
    """Create (or find) the log of ``source`` with ``partitions`` partitions (None: the log's own, or
    ``DEFAULT_PARTITIONS`` for a new one), the group ``group`` on it and the group's partition rows
    (watermark 0: the group starts at what the log still holds).

    Raises:
        StreamError: the log exists with another number of partitions, or the group reads another source.
    """
    if partitions is not None and partitions < 1:
        raise StreamError(f"partitions must be at least 1, not {partitions}")
    async with store.transaction() as session:
        await lock(session, f"pysky_async:group-log:{source}")
        row = (await session.execute(text("SELECT id, partitions FROM bsky_group_log WHERE source = :source"),
                                     {"source": source})).first()
        if row is None:
            partitions = partitions or DEFAULT_PARTITIONS
            log_id = (await session.execute(text(
                "INSERT INTO bsky_group_log (source, partitions, upstream_cursor, last_position, term, updated_at) "
                "VALUES (:source, :partitions, NULL, 0, 0, CURRENT_TIMESTAMP) RETURNING id"),
                {"source": source, "partitions": partitions})).scalar_one()
        else:
            log_id, existing = int(row[0]), int(row[1])
            if partitions is None:
                partitions = existing
            elif existing != partitions:
                raise StreamError(f"the group log of {source} has {existing} partitions, not {partitions}: pass "
                                  f"partitions={existing} (the number of partitions of a log is fixed when it is "
                                  "created; a new number needs a new log: drop its rows from bsky_group_log)")
        found = (await session.execute(text("SELECT log_id FROM bsky_group WHERE name = :name"),
                                       {"name": group})).scalar_one_or_none()
        if found is None:
            await session.execute(text("INSERT INTO bsky_group (name, log_id, created_at) "
                                       "VALUES (:name, :log_id, CURRENT_TIMESTAMP)"), {"name": group, "log_id": log_id})
        elif int(found) != log_id:
            other = (await session.execute(text("SELECT source FROM bsky_group_log WHERE id = :id"),
                                           {"id": found})).scalar_one_or_none()
            raise StreamError(f"consumer group {group!r} reads {other}, not {source}: give this consumer another "
                              "group name")
        await session.execute(text(
            "INSERT INTO bsky_group_partition (group_name, partition, owner, epoch, lease_expires, position, cursor, "
            "updated_at) SELECT :group, p, NULL, 0, NULL, 0, NULL, CURRENT_TIMESTAMP FROM generate_series(0, :last) p "
            "ON CONFLICT (group_name, partition) DO NOTHING"), {"group": group, "last": partitions - 1})
    return LogInfo(int(log_id), source, partitions)
