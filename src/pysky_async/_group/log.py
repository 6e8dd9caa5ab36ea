"""The partitioned log of one source: fenced appends by its leader, reads by partition, trimming.

Every append runs in one transaction that locks the log's row and checks that the leader's term
and the stored upstream cursor are the ones this writer last saw: a deposed leader (another
process took the lock and began a new term) appends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text

from .._exceptions import StorageError
from .._storage.store import Store, is_database_error
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
    partition: int = 0


@dataclass(frozen=True, slots=True)
class Head:
    """The log's newest position and the upstream cursor stored with it; with them, read in the same
    statement, the group's live members and the partitions nobody holds (a rebalance is due when these
    change)."""

    position: int
    cursor: int | None
    live: int = 0
    claimable: int = 0


_COLUMNS = ("log_id", "partition", "position", "cursor", "text", "data")


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
            rows.append((log_id, partition_of(event.did, partitions), position, event.cursor, isinstance(data, str),
                         data.encode() if isinstance(data, str) else data))
        async with self.store.core_transaction() as connection:
            stored = (await connection.execute(text(
                "SELECT term, upstream_cursor, last_position FROM bsky_group_log WHERE id = :id FOR UPDATE"),
                {"id": log_id})).one()
            if int(stored[0]) != self.term or stored[1] != self.cursor or int(stored[2]) != self.position:
                raise Deposed(f"term {self.term} of {self.leader} ended: the log is at term {stored[0]} "
                              f"(leader's cursor {self.cursor}, stored {stored[1]})")
            raw = await connection.get_raw_connection()
            # COPY: the fastest way into PostgreSQL (asyncpg's binary copy), inside this transaction
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                "bsky_group_event", records=rows, columns=_COLUMNS)
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


async def read(store: Store, log_id: int, after: dict[int, int], limit: int, *, group: str,
               lease: float) -> tuple[list[LogEvent], Head]:
    """Up to ``limit`` events of each partition in ``after`` (partition -> the position read up to), in
    log order, and the log's head as of the same snapshot: a partition with fewer than ``limit`` events
    holds no other event up to the head. The head also counts ``group``'s members live within ``lease``
    seconds and its claimable partitions. One statement, outside a transaction; its cost follows the
    rows it returns, not the backlog (each partition is an index range scan of at most ``limit`` rows)."""
    parts = sorted(after)
    try:
        async with store.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            rows = (await connection.execute(_READ, {"id": log_id, "parts": parts, "afters": [after[p] for p in parts],
                                                     "limit": limit, "group": group, "lease": float(lease)})).all()
    except Exception as exc:
        if not is_database_error(exc):
            raise
        raise StorageError(f"reading the group log failed: {exc}") from exc
    if not rows:
        return [], Head(0, None)
    first = rows[0]
    head = Head(int(first[0]), first[1], int(first[2]), int(first[3]))
    events = [LogEvent(int(row[5]), row[6], bytes(row[8]).decode() if row[7] else bytes(row[8]), int(row[4]))
              for row in rows if row[5] is not None]
    return events, head


_READ = text(
    "WITH head AS (SELECT last_position, upstream_cursor, "
    "(SELECT count(*) FROM bsky_group_member m WHERE m.group_name = :group "
    "AND m.heartbeat_at > clock_timestamp() - make_interval(secs => :lease)) AS live, "
    "(SELECT count(*) FROM bsky_group_partition p WHERE p.group_name = :group "
    "AND (p.owner IS NULL OR p.lease_expires < clock_timestamp())) AS claimable "
    "FROM bsky_group_log WHERE id = :id) "
    "SELECT head.last_position, head.upstream_cursor, head.live, head.claimable, e.partition, e.position, e.cursor, "
    "e.text, e.data FROM head "
    "LEFT JOIN LATERAL (SELECT w.partition, x.position, x.cursor, x.text, x.data "
    "FROM unnest(CAST(:parts AS integer[]), CAST(:afters AS bigint[])) AS w(partition, after) "
    "CROSS JOIN LATERAL (SELECT e.position, e.cursor, e.text, e.data FROM bsky_group_event e "
    "WHERE e.log_id = :id AND e.partition = w.partition AND e.position > w.after "
    "AND e.position <= head.last_position ORDER BY e.position LIMIT :limit) x) e ON true ORDER BY e.position")
