"""Sessions: lazy login, stored sessions reused across processes, single-flight refresh."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from . import _jwt
from . import _password_check as password_check
from ._account import Account, Session
from ._exceptions import (
    APIError,
    AuthenticationRequired,
    ExpiredToken,
    InvalidToken,
    LoginFailed,
    NotAuthenticated,
    StorageError,
)
from ._identity import pds_endpoint_from_did_doc
from ._middleware import SESSION, SESSION_OWN, Handler
from ._refresh_lease import SingleFlight, hold_lease, within_deadline
from ._request import XrpcRequest
from ._response import XrpcResponse, raise_for_status

if TYPE_CHECKING:  # the storage modules load SQLAlchemy: imported where used, not at import
    from sqlalchemy.ext.asyncio import AsyncSession

    from ._storage.repositories import SessionRepository
    from ._storage.store import Store

logger = logging.getLogger("pysky_async")


RENEW_ON_REFUSAL_INTERVAL = 60.0
"""A session the server refuses although it has not expired is renewed at most this often (seconds)."""

CLOCK_TOLERANCE = 5.0
"""A clock this close to the server's is taken as right (well within the 60 s refresh margin)."""


class SessionManager:
    """An app-password account (an ``Account``): loads its session from the store, logs in, refreshes.

    Login and refresh are single-flight within a process (one shielded task) and across
    processes (a lease row with an expiry, ``_refresh_lease``): whoever gets the lease second
    re-reads the stored session and uses it instead of refreshing again. A stored session made
    with another password than this client's is not used: the client logs in with its own.

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
        self._flight: SingleFlight[Session] = SingleFlight()
        self._renewed_on_refusal: tuple[str, float] | None = None
        """The access token last issued because the server refused a valid one, and when (monotonic)."""
        self.renew_on_refusal_interval = RENEW_ON_REFUSAL_INTERVAL
        self._password_accepted = False
        """The server accepted ``password`` in this process: a hash of it is stored with the session."""
        self._password_check: str | None = None
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

    async def login(self) -> Session:
        """Log in (or load the stored session) now; after a refused password, asks the server again."""
        self.login_refused = None
        return await self.current()

    async def current(self) -> Session:
        """The session to use now: loaded, logged in or refreshed as needed."""
        session = self.session
        if session is not None and not self._expires_soon(session.access_jwt):
            return session
        if session is not None:
            return await self.refresh(session.access_jwt)
        session = await self._flight.run(self.account_key, self._load_or_login)
        if self._expires_soon(session.access_jwt):
            return await self.refresh(session.access_jwt)
        return session

    async def refresh(self, stale_access_token: str) -> Session:
        """Replace the session whose access token is ``stale_access_token``, once.

        Callers that arrive while (or after) another caller refreshed get the new session. The
        refresh runs as its own task, shielded from the caller: refresh tokens are single use, so
        once the server has rotated one, the new pair is stored even if the caller is cancelled.
        Across processes a lease (``_refresh_lease``) lets one refresh at a time, with no database
        lock held over the network.
        """
        if self.session is not None and self.session.access_jwt != stale_access_token:
            return self.session
        refused_while_valid = not self._expires_soon(stale_access_token)
        if refused_while_valid:
            self._check_renewal_budget(stale_access_token)
        fresh = await self._flight.run(self.account_key, functools.partial(self._refresh_and_store, stale_access_token))
        if refused_while_valid:
            self._renewed_on_refusal = (fresh.access_jwt, time.monotonic())
        return fresh

    def _check_renewal_budget(self, refused_access_jwt: str) -> None:
        """A server that refuses even a session renewed for it a moment ago would otherwise cost
        a refresh or login per call (and lock the account): once a minute, then this error."""
        if self._renewed_on_refusal is None:
            return
        renewed, at = self._renewed_on_refusal
        age = time.monotonic() - at
        if renewed == refused_access_jwt and age < self.renew_on_refusal_interval:
            raise NotAuthenticated(
                f"the server refused the session of {self.identifier or (self.session and self.session.did)} "
                f"that was renewed {age:.0f} s ago because it had refused the one before; the client renews a "
                f"refused session at most once every {self.renew_on_refusal_interval:.0f} s. The account may not "
                "be allowed this call, or the call goes to a server that does not accept its tokens "
                "(check hostname= and auth_host=)")

    async def _refresh_and_store(self, stale_access_jwt: str) -> Session:
        """The refresh itself, holding the account's lease (see ``refresh``).

        The new pair is in use before it is saved: if the database fails after the server rotated
        the refresh token, the pair is kept in memory (and the failure logged), never lost."""
        fresh: Session | None = None
        dropped: NotAuthenticated | LoginFailed | None = None
        try:
            async with hold_lease(self.store, self._lease_name) as lease:
                stored = await self.stored()
                latest = _latest(stored, self.session)
                if latest is stored and stored is not None and stored.access_jwt != stale_access_jwt \
                        and not self._expires_soon(stored.access_jwt):
                    logger.debug("using the session another process refreshed for %s", stored.did)
                    self.session = stored
                    return stored
                try:
                    fresh = self.session = await within_deadline(
                        f"refreshing the session on {self.auth_host}", self._refresh_or_login(latest))
                except (NotAuthenticated, LoginFailed) as exc:  # dead, and nothing to replace it: never reuse it
                    self.session = None
                    dropped = exc
                    async with self.store.transaction() as db:
                        await _sessions(db).delete(self.account_key)
                        await lease.release(db)
                else:
                    fields = {**fresh.to_dict(), **await self._password_fields()}
                    async with self.store.transaction() as db:
                        await _sessions(db).save(self.account_key, **fields)
                        await lease.release(db)
        except StorageError as exc:
            if fresh is None and dropped is None:
                raise
            if fresh is not None:
                logger.warning("the refreshed session of %s could not be stored (%s); it is kept in memory and "
                               "stored at the next refresh", fresh.did, exc)
        if dropped is not None:
            raise dropped
        assert fresh is not None  # the lease gave a stored session, dropped it or refreshed it
        return fresh

    @property
    def _lease_name(self) -> str:
        return "session:" + self.account_key

    async def adopt(self, session: Session) -> None:
        """Use (and store) a session obtained elsewhere."""
        async with self._lock:
            self.session = session
            if not self.identifier:
                self.identifier = session.did
            async with self.store.transaction() as db:  # not made with our password: nothing to check it by
                await _sessions(db).save(self.account_key, **session.to_dict(), password_check=None)

    async def _load_or_login(self) -> Session:
        """The stored session, else a login; one login across processes (the account's lease),
        and no database lock held while the login is on the network."""
        if not self.identifier:
            raise NotAuthenticated(
                "this call needs a logged-in account: pass username= and password= to "
                "AsyncBskyClient (or set BSKY_AUTH_USERNAME and BSKY_AUTH_PASSWORD), "
                "or call login_with_session()"
            )
        stored = await self._usable_stored()
        if stored is None:
            async with hold_lease(self.store, self._lease_name) as lease:
                stored = await self._usable_stored()  # logged in by another process while we waited
                if stored is None:
                    self.session = await within_deadline(f"logging in to {self.auth_host}", self._login())
                    try:
                        fields = {**self.session.to_dict(), **await self._password_fields()}
                        async with self.store.transaction() as db:
                            await _sessions(db).save(self.account_key, **fields)
                            await lease.release(db)
                    except StorageError as exc:
                        logger.warning("the session of %s could not be stored (%s); it is kept in memory",
                                       self.session.did, exc)
                    return self.session
        logger.debug("reusing the stored session of %s", stored.did)
        self.session = stored
        return stored

    async def _usable_stored(self) -> Session | None:
        """The stored session, unless this client's password differs from the one it was made with:
        then the client logs in with its own password (a wrong one fails there, as it should)."""
        async with self.store.transaction() as db:
            row = await _sessions(db).get(self.account_key)
        if row is None:
            return None
        if self._password and row.password_check and not await password_check.matches(self._password,
                                                                                        row.password_check):
            logger.info("the password given for %s is not the one its stored session was made with: logging in "
                        "with it", self.identifier)
            return None
        return Session.from_row(row)

    async def _password_fields(self) -> dict[str, str]:
        """``password_check`` for the stored row, once the server accepted this client's password."""
        if self._password_accepted and self._password and self._password_check is None:
            self._password_check = await password_check.make_check(self._password)
        return {"password_check": self._password_check} if self._password_check else {}

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
        async with self.store.transaction() as db:
            row = await _sessions(db).get(self.account_key)
        return Session.from_row(row) if row is not None else None

    async def forget(self) -> None:
        """Drop the session here and in the store (the server is not told: see ``logout``)."""
        async with self.store.transaction() as db:
            await _sessions(db).delete(self.account_key)
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
        self._password_accepted = True
        return self._session_from(response, fallback=None)

    def _refused(self, reason: str) -> LoginFailed:
        """Remember the refusal: later calls raise it without asking the server again."""
        self.login_refused = LoginFailed(f"{reason}. The client tries again only after an explicit login()")
        return self.login_refused

    def _own_call(self, nsid: str, **fields: Any) -> XrpcRequest:
        """A login or refresh: logged, but outside the session and the caller's middlewares; its error row
        is written behind the call (the call runs in the shielded refresh task, not for one caller)."""
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

    def __init__(self, manager: Account) -> None:
        self.manager = manager

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        if not request.authenticated:
            return await call_next(request)
        ctx = request.context
        session = await self.manager.current()
        if ctx.send_again:  # the pipeline sends the call again after our refresh
            ctx.send_again = False
            ctx.session_was_refreshed = True
            if ctx.forgotten_did is not None and ctx.forgotten_did != session.did:
                request = _retarget(request, ctx.forgotten_did, session.did)
            return await call_next(_authorize(request, session))
        response = await call_next(_authorize(request, session))
        if _needs_refresh(response):
            fresh = await self.manager.refresh(session.access_jwt)
            if _account_not_found(response):
                _check_safe_to_send_again(request, response, fresh)
                ctx.forgotten_did = session.did
            ctx.send_again = True  # from the top: the expired attempt keeps its own call-log row
        return response


def _account_not_found(response: XrpcResponse) -> bool:
    """The server no longer knows the account (deleted and re-created, a server reset)."""
    raw = response.raw
    message = raw.get("message")
    return raw.get("error") == "AccountNotFound" or (
        isinstance(message, str) and message.startswith("Could not find user info for account"))


def _safe_to_send_again(request: XrpcRequest) -> bool:
    """A read, or a write that cannot happen twice: repeating it changes nothing or fails."""
    if request.method == "GET" or request.context.idempotent or request.nsid in _REPEATABLE_WRITES:
        return True
    body = request.json if isinstance(request.json, dict) else {}
    if request.nsid == "com.atproto.repo.createRecord":
        return bool(body.get("rkey"))
    if request.nsid == "com.atproto.repo.applyWrites":
        writes = body.get("writes")
        return isinstance(writes, list) and all(
            isinstance(w, dict) and (w.get("$type") != "com.atproto.repo.applyWrites#create" or w.get("rkey"))
            for w in writes)
    return False


_REPEATABLE_WRITES = frozenset({"com.atproto.repo.putRecord", "com.atproto.repo.deleteRecord"})


def _check_safe_to_send_again(request: XrpcRequest, response: XrpcResponse, fresh: Session) -> None:
    """Raise the server's refusal, explained, when the call must not be sent twice."""
    if _safe_to_send_again(request):
        return
    try:
        raise_for_status(response, request.nsid)
    except APIError as exc:
        exc.message = (f"{exc.message or exc.error}. The server no longer knew the account: the client logged "
                       f"in again (now {fresh.did}), but did not send this {request.nsid} again because it is "
                       "not safe to repeat (no record key): check whether it is needed and send it again")
        raise


def _retarget(request: XrpcRequest, old_did: str, new_did: str) -> XrpcRequest:
    """The request with ``repo`` naming the renewed account where it named the forgotten one."""
    params = {**request.params, "repo": new_did} if request.params.get("repo") == old_did else request.params
    body = request.json
    if isinstance(body, dict) and body.get("repo") == old_did:
        body = {**body, "repo": new_did}
    return request.replace(params=params, json=body)


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
    if raw.get("error") == "InvalidToken" and message == "Bad token method":
        return False  # a valid token not allowed this method (an app password without DM access): no refresh helps
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


def _sessions(db: AsyncSession) -> SessionRepository:
    """The session repository, imported on first use (the storage modules load SQLAlchemy)."""
    from ._storage.repositories import SessionRepository

    return SessionRepository(db)
