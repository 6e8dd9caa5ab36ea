"""Sessions: lazy login, stored sessions reused across processes, single-flight refresh."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from . import _jwt
from ._exceptions import (
    APIError,
    AuthenticationRequired,
    ExpiredToken,
    InvalidToken,
    LoginFailed,
    NotAuthenticated,
    StorageError,
)
from ._middleware import SESSION, SESSION_OWN, Handler
from ._request import XrpcRequest
from ._response import XrpcResponse, raise_for_status

if TYPE_CHECKING:  # the storage modules load SQLAlchemy: imported where used, not at import
    from ._storage.models import SessionRow
    from ._storage.store import Store

logger = logging.getLogger("pysky_async")


@dataclass(frozen=True)
class Session:
    """A logged-in session: what ``export_session()`` returns and ``login_with_session`` takes."""

    did: str
    handle: str
    pds_endpoint: str
    access_jwt: str
    refresh_jwt: str

    def __repr__(self) -> str:  # never show the tokens
        return f"Session(did={self.did!r}, handle={self.handle!r}, pds_endpoint={self.pds_endpoint!r})"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: SessionRow) -> Session:
        return cls(row.did, row.handle, row.pds_endpoint, row.access_jwt, row.refresh_jwt)


def pds_endpoint_from_did_doc(did_doc: Any) -> str | None:
    """The ``#atproto_pds`` service endpoint of a DID document, if it has one."""
    if not isinstance(did_doc, dict):
        return None
    for service in did_doc.get("service") or []:
        if (
            isinstance(service, dict)
            and str(service.get("id", "")).endswith("#atproto_pds")
            and service.get("type") == "AtprotoPersonalDataServer"
            and isinstance(service.get("serviceEndpoint"), str)
        ):
            return str(service["serviceEndpoint"]).rstrip("/")
    return None


CLOCK_TOLERANCE = 5.0
"""A clock this close to the server's is taken as right (well within the 60 s refresh margin)."""


class SessionManager:
    """Owns the account's session: loads it from the store, logs in, refreshes.

    Within a process one ``asyncio.Lock`` makes login and refresh single-flight; across
    processes the store's per-account lock does, and whoever gets it second re-reads the
    stored session and uses it instead of refreshing again.

    Args:
        store: where sessions are kept.
        send: the pipeline; the session's own calls skip the session middleware (``SESSION_OWN``).
        auth_host: the service to log in to (the entryway, e.g. ``https://bsky.social``).
        identifier / password: credentials, or None.
    """

    def __init__(self, store: Store, send: Handler, *, auth_host: str,
                 identifier: str | None, password: str | None) -> None:
        self.store = store
        self.send = send
        self.auth_host = auth_host
        self.identifier = identifier
        self._password = password
        self.session: Session | None = None
        self._lock = asyncio.Lock()
        self._refreshing: set[asyncio.Task[Session]] = set()
        self.login_refused: LoginFailed | None = None
        """The server's refusal of the password: raised instead of asking again until ``login()``."""
        self.clock_offset = 0.0
        """The server's clock minus this machine's, in seconds, learned from each token it issues."""

    def _learn_server_clock(self, fresh_token: str) -> None:
        issued = _jwt.claims(fresh_token).get("iat")
        if isinstance(issued, (int, float)):
            offset = issued - time.time()  # iat is in whole seconds, and the answer took a while to come
            self.clock_offset = offset if abs(offset) > CLOCK_TOLERANCE else 0.0

    def _expires_soon(self, token: str) -> bool:
        """Expiry judged by the server's clock, so a machine whose clock is off neither refreshes
        on every call nor sends tokens it thinks are young (the server's ExpiredToken wins anyway)."""
        return _jwt.expires_soon(token, now=time.time() + self.clock_offset)

    @property
    def account_key(self) -> str:
        who = self.identifier or (self.session.did if self.session else "")
        return f"{who.lower().lstrip('@')}@{self.auth_host}"

    @property
    def pds_endpoint(self) -> str | None:
        """The account's PDS, once logged in."""
        return self.session.pds_endpoint if self.session else None

    @property
    def can_authenticate(self) -> bool:
        return self.session is not None or bool(self.identifier)

    async def current(self) -> Session:
        """The session to use now: loaded, logged in or refreshed as needed."""
        session = self.session
        if session is not None and not self._expires_soon(session.access_jwt):
            return session
        if session is not None:
            return await self.refresh(session.access_jwt)
        async with self._lock:
            if self.session is None:
                self.session = await self._load_or_login()
            session = self.session
        if self._expires_soon(session.access_jwt):
            return await self.refresh(session.access_jwt)
        return session

    async def refresh(self, stale_access_jwt: str) -> Session:
        """Replace the session whose access token is ``stale_access_jwt``, once.

        Callers that arrive while (or after) another caller refreshed get the new session. The
        refresh runs as its own task, shielded from the caller: refresh tokens are single use, so
        once the server has rotated one, the new pair is stored even if the caller is cancelled.
        """
        async with self._lock:
            if self.session is not None and self.session.access_jwt != stale_access_jwt:
                return self.session
            task = asyncio.get_running_loop().create_task(self._refresh_and_store(stale_access_jwt))
            self._refreshing.add(task)
            task.add_done_callback(self._refresh_done)
            return await asyncio.shield(task)

    def _refresh_done(self, task: asyncio.Task[Session]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:  # retrieved, even if its caller left
            logger.debug("session refresh failed: %s", task.exception())

    async def _refresh_and_store(self, stale_access_jwt: str) -> Session:
        """The refresh itself, under the store's per-account lock (see ``refresh``).

        The new pair is in use before it is saved: if the database fails after the server rotated
        the refresh token, the pair is kept in memory (and the failure logged), never lost."""
        from ._storage.repositories import SessionRepository

        fresh: Session | None = None
        dropped: NotAuthenticated | LoginFailed | None = None
        try:
            async with self.store.transaction() as db:
                repo = SessionRepository(db)
                await repo.lock(self.account_key)
                row = await repo.get(self.account_key)
                stored = Session.from_row(row) if row is not None else None
                latest = _latest(stored, self.session)
                if latest is stored and stored is not None and stored.access_jwt != stale_access_jwt \
                        and not self._expires_soon(stored.access_jwt):
                    logger.debug("using the session another process refreshed for %s", stored.did)
                    self.session = stored
                    return stored
                try:
                    fresh = self.session = await self._refresh_or_login(latest)
                except (NotAuthenticated, LoginFailed) as exc:  # dead, and nothing to replace it: never reuse it
                    self.session = None
                    dropped = exc
                    await repo.delete(self.account_key)
                else:
                    await repo.save(self.account_key, **fresh.to_dict())
        except StorageError as exc:
            if fresh is None and dropped is None:
                raise
            if fresh is not None:
                logger.warning("the refreshed session of %s could not be stored (%s); it is kept in memory and "
                               "stored at the next refresh", fresh.did, exc)
        if dropped is not None:
            raise dropped
        assert fresh is not None  # the transaction returned a stored session, dropped it or refreshed it
        return fresh

    async def adopt(self, session: Session) -> None:
        """Use (and store) a session obtained elsewhere."""
        from ._storage.repositories import SessionRepository

        async with self._lock:
            self.session = session
            if not self.identifier:
                self.identifier = session.did
            async with self.store.transaction() as db:
                await SessionRepository(db).save(self.account_key, **session.to_dict())

    async def _load_or_login(self) -> Session:
        from ._storage.repositories import SessionRepository

        if not self.identifier:
            raise NotAuthenticated(
                "this call needs a logged-in account: pass username= and password= to "
                "AsyncBskyClient (or set BSKY_AUTH_USERNAME and BSKY_AUTH_PASSWORD), "
                "or call login_with_session()"
            )
        async with self.store.transaction() as db:
            repo = SessionRepository(db)
            await repo.lock(self.account_key)
            row = await repo.get(self.account_key)
            if row is not None:
                logger.debug("reusing the stored session of %s", row.did)
                return Session.from_row(row)
            session = await self._login()
            await repo.save(self.account_key, **session.to_dict())
            return session

    async def _refresh_or_login(self, current: Session | None) -> Session:
        if current is not None:
            try:
                return await self._refresh(current)
            except APIError as exc:
                if not _session_unknown(exc):
                    raise
                logger.warning("the server no longer accepts the stored session of %s (%s: %s); "
                               "%s", current.did, exc.error or exc.status_code, exc.message,
                               "logging in again" if self._password else "dropping it")
                if not self._password:
                    raise NotAuthenticated(
                        f"the stored session of {current.handle or current.did} is no longer valid on "
                        f"{self.auth_host} ({exc.error or exc.status_code}) and was dropped: pass "
                        "password= (or set BSKY_AUTH_PASSWORD) so the client can log in again") from exc
        return await self._login()

    async def logout(self) -> None:
        """End the session on the server (deleteSession) and forget the stored one."""
        async with self._lock:
            session = self.session or await self.stored()
            if session is not None:
                request = self._own_call("com.atproto.server.deleteSession",
                                         headers={"Authorization": f"Bearer {session.refresh_jwt}"})
                try:
                    raise_for_status(await self.send(request), request.nsid)
                except APIError as exc:
                    if not _session_unknown(exc):
                        raise
            await self.forget()

    async def stored(self) -> Session | None:
        """The session stored for this account, without logging in."""
        from ._storage.repositories import SessionRepository

        async with self.store.transaction() as db:
            row = await SessionRepository(db).get(self.account_key)
        return Session.from_row(row) if row is not None else None

    async def forget(self) -> None:
        """Drop the session here and in the store (the server is not told: see ``logout``)."""
        from ._storage.repositories import SessionRepository

        async with self.store.transaction() as db:
            await SessionRepository(db).delete(self.account_key)
        self.session = None

    async def _refresh(self, current: Session) -> Session:
        request = self._own_call("com.atproto.server.refreshSession",
                                 headers={"Authorization": f"Bearer {current.refresh_jwt}"})
        response = raise_for_status(await self.send(request), request.nsid)
        return self._session_from(response, fallback=current)

    async def _login(self) -> Session:
        if self.login_refused is not None:  # never again on every call: 30 refused logins lock the account
            raise LoginFailed(str(self.login_refused))
        if not self.identifier or not self._password:
            raise NotAuthenticated(
                "the stored session has expired and no password is configured: pass "
                "password= (or set BSKY_AUTH_PASSWORD) so the client can log in again"
            )
        request = self._own_call("com.atproto.server.createSession",
                                 json={"identifier": self.identifier, "password": self._password})
        response = await self.send(request)
        try:
            raise_for_status(response, request.nsid)
        except AuthenticationRequired as exc:
            raise self._refused(
                f"{self.auth_host} refused the login of {self.identifier!r}: {exc.message or exc.error}. "
                "Check the username and password (BSKY_AUTH_USERNAME / BSKY_AUTH_PASSWORD); "
                "use an app password, not the account password") from exc
        except APIError as exc:
            if exc.status_code == 400 and exc.error in (None, "InvalidRequest"):
                raise self._refused(f"{self.auth_host} refused the login: {exc.message}") from exc
            raise
        return self._session_from(response, fallback=None)

    def _refused(self, reason: str) -> LoginFailed:
        """Remember the refusal: later calls raise it without asking the server again."""
        self.login_refused = LoginFailed(f"{reason}. The client tries again only after an explicit login()")
        return self.login_refused

    def _own_call(self, nsid: str, **fields: Any) -> XrpcRequest:
        """A login or refresh: logged, but outside the session and the caller's middlewares; its error row
        is written behind the call (a database lock is held)."""
        request = XrpcRequest("POST", nsid, self.auth_host, skip=SESSION_OWN, **fields)
        request.context.log_errors_at_once = False
        return request

    def _session_from(self, response: XrpcResponse, *, fallback: Session | None) -> Session:
        raw = response.raw
        did, access_jwt, refresh_jwt = response.require("did", "accessJwt", "refreshJwt")
        self._learn_server_clock(access_jwt)
        pds = pds_endpoint_from_did_doc(raw.get("didDoc"))
        if pds is None:
            pds = fallback.pds_endpoint if fallback else self.auth_host
        return Session(did=did, handle=raw.get("handle") or (fallback.handle if fallback else ""),
                       pds_endpoint=pds, access_jwt=access_jwt, refresh_jwt=refresh_jwt)


class SessionMiddleware:
    """Sends authenticated calls to the account's PDS with its token; on an expired token
    (400 ExpiredToken, or 401) refreshes once (single-flight) and has the pipeline send the call
    once more (``context.send_again``), so both attempts are in the call log."""

    name = SESSION

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        if not request.authenticated:
            return await call_next(request)
        ctx = request.context
        session = await self.manager.current()
        if ctx.send_again:  # the pipeline sends the call again after our refresh
            ctx.send_again = False
            ctx.session_was_refreshed = True
            return await call_next(_authorize(request, session))
        response = await call_next(_authorize(request, session))
        if _needs_refresh(response):
            await self.manager.refresh(session.access_jwt)
            ctx.send_again = True  # from the top: the expired attempt keeps its own call-log row
        return response


def _latest(stored: Session | None, in_memory: Session | None) -> Session | None:
    """The session issued last: the stored one, unless the database failed to take a newer pair."""
    if stored is None or in_memory is None:
        return stored or in_memory
    stored_at, in_memory_at = (_jwt.claims(s.access_jwt).get("iat") for s in (stored, in_memory))
    if isinstance(stored_at, (int, float)) and isinstance(in_memory_at, (int, float)) and in_memory_at > stored_at:
        return in_memory
    return stored


def _authorize(request: XrpcRequest, session: Session) -> XrpcRequest:
    request.context.did = session.did
    return request.replace(
        host=session.pds_endpoint,
        headers={**request.headers, "Authorization": f"Bearer {session.access_jwt}"},
    )


def _needs_refresh(response: XrpcResponse) -> bool:
    """An answer saying the access token is expired, or not (any longer) one of this server's."""
    status = response.http.status_code
    if status == 401:
        return True
    if status not in (400, 403):
        return False
    raw = response.raw
    message = raw.get("message")
    return raw.get("error") in _UNKNOWN_SESSION_ERRORS or (
        isinstance(message, str) and message.startswith("Could not find user info for account"))


_UNKNOWN_SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AccountNotFound"})


def _session_unknown(exc: APIError) -> bool:
    """A refresh (or deleteSession) refused because the server no longer knows the session: expired or
    revoked, signed by another server (a reset), or the account is gone or moved."""
    if isinstance(exc, (ExpiredToken, InvalidToken, AuthenticationRequired)):
        return True
    message = (exc.message or "").lower()
    return exc.status_code in (400, 403) and (exc.error in _UNKNOWN_SESSION_ERRORS
                                              or "could not find" in message or "not found" in message)
