"""Repositories for OAuth sessions and logins in progress. They take an AsyncSession and
never commit; values arrive here already sealed (``_oauth._secrets``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import OAuthSessionRow, OAuthStateRow
from .repositories import save_versioned


class OAuthSessionRepository:
    """One OAuth session per DID."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, did: str) -> OAuthSessionRow | None:
        result = await self.db.execute(select(OAuthSessionRow).where(OAuthSessionRow.did == did))
        return result.scalar_one_or_none()

    async def save(self, did: str, **fields: Any) -> OAuthSessionRow:
        """Insert or replace the DID's session (bumping its version)."""
        return await save_versioned(self.db, OAuthSessionRow, "did", did, fields)

    async def delete(self, did: str) -> None:
        await self.db.execute(delete(OAuthSessionRow).where(OAuthSessionRow.did == did))


class OAuthStateRepository:
    """Logins between PAR and the callback, each used at most once."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, **fields: Any) -> None:
        self.db.add(OAuthStateRow(**fields))
        await self.db.flush()

    async def take(self, state: str) -> OAuthStateRow | None:
        """Remove and return the login with this ``state`` (None if unknown or already used)."""
        result = await self.db.execute(
            delete(OAuthStateRow).where(OAuthStateRow.state == state).returning(OAuthStateRow)
        )
        return result.scalar_one_or_none()

    async def delete_older_than(self, cutoff: dt.datetime) -> None:
        await self.db.execute(delete(OAuthStateRow).where(OAuthStateRow.created_at < cutoff))
