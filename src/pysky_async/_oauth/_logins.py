"""Logins of the web glue (``bsky_oauth_login``): one row per login cookie issued. A cookie is
honoured only while its row exists and has not expired; a logout deletes the user's rows, so a
replayed old cookie is refused even after the user logs in again. Nonces are stored hashed."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .._storage.models import OAuthLoginRow
from .._storage.store import Store


def nonce_hash(nonce: str) -> str:
    """What the table keeps of a nonce: its SHA-256, so a database read yields no cookie."""
    return hashlib.sha256(nonce.encode()).hexdigest()


class LoginRepository:
    """The login rows, inside a caller's unit of work."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, did: str, nonce: str, issued_at: dt.datetime, expires_at: dt.datetime) -> None:
        await self.db.execute(insert(OAuthLoginRow).values(nonce_hash=nonce_hash(nonce), did=did,
                                                           issued_at=issued_at, expires_at=expires_at))

    async def active(self, did: str, nonce: str, now: dt.datetime) -> bool:
        result = await self.db.execute(select(OAuthLoginRow.expires_at).where(
            OAuthLoginRow.nonce_hash == nonce_hash(nonce), OAuthLoginRow.did == did))
        expires_at = result.scalar_one_or_none()
        return expires_at is not None and expires_at > now

    async def end(self, did: str) -> None:
        await self.db.execute(delete(OAuthLoginRow).where(OAuthLoginRow.did == did))

    async def purge(self, now: dt.datetime) -> None:
        await self.db.execute(delete(OAuthLoginRow).where(OAuthLoginRow.expires_at <= now))


class LoginStore:
    """The logins of ``bsky.oauth`` (``oauth.logins``), each call its own unit of work."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, did: str, nonce: str, issued_at: dt.datetime, expires_at: dt.datetime) -> None:
        """Record a login (and forget the expired ones)."""
        async with self._store.transaction() as db:
            logins = LoginRepository(db)
            await logins.purge(issued_at)
            await logins.add(did, nonce, issued_at, expires_at)

    async def active(self, did: str, nonce: str, now: dt.datetime) -> bool:
        """Whether this login of ``did`` exists and has not expired at ``now``."""
        async with self._store.transaction() as db:
            return await LoginRepository(db).active(did, nonce, now)

    async def end(self, did: str) -> None:
        """End every login of ``did`` (its OAuth session is gone: no cookie of it is any use)."""
        async with self._store.transaction() as db:
            await LoginRepository(db).end(did)
