"""OAuth sessions per user: stored in the library's database, refreshed single-flight.

Refresh tokens are single-use, so two workers refreshing at once would log the user out.
As with app-password sessions, ``_refresh_lease`` makes refresh single-flight: one shielded
task per DID within a process (a caller cancelled during the token request does not lose the
rotated token), a lease row per DID across processes (whoever gets it second re-reads the
stored session and uses the tokens the first one got), and no database lock held while the
token request is on the network.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey

from .._exceptions import NotAuthenticated, OAuthError, OAuthSessionExpired, StorageError
from .._refresh_lease import SingleFlight, hold_lease, within_deadline
from .._storage.models import OAuthSessionRow
from .._storage.oauth_repository import OAuthSessionRepository
from .._storage.store import Store
from ._dpop import key_from_json, key_to_json
from ._secrets import SecretBox
from ._server import AuthServerClient

logger = logging.getLogger("pysky_async")

REFRESH_MARGIN = dt.timedelta(seconds=30)
"""Refresh an access token this long before it expires."""

DEAD_GRANT_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


@dataclass(frozen=True, repr=False)
class OAuthSession:
    """A user's OAuth session. ``repr`` shows who, never the tokens or the DPoP key."""

    did: str
    handle: str | None
    pds_endpoint: str
    issuer: str
    scope: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    dpop_key: ECKey = field(repr=False)
    expires_at: dt.datetime | None = None

    def __repr__(self) -> str:
        return (f"OAuthSession(did={self.did!r}, handle={self.handle!r}, pds_endpoint={self.pds_endpoint!r}, "
                f"issuer={self.issuer!r}, scope={self.scope!r})")

    def expires_soon(self, now: dt.datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at - REFRESH_MARGIN <= (now or dt.datetime.now(dt.timezone.utc))


def expires_at(token_response: dict[str, Any]) -> dt.datetime | None:
    lifetime = token_response.get("expires_in")
    if not isinstance(lifetime, (int, float)):
        return None
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=float(lifetime))


class OAuthSessionStore:
    """Loads, saves and refreshes users' OAuth sessions.

    Args:
        store: the library's database.
        box: seals tokens and keys at rest.
        server: the authorization server client (for refreshes).
        client_id: the app's client id, stored with each session.
    """

    def __init__(self, store: Store, box: SecretBox, server: AuthServerClient, client_id: str) -> None:
        self.store = store
        self.box = box
        self.server = server
        self.client_id = client_id
        self._current: dict[str, OAuthSession] = {}
        self._flight: SingleFlight[OAuthSession] = SingleFlight()

    def _from_row(self, row: OAuthSessionRow) -> OAuthSession:
        self.server.nonces.seed(row.issuer, row.dpop_nonce)
        refresh = self.box.open(row.refresh_token) if row.refresh_token else None
        return OAuthSession(did=row.did, handle=row.handle, pds_endpoint=row.pds_endpoint, issuer=row.issuer,
                            scope=row.scope, access_token=self.box.open(row.access_token), refresh_token=refresh,
                            dpop_key=key_from_json(self.box.open(row.dpop_key)), expires_at=row.expires_at)

    def _fields(self, session: OAuthSession) -> dict[str, Any]:
        return {"handle": session.handle, "pds_endpoint": session.pds_endpoint, "issuer": session.issuer,
                "client_id": self.client_id, "scope": session.scope,
                "access_token": self.box.seal(session.access_token),
                "refresh_token": self.box.seal(session.refresh_token) if session.refresh_token else None,
                "dpop_key": self.box.seal(key_to_json(session.dpop_key)), "expires_at": session.expires_at,
                "dpop_nonce": self.server.nonces.get(session.issuer)}

    async def save(self, session: OAuthSession) -> None:
        """Store a new session (a login), replacing the DID's previous one."""
        async with hold_lease(self.store, _lease_name(session.did)) as lease:
            async with self.store.transaction() as db:
                await OAuthSessionRepository(db).save(session.did, **self._fields(session))
                await lease.release(db)
            self._current[session.did] = session

    async def load(self, did: str) -> OAuthSession:
        """The DID's session (from memory, else the database); NotAuthenticated if there is none."""
        session = self._current.get(did)
        if session is not None:
            return session
        async with self.store.transaction() as db:
            row = await OAuthSessionRepository(db).get(did)
            session = self._from_row(row) if row is not None else None
        if session is None:
            raise NotAuthenticated(f"{did} has no OAuth session here: send the user through "
                                   "bsky.oauth.start() and the callback first")
        self._current[did] = session
        return session

    async def current(self, did: str) -> OAuthSession:
        """The session to use now, refreshed first when its access token expires soon."""
        session = await self.load(did)
        if session.expires_soon():
            return await self.refresh(did, session.access_token)
        return session

    async def refresh(self, did: str, stale_access_token: str) -> OAuthSession:
        """Replace the session whose access token is ``stale_access_token``, once across
        coroutines and processes; callers that come second get the new session. The refresh
        runs as its own task: cancelling the caller does not cancel it."""
        session = self._current.get(did)
        if session is not None and session.access_token != stale_access_token and not session.expires_soon():
            return session
        return await self._flight.run(did, functools.partial(self._refresh_and_store, did, stale_access_token))

    async def _refresh_and_store(self, did: str, stale_access_token: str) -> OAuthSession:
        async with hold_lease(self.store, _lease_name(did)) as lease:
            async with self.store.transaction() as db:
                row = await OAuthSessionRepository(db).get(did)
                stored = self._from_row(row) if row is not None else None
            if stored is None:
                self._current.pop(did, None)
                raise OAuthSessionExpired(f"{did} was logged out (the OAuth session is gone): "
                                          "send the user through the login again")
            if stored.access_token != stale_access_token and not stored.expires_soon():
                logger.debug("using the OAuth session another worker refreshed for %s", did)
                self._current[did] = stored
                return stored
            try:
                fresh = await within_deadline(f"refreshing the OAuth session of {did} at {stored.issuer}",
                                              self._refresh(stored))
            except OAuthError as exc:
                if exc.error not in DEAD_GRANT_ERRORS:
                    raise
                async with self.store.transaction() as db:
                    await OAuthSessionRepository(db).delete(did)
                    await lease.release(db)
                self._current.pop(did, None)
                raise OAuthSessionExpired(f"the authorization server refused to refresh the session of {did} "
                                          f"({exc.error}): the user must log in again", error=exc.error,
                                          status_code=exc.status_code) from exc
            self._current[did] = fresh  # in use at once: a rotated refresh token is never dropped
            try:
                async with self.store.transaction() as db:
                    await OAuthSessionRepository(db).save(did, **self._fields(fresh))
                    await lease.release(db)
            except StorageError as exc:
                logger.warning("the refreshed OAuth session of %s could not be stored (%s); it is kept in memory "
                               "and stored at the next refresh", did, exc)
            return fresh

    async def _refresh(self, stored: OAuthSession) -> OAuthSession:
        if not stored.refresh_token:
            raise OAuthError(f"the OAuth session of {stored.did} has no refresh token", error="invalid_grant")
        server = await self.server.metadata(stored.issuer)
        tokens = await self.server.post(server, server.token_endpoint,
                                        {"grant_type": "refresh_token", "refresh_token": stored.refresh_token},
                                        stored.dpop_key)
        if tokens.get("sub") != stored.did or tokens.get("token_type") != "DPoP":
            raise OAuthError(f"the refreshed tokens of {stored.did} are for {tokens.get('sub')!r} "
                             f"({tokens.get('token_type')!r}), not {stored.did} (DPoP)")
        return OAuthSession(did=stored.did, handle=stored.handle, pds_endpoint=stored.pds_endpoint,
                            issuer=stored.issuer, scope=str(tokens.get("scope") or stored.scope),
                            access_token=str(tokens["access_token"]),
                            refresh_token=str(tokens.get("refresh_token") or stored.refresh_token),
                            dpop_key=stored.dpop_key, expires_at=expires_at(tokens))

    async def remove(self, did: str) -> OAuthSession | None:
        """Delete the DID's session (after any refresh in flight); return what was stored."""
        async with hold_lease(self.store, _lease_name(did)) as lease:
            async with self.store.transaction() as db:
                repo = OAuthSessionRepository(db)
                row = await repo.get(did)
                session = self._from_row(row) if row is not None else None
                await repo.delete(did)
                await lease.release(db)
            self._current.pop(did, None)
            return session


def _lease_name(did: str) -> str:
    return "oauth:" + did
