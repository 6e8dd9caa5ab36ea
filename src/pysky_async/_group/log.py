"""The partitioned log of one source: fenced appends by its leader, reads by partition, trimming.

Every append runs in one transaction that locks the log's row and checks that the leader's term
and the stored upstream cursor are the ones this writer last saw: a deposed leader (another
process took the lock and began a new term) appends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text

from .._storage.store import Store
from .registry import LogInfo, partition_of


@dataclass(frozen=True, slots=True)
class Appended:
    """One event to append: its upstream cursor, DID and raw message."""

    cursor: int | None
    did: str
    data: bytes | str


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event read back from the log."""

    position: int
    cursor: int | None
    data: bytes | str


@dataclass(frozen=True, slots=True)
class Head:
    """The log's newest position and the upstream cursor stored with it."""

    position: int
    cursor: int | None


_INSERT = text("INSERT INTO bsky_group_event (log_id, partition, position, cursor, text, data) "
               "VALUES (:log_id, :partition, :position, :cursor, :text, :data)")


class Deposed(Exception):
    """This writer's term ended: another leader began one (internal; the leader stops ingesting)."""


class LogWriter:
    """Appends to the log ``log`` as the leader ``leader`` (call ``begin_term`` first)."""

    def __init__(self, store: Store, log: LogInfo, leader: str) -> None:
        self.store = store
        self.log = log
        self.leader = leader
        self.term = 0
        self.cursor: int | None = None
        self.position = 0

    async def begin_term(self) -> int | None:
        """Start a new term (deposing any earlier leader's writes); returns the stored upstream cursor."""
        async with self.store.transaction() as session:
            row = (await session.execute(text(
                "UPDATE bsky_group_log SET term = term + 1, leader = :leader, updated_at = CURRENT_TIMESTAMP "
                "WHERE id = :id RETURNING term, upstream_cursor, last_position"),
                {"id": self.log.id, "leader": self.leader})).one()
        self.term, self.cursor, self.position = int(row[0]), row[1], int(row[2])
        return self.cursor

    async def append(self, events: Sequence[Appended]) -> None:
        """Append ``events`` and store the newest upstream cursor, in one fenced transaction.

        Raises:
            Deposed: another leader's term began (nothing was appended).
        """
        if not events:
            return
        partitions, log_id = self.log.partitions, self.log.id
        position, cursor = self.position, self.cursor
        rows = []
        for event in events:
            position += 1
            if event.cursor is not None:
                cursor = event.cursor
            data = event.data
            rows.append({"log_id": log_id, "partition": partition_of(event.did, partitions), "position": position,
                         "cursor": event.cursor, "text": isinstance(data, str),
                         "data": data.encode() if isinstance(data, str) else data})
        async with self.store.core_transaction() as connection:
            stored = (await connection.execute(text(
                "SELECT term, upstream_cursor, last_position FROM bsky_group_log WHERE id = :id FOR UPDATE"),
                {"id": log_id})).one()
            if int(stored[0]) != self.term or stored[1] != self.cursor or int(stored[2]) != self.position:
                raise Deposed(f"term {self.term} of {self.leader} ended: the log is at term {stored[0]} "
                              f"(leader's cursor {self.cursor}, stored {stored[1]})")
            await connection.execute(_INSERT, rows)
            await connection.execute(text(
                "UPDATE bsky_group_log SET upstream_cursor = :cursor, last_position = :position, "
                "updated_at = CURRENT_TIMESTAMP WHERE id = :id"),
                {"id": log_id, "cursor": cursor, "position": position})
        self.position, self.cursor = position, cursor


async def backlog(store: Store, log_id: int) -> int:
    """Events in the log above the slowest watermark of any group reading it (0 without groups)."""
    async with store.transaction() as session:
        value = (await session.execute(text(
            "SELECT l.last_position - coalesce(min(p.position), l.last_position) FROM bsky_group_log l "
            "LEFT JOIN bsky_group g ON g.log_id = l.id LEFT JOIN bsky_group_partition p ON p.group_name = g.name "
            "WHERE l.id = :id GROUP BY l.last_position"), {"id": log_id})).scalar_one_or_none()
    return int(value or 0)


async def trim(store: Store, log_id: int) -> int:
    """Delete the events every group reading the log has passed (per partition); returns how many."""
    async with store.transaction() as session:
        result = await session.execute(text(
            "DELETE FROM bsky_group_event e USING (SELECT p.partition, min(p.position) AS position "
            "FROM bsky_group g JOIN bsky_group_partition p ON p.group_name = g.name WHERE g.log_id = :id "
            "GROUP BY p.partition) w WHERE e.log_id = :id AND e.partition = w.partition AND e.position <= w.position"),
            {"id": log_id})
    return int(getattr(result, "rowcount", 0) or 0)


async def read(store: Store, log_id: int, partition: int, after: int, limit: int) -> tuple[list[LogEvent], Head]:
    """Up to ``limit`` events of ``partition`` after position ``after``, in order, and the log's head as
    of the same snapshot (so fewer than ``limit`` events means: none other up to the head)."""
    async with store.transaction() as session:
        rows = (await session.execute(text(
            "WITH head AS (SELECT last_position, upstream_cursor FROM bsky_group_log WHERE id = :id) "
            "SELECT head.last_position, head.upstream_cursor, e.position, e.cursor, e.text, e.data FROM head "
            "LEFT JOIN LATERAL (SELECT position, cursor, text, data FROM bsky_group_event WHERE log_id = :id "
            "AND partition = :partition AND position > :after AND position <= head.last_position "
            "ORDER BY position LIMIT :limit) e ON true"),
            {"id": log_id, "partition": partition, "after": after, "limit": limit})).all()
    if not rows:
        return [], Head(0, None)
    head = Head(int(rows[0][0]), rows[0][1])
    events = [LogEvent(int(row[2]), row[3], bytes(row[5]).decode() if row[4] else bytes(row[5]))
              for row in rows if row[2] is not None]
    return events, head
