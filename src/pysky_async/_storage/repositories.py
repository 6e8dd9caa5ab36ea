"""Repositories: the only code that issues SQL. They take an AsyncSession and never commit;
the Store's unit of work (``Store.transaction``) owns the transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from .models import (
    Base,
    CallLogRow,
    CursorRow,
    OAuthSessionRow,
    PostRow,
    RefreshLeaseRow,
    SessionRow,
    UserProfileRow,
    WriteOpRow,
    utcnow,
)

BLOB_ENDPOINT = "com.atproto.repo.uploadBlob"
CALL_LOG = cast(Table, CallLogRow.__table__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def lock(db: AsyncSession, name: str) -> None:
    """Serialise units of work on ``name`` across processes until commit.

    PostgreSQL takes a transaction-scoped advisory lock; SQLite transactions already start
    with BEGIN IMMEDIATE, which holds the database's write lock.
    """
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})


async def upsert(db: AsyncSession, model: type[Base], keys: list[str], values: dict[str, Any],
                 changes: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE: two processes saving the same new row at once
    both succeed instead of one failing on the unique constraint."""
    insert_for = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert_for(model).values(values)
    await db.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))


Versioned = TypeVar("Versioned", SessionRow, OAuthSessionRow)


async def save_versioned(db: AsyncSession, model: type[Versioned], key: str, value: str,
                         fields: dict[str, Any]) -> Versioned:
    """Insert or update the row whose unique ``key`` column is ``value``, bumping its version. The
    first save is an upsert, so two processes saving the same new row at once both succeed."""
    query = select(model).where(getattr(model, key) == value).execution_options(populate_existing=True)
    row = (await db.execute(query)).scalar_one_or_none()
    if row is None:
        now = utcnow()
        await upsert(db, model, [key], {key: value, "version": 1, "created_at": now, "updated_at": now, **fields},
                     {**fields, "version": model.version + 1, "updated_at": now})
        return (await db.execute(query)).scalar_one()
    for name, new in fields.items():
        setattr(row, name, new)
    row.version += 1
    row.updated_at = utcnow()
    await db.flush()
    return row


class SessionRepository:
    """Stored logins, one per account key."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, account_key: str) -> SessionRow | None:
        result = await self.db.execute(select(SessionRow).where(SessionRow.account_key == account_key)
                                       .execution_options(populate_existing=True))
        return result.scalar_one_or_none()

    async def save(self, account_key: str, **fields: Any) -> SessionRow:
        """Insert or update the account's session (bumping its version)."""
        return await save_versioned(self.db, SessionRow, "account_key", account_key, fields)

    async def delete(self, account_key: str) -> None:
        row = await self.get(account_key)
        if row is not None:
            await self.db.delete(row)


class LeaseRepository:
    """Refresh leases (``_refresh_lease``): a row per name, held by one holder until it expires."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def take(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease ``name`` for ``ttl`` seconds unless someone else holds it unexpired."""
        now = utcnow()
        until = now + dt.timedelta(seconds=ttl)
        insert_for = postgresql_insert if self.db.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert_for(RefreshLeaseRow).values(name=name, holder=holder, expires_at=until)
        await self.db.execute(statement.on_conflict_do_update(
            index_elements=["name"], set_={"holder": holder, "expires_at": until},
            where=(RefreshLeaseRow.expires_at <= now) | (RefreshLeaseRow.holder == holder)))
        taken = await self.db.execute(select(RefreshLeaseRow.holder).where(RefreshLeaseRow.name == name))
        return taken.scalar_one_or_none() == holder

    async def release(self, name: str, holder: str) -> None:
        """Give the lease back (a no-op if it expired and someone else took it)."""
        await self.db.execute(delete(RefreshLeaseRow).where(RefreshLeaseRow.name == name,
                                                            RefreshLeaseRow.holder == holder))


class CallLogRepository:
    """The API call log (works on an ORM session or a Core connection)."""

    def __init__(self, db: AsyncSession | AsyncConnection) -> None:
        self.db = db

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows with one executemany statement."""
        if rows:
            await self.db.execute(insert(CALL_LOG), list(rows))

    async def add(self, row: dict[str, Any]) -> int:
        """Insert one row and return its id."""
        return int((await self.db.execute(insert(CALL_LOG).returning(CALL_LOG.c.id), row)).scalar_one())

    async def count(self) -> int:
        return int((await self.db.execute(select(func.count(CallLogRow.id)))).scalar_one())


class CursorRepository:
    """Saved pagination cursors, one per (account DID, endpoint, cursor_key)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, did: str, endpoint: str, cursor_key: str) -> str | None:
        result = await self.db.execute(
            select(CursorRow.cursor).where(CursorRow.did == did, CursorRow.endpoint == endpoint,
                                           CursorRow.cursor_key == cursor_key))
        return result.scalar_one_or_none()

    async def save(self, did: str, endpoint: str, cursor_key: str, cursor: str) -> None:
        now = utcnow()
        await upsert(self.db, CursorRow, ["did", "endpoint", "cursor_key"],
                     {"did": did, "endpoint": endpoint, "cursor_key": cursor_key, "cursor": cursor, "updated_at": now},
                     {"cursor": cursor, "updated_at": now})

    async def delete(self, did: str, endpoint: str, cursor_key: str) -> None:
        await self.db.execute(delete(CursorRow).where(CursorRow.did == did, CursorRow.endpoint == endpoint,
                                                      CursorRow.cursor_key == cursor_key))


class ProfileRepository:
    """Cached actor profiles. A handle belongs to at most one cached DID: when a handle moves,
    the old row loses it (handles are not unique over time)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def find(self, actor: str) -> UserProfileRow | None:
        column = UserProfileRow.did if actor.startswith("did:") else UserProfileRow.handle
        result = await self.db.execute(select(UserProfileRow).where(column == actor).limit(1))
        return result.scalar_one_or_none()

    async def upsert(self, did: str, **fields: Any) -> UserProfileRow:
        handle = fields.get("handle")
        if handle:
            await self.db.execute(update(UserProfileRow)
                                  .where(UserProfileRow.handle == handle, UserProfileRow.did != did)
                                  .values(handle=None))
        now = utcnow()
        await upsert(self.db, UserProfileRow, ["did"], {"did": did, **fields, "updated_at": now},
                     {**fields, "updated_at": now})
        row = await self.db.get(UserProfileRow, did, populate_existing=True)
        assert row is not None
        return row


class WriteLedgerRepository:
    """The write-op ledger: points reserved per account, for the write budget."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def entries_since(self, did: str, since: dt.datetime, *,
                            blobs: bool = False) -> list[tuple[dt.datetime, int]]:
        """(created_at, points) of the account's entries after ``since``, oldest first."""
        column = WriteOpRow.endpoint == BLOB_ENDPOINT
        result = await self.db.execute(
            select(WriteOpRow.created_at, WriteOpRow.points)
            .where(WriteOpRow.did == did, WriteOpRow.created_at > since, column if blobs else ~column)
            .order_by(WriteOpRow.created_at))
        return [(created_at, points) for created_at, points in result.all()]

    async def add(self, did: str, endpoint: str, points: int, at: dt.datetime) -> int:
        row = WriteOpRow(did=did, endpoint=endpoint, points=points, created_at=at, state="reserved")
        self.db.add(row)
        await self.db.flush()
        return row.id

    async def settle(self, row_id: int, *, spent: bool) -> None:
        """Keep a reservation as spent, or refund it (delete) when the write failed."""
        row = await self.db.get(WriteOpRow, row_id)
        if row is None:
            return
        if spent:
            row.state = "spent"
        else:
            await self.db.delete(row)

    async def prune(self, before: dt.datetime) -> None:
        """Forget entries older than the longest window."""
        await self.db.execute(delete(WriteOpRow).where(WriteOpRow.created_at < before))


class PostRepository:
    """Posts made through the library, findable by the caller's client_unique_key."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def by_key(self, did: str, client_unique_key: str) -> PostRow | None:
        result = await self.db.execute(
            select(PostRow).where(PostRow.did == did, PostRow.client_unique_key == client_unique_key))
        return result.scalar_one_or_none()

    async def add(self, **fields: Any) -> PostRow:
        row = PostRow(**fields)
        self.db.add(row)
        await self.db.flush()
        return row

    async def confirm(self, uri: str, cid: str) -> None:
        """Record the CID the server gave the post at ``uri``."""
        await self.db.execute(update(PostRow).where(PostRow.uri == uri).values(cid=cid))

    async def remove(self, uri: str) -> None:
        """Forget the post at ``uri`` (its create was refused)."""
        await self.db.execute(delete(PostRow).where(PostRow.uri == uri))
