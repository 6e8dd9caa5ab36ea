"""``group_status``: a consumer group's leader, log and partitions as stored in the database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text

from .._exceptions import StreamError
from .._storage.store import Store


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """One partition of a group: its owner and lease, its watermark and its lag."""

    partition: int
    owner: str | None
    """The worker that holds the lease (None: nobody)."""
    lease_expires: dt.datetime | None
    """When the lease ends unless renewed (UTC; None when nobody holds it)."""
    position: int
    """The watermark: every event of the partition at or below this log position was handled."""
    cursor: int | None
    """The upstream cursor (firehose seq, Jetstream time_us) of the watermark (None: nothing handled yet)."""
    lag: int
    """Events of this partition in the log above the watermark."""


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """A consumer group as stored: its log's leader and upstream cursor, the backlog and each partition.

    The group's resume point is its lowest partition watermark (``resume_cursor``): every event of
    the source at or before it was handled by the group.
    """

    group: str
    source: str
    """The source key the group reads (``FirehoseSource.key``, ``"jetstream"``)."""
    leader: str | None
    """The worker that ingests the source now (None: nobody)."""
    upstream_cursor: int | None
    """The upstream cursor of the newest event in the log (where the next leader resumes)."""
    log_position: int
    """The position of the newest event in the log."""
    backlog: int
    """Events in the log above the group's lowest watermark."""
    partitions: tuple[PartitionStatus, ...]
    members: tuple[str, ...] = ()
    """Workers whose heartbeat is recent (on PostgreSQL)."""

    @property
    def lag(self) -> int:
        """Events not yet handled by the group, summed over its partitions."""
        return sum(p.lag for p in self.partitions)

    @property
    def resume_cursor(self) -> int | None:
        """The group's resume point: the lowest partition watermark's upstream cursor (None: the start)."""
        cursors = [p.cursor for p in self.partitions]
        return None if not cursors or None in cursors else min(c for c in cursors if c is not None)


async def group_status(store: Store, group: str) -> GroupStatus:
    """The stored state of consumer group ``group`` (see ``GroupStatus``).

    On SQLite a group runs as one process with one partition: its cursor is a named consumer's
    (the group name), reported as partition 0.

    Raises:
        StreamError: no such group in this database.
    """
    if store.dialect != "postgresql":
        return await _sqlite_status(store, group)
    async with store.transaction() as session:
        head = (await session.execute(text(
            "SELECT l.source, l.leader, l.upstream_cursor, l.last_position, l.id FROM bsky_group g "
            "JOIN bsky_group_log l ON l.id = g.log_id WHERE g.name = :group"), {"group": group})).first()
        if head is None:
            raise StreamError(f"no consumer group {group!r} in this database (a group appears when its first worker "
                              "starts: StreamConsumer(..., group=...) or `pysky-async stream ... --group`)")
        rows = (await session.execute(text(
            "SELECT p.partition, p.owner, CASE WHEN p.owner IS NULL THEN NULL ELSE p.lease_expires END, p.position, "
            "p.cursor, (SELECT count(*) FROM bsky_group_event e WHERE e.log_id = :log AND e.partition = p.partition "
            "AND e.position > p.position) FROM bsky_group_partition p WHERE p.group_name = :group "
            "ORDER BY p.partition"), {"group": group, "log": head[4]})).all()
        lease = (await session.execute(text(
            "SELECT name FROM bsky_group_member WHERE group_name = :group AND heartbeat_at > clock_timestamp() - "
            "interval '1 minute' ORDER BY name"), {"group": group})).scalars().all()
    partitions = tuple(PartitionStatus(int(p), owner, expires, int(position), cursor, int(lag))
                       for p, owner, expires, position, cursor, lag in rows)
    low = min((p.position for p in partitions), default=int(head[3]))
    leader = head[1] if await _leader_alive(store, str(head[0])) else None
    return GroupStatus(group, str(head[0]), leader, head[2], int(head[3]), int(head[3]) - low, partitions,
                       tuple(str(name) for name in lease))


async def resume_cursor(store: Store, group: str) -> int | None:
    """The group's resume point as stored now: its lowest partition watermark's upstream cursor (None
    while some partition handled nothing yet). One query on PostgreSQL; what a worker's
    ``consumer.cursor`` is refreshed to at each heartbeat."""
    async with store.transaction() as session:
        value = (await session.execute(text(
            "SELECT CASE WHEN count(*) = 0 OR bool_or(cursor IS NULL) THEN NULL ELSE min(cursor) END "
            "FROM bsky_group_partition WHERE group_name = :group"), {"group": group})).scalar_one()
    return None if value is None else int(value)


async def _leader_alive(store: Store, source: str) -> bool:
    """Whether some session holds the ingest lock of ``source`` now."""
    from .leader import lock_key

    key = lock_key(source)
    async with store.transaction() as session:
        held = (await session.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = :high AND objid::bigint = :low"),
            {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF})).scalar_one()
    return bool(held)


async def _sqlite_status(store: Store, group: str) -> GroupStatus:
    async with store.transaction() as session:
        row = (await session.execute(text(
            "SELECT source, cursor FROM bsky_stream_cursor WHERE consumer = :group ORDER BY updated_at DESC"),
            {"group": group})).first()
    if row is None:
        raise StreamError(f"no consumer group {group!r} in this database (on SQLite a group keeps a cursor under "
                          "its name once its first commit is done)")
    partition = PartitionStatus(0, None, None, 0, row[1], 0)
    return GroupStatus(group, str(row[0]), None, row[1], 0, 0, (partition,))
