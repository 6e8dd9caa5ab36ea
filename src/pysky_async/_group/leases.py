"""Members and partition leases of a group, by the database's clock.

A member row carries a heartbeat; a lease row per partition carries its owner, expiry and epoch
(the fencing token: each claim increments it). A commit locks its lease row and checks owner and
epoch, so a worker whose partition was claimed by another commits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .._storage.store import Store


@dataclass(frozen=True, slots=True)
class Claim:
    """A partition this worker leased: its epoch and watermark (log position, upstream cursor)."""

    partition: int
    epoch: int
    position: int
    cursor: int | None


async def heartbeat(store: Store, group: str, name: str, lease: float) -> int:
    """Note ``name`` as alive now; returns the live members (heartbeat within ``lease`` seconds)."""
    async with store.transaction() as session:
        await session.execute(text(
            "INSERT INTO bsky_group_member (group_name, name, heartbeat_at, started_at) "
            "VALUES (:group, :name, clock_timestamp(), clock_timestamp()) ON CONFLICT (group_name, name) "
            "DO UPDATE SET heartbeat_at = excluded.heartbeat_at"), {"group": group, "name": name})
        # members silent for ten leases are gone for good: forget them
        await session.execute(text(
            "DELETE FROM bsky_group_member WHERE group_name = :group "
            "AND heartbeat_at < clock_timestamp() - make_interval(secs => :gone)"),
            {"group": group, "gone": 10.0 * lease})
        live = (await session.execute(text(
            "SELECT count(*) FROM bsky_group_member WHERE group_name = :group "
            "AND heartbeat_at > clock_timestamp() - make_interval(secs => :lease)"),
            {"group": group, "lease": float(lease)})).scalar_one()
    return max(1, int(live))


async def renew(store: Store, group: str, name: str, lease: float) -> dict[int, int]:
    """Extend every lease ``name`` holds; returns them (partition -> epoch)."""
    async with store.transaction() as session:
        rows = (await session.execute(text(
            "UPDATE bsky_group_partition SET lease_expires = clock_timestamp() + make_interval(secs => :lease) "
            "WHERE group_name = :group AND owner = :name RETURNING partition, epoch"),
            {"group": group, "name": name, "lease": float(lease)})).all()
    return {int(p): int(e) for p, e in rows}


async def claim(store: Store, group: str, name: str, count: int, lease: float) -> list[Claim]:
    """Lease up to ``count`` partitions that nobody holds (or whose lease expired), lowest first."""
    if count <= 0:
        return []
    async with store.transaction() as session:
        # the CTE runs once (a subquery under IN may run again per row and pick more than count)
        rows = (await session.execute(text(
            "WITH picked AS MATERIALIZED (SELECT partition FROM bsky_group_partition WHERE group_name = :group "
            "AND (owner IS NULL OR lease_expires < clock_timestamp()) ORDER BY partition LIMIT :count "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE bsky_group_partition p SET owner = :name, epoch = p.epoch + 1, "
            "lease_expires = clock_timestamp() + make_interval(secs => :lease), updated_at = clock_timestamp() "
            "FROM picked WHERE p.group_name = :group AND p.partition = picked.partition "
            "RETURNING p.partition, p.epoch, p.position, p.cursor"),
            {"group": group, "name": name, "count": count, "lease": float(lease)})).all()
    return sorted((Claim(int(p), int(e), int(pos), c) for p, e, pos, c in rows), key=lambda c: c.partition)


async def release(store: Store, group: str, name: str, partition: int, epoch: int) -> None:
    """Give ``partition`` back (if ``name`` still holds it at ``epoch``)."""
    async with store.transaction() as session:
        await session.execute(text(
            "UPDATE bsky_group_partition SET owner = NULL, lease_expires = NULL, updated_at = clock_timestamp() "
            "WHERE group_name = :group AND partition = :partition AND owner = :name AND epoch = :epoch"),
            {"group": group, "partition": partition, "name": name, "epoch": epoch})


async def leave(store: Store, group: str, name: str) -> None:
    """Remove ``name`` from the members and release whatever it still holds."""
    async with store.transaction() as session:
        await session.execute(text(
            "UPDATE bsky_group_partition SET owner = NULL, lease_expires = NULL, updated_at = clock_timestamp() "
            "WHERE group_name = :group AND owner = :name"), {"group": group, "name": name})
        await session.execute(text("DELETE FROM bsky_group_member WHERE group_name = :group AND name = :name"),
                              {"group": group, "name": name})


async def advance(session: AsyncSession, group: str, partition: int, name: str, epoch: int, position: int,
                  cursor: int | None) -> bool:
    """Move the watermark of ``partition`` to ``position`` (upstream ``cursor``) if ``name`` still holds
    its lease at ``epoch`` (the row stays locked until the transaction ends); False: it does not."""
    result = await session.execute(text(
        "UPDATE bsky_group_partition SET position = :position, cursor = coalesce(:cursor, cursor), "
        "updated_at = clock_timestamp() WHERE group_name = :group AND partition = :partition AND owner = :name "
        "AND epoch = :epoch"),
        {"group": group, "partition": partition, "position": position, "cursor": cursor, "name": name,
         "epoch": epoch})
    return bool(getattr(result, "rowcount", 0))
