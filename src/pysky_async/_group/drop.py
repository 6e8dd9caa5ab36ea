"""``drop_group``: forget a consumer group, so the shared log no longer waits for it.

The ingest trims what every group on the source has passed: a group that no longer runs would
hold the log back for good. Dropping it deletes its rows (the group, its partitions and members,
its per-repo ``rev`` guard) and trims at once what only it held back. The log itself stays, with
its upstream cursor: another group may join it (it starts at what the log still holds).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .._exceptions import StreamError
from .._storage.repositories import lock
from .._storage.store import Store
from .log import trim

LIVE_WINDOW = 60.0
"""Seconds since a member's last heartbeat while it counts as live (``group status`` lists it)."""


@dataclass(frozen=True, slots=True)
class DroppedGroup:
    """What ``drop_group`` deleted."""

    group: str
    source: str
    """The source key the group read (its log stays)."""
    partitions: int
    """Partition rows (lease and watermark) deleted."""
    members: int
    """Member rows (heartbeats) deleted."""
    revs: int
    """Per-repo ``rev`` guard rows of the group deleted (a new group of the same name starts clean)."""
    trimmed: int
    """Events of the log deleted because no group is behind them any more."""
    remaining: tuple[str, ...]
    """The other groups on the same log (none: the log is kept, empty of readers, for a group to join)."""
    shared_log: bool = True
    """False on SQLite: the group was one named consumer (its cursor and revs), with no log."""


async def drop_group(store_or_url: Store | str, group: str, *, force: bool = False) -> DroppedGroup:
    """Delete consumer group ``group`` from the database and trim what only it held back of its log.

    ``store_or_url``: a ``Store`` (``bsky.store``) or a database URL. A group with a live member (a
    heartbeat less than a minute old, or a partition lease that has not expired) is refused unless
    ``force``: stop its workers first (a clean stop leaves the group at once). With ``force``, workers
    still running lose their partitions and idle; stop them. On SQLite a group is a named consumer:
    its cursor and ``rev`` rows are deleted (there is no shared log and no heartbeat to check).

    Raises:
        StreamError: no such group, or it has live members (and not ``force``).
    """
    if isinstance(store_or_url, str):
        store = Store(store_or_url)
        try:
            return await drop_group(store, group, force=force)
        finally:
            await store.aclose()
    store = store_or_url
    await store.ensure_ready()
    if store.dialect != "postgresql":
        return await _drop_sqlite(store, group)
    async with store.transaction() as session:
        head = (await session.execute(text(
            "SELECT l.id, l.source FROM bsky_group g JOIN bsky_group_log l ON l.id = g.log_id WHERE g.name = :group"),
            {"group": group})).first()
        if head is None:
            raise _unknown(group)
        log_id, source = int(head[0]), str(head[1])
        await lock(session, f"pysky_async:group-log:{source}")  # no worker registers the group meanwhile
        live = await _live(session, group)
        if live and not force:
            raise StreamError(f"consumer group {group!r} has live members: {', '.join(live)}. Stop them first "
                              "(a clean stop leaves the group at once; a killed worker counts as live for a "
                              f"minute after its last heartbeat), or force the drop (--force / force=True): "
                              "workers still running then lose their partitions")
        partitions = await _delete(session, "bsky_group_partition", "group_name", group)
        members = await _delete(session, "bsky_group_member", "group_name", group)
        revs = await _delete(session, "bsky_repo_rev", "consumer", group)
        await _delete(session, "bsky_group", "name", group)
        remaining = (await session.execute(text("SELECT name FROM bsky_group WHERE log_id = :id ORDER BY name"),
                                           {"id": log_id})).scalars().all()
    trimmed = await trim(store, log_id)
    return DroppedGroup(group, source, partitions, members, revs, trimmed, tuple(str(n) for n in remaining))


async def _live(session: AsyncSession, group: str) -> list[str]:
    """The group's members with a recent heartbeat or an unexpired lease (locks its partition rows)."""
    owners = (await session.execute(text(
        "SELECT owner FROM bsky_group_partition WHERE group_name = :group AND owner IS NOT NULL "
        "AND lease_expires > clock_timestamp() FOR UPDATE"), {"group": group})).scalars().all()
    beating = (await session.execute(text(
        "SELECT name FROM bsky_group_member WHERE group_name = :group "
        "AND heartbeat_at > clock_timestamp() - make_interval(secs => :window)"),
        {"group": group, "window": LIVE_WINDOW})).scalars().all()
    return sorted({str(n) for n in (*owners, *beating)})


async def _delete(session: AsyncSession, table: str, column: str, value: str) -> int:
    result = await session.execute(text(f"DELETE FROM {table} WHERE {column} = :value"), {"value": value})
    return int(getattr(result, "rowcount", 0) or 0)


async def _drop_sqlite(store: Store, group: str) -> DroppedGroup:
    async with store.transaction() as session:
        source = (await session.execute(text(
            "SELECT source FROM bsky_stream_cursor WHERE consumer = :group ORDER BY updated_at DESC"),
            {"group": group})).scalars().first()
        if source is None:
            raise _unknown(group)
        await _delete(session, "bsky_stream_cursor", "consumer", group)
        revs = await _delete(session, "bsky_repo_rev", "consumer", group)
    return DroppedGroup(group, str(source), 1, 0, revs, 0, (), shared_log=False)


def _unknown(group: str) -> StreamError:
    return StreamError(f"no consumer group {group!r} in this database (see `pysky-async group status` for a "
                       "group's name, and check the database URL)")
