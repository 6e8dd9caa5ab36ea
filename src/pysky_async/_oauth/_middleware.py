"""The pipeline side of an OAuth user: ``OAuthAccount`` (what the feature objects ask
"who am I" and "whose repo") and ``DpopMiddleware`` (each authenticated call goes to the
user's PDS with ``Authorization: DPoP <token>`` and a fresh proof)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .._account import Session
from .._exceptions import InvalidInput
from .._middleware import SESSION, Handler
from .._request import XrpcRequest
from .._response import XrpcResponse
from ._dpop import DPOP_NONCE_HEADER, NonceCache, make_proof
from ._sessions import OAuthSession, OAuthSessionStore


def _as_session(session: OAuthSession) -> Session:
    return Session(did=session.did, handle=session.handle or "", pds_endpoint=session.pds_endpoint,
                   access_jwt=session.access_token, refresh_jwt="")


class OAuthAccount:
    """One OAuth user as the client's account (an ``Account``): ``current()`` is the user's
    session, refreshed through ``OAuthSessionStore``; there is no password login, and
    ``logout()`` revokes the tokens and forgets the session (``bsky.oauth.logout``).

    Args:
        sessions: the app's OAuth sessions.
        did: the user.
        logout: revokes and forgets the user's session.
    """

    def __init__(self, sessions: OAuthSessionStore, did: str, logout: Callable[[str], Awaitable[None]]) -> None:
        self.oauth_sessions = sessions
        self.did = did
        self._logout = logout
        self.oauth: OAuthSession | None = None

    @property
    def session(self) -> Session | None:
        return _as_session(self.oauth) if self.oauth is not None else None

    @property
    def identifier(self) -> str:
        return self.did

    @property
    def pds_endpoint(self) -> str | None:
        return self.oauth.pds_endpoint if self.oauth is not None else None

    @property
    def can_authenticate(self) -> bool:
        return True

    async def current_oauth(self) -> OAuthSession:
        self.oauth = await self.oauth_sessions.current(self.did)
        return self.oauth

    async def refresh_oauth(self, stale_access_token: str) -> OAuthSession:
        self.oauth = await self.oauth_sessions.refresh(self.did, stale_access_token)
        return self.oauth

    async def current(self) -> Session:
        return _as_session(await self.current_oauth())

    async def refresh(self, stale_access_token: str) -> Session:
        return _as_session(await self.refresh_oauth(stale_access_token))

    async def login(self) -> Session:
        return await self.current()

    async def logout(self) -> None:
        await self._logout(self.did)
        self.oauth = None

    async def adopt(self, session: Session) -> None:
        raise InvalidInput("an OAuth user's session comes from bsky.oauth (start/callback), "
                           "not from login_with_session()")


class DpopMiddleware:
    """In place of the session middleware for an OAuth user: sends authenticated calls to the
    user's PDS with the DPoP-bound token and a proof (``ath``, the PDS's nonce); retries once
    when the PDS asks for a new nonce; on an expired token refreshes once (single-flight) and
    replays the call once. App views are reached through the PDS with ``atproto-proxy``.

    Args:
        account: the user.
        nonces: DPoP nonces per server (shared by every user of the app).
        appview: the ``atproto-proxy`` value for ``app.bsky.*`` calls, or None for the PDS's default.
    """

    name = SESSION

    def __init__(self, account: OAuthAccount, nonces: NonceCache, appview: str | None) -> None:
        self.account = account
        self.nonces = nonces
        self.appview = appview

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        if not request.authenticated:
            return await call_next(request)
        session = await self.account.current_oauth()
        response = await self._send(request, session, call_next)
        if _token_expired(response):
            session = await self.account.refresh_oauth(session.access_token)
            request.context.session_was_refreshed = True
            response = await self._send(request, session, call_next)
        return response

    async def _send(self, request: XrpcRequest, session: OAuthSession, call_next: Handler) -> XrpcResponse:
        request.context.did = session.did
        headers = {**request.headers, "Authorization": f"DPoP {session.access_token}"}
        if self.appview and request.nsid.startswith("app.bsky.") and "atproto-proxy" not in headers:
            headers["atproto-proxy"] = self.appview
        request = request.replace(host=session.pds_endpoint, headers=headers)
        for attempt in (1, 2):
            proof = make_proof(session.dpop_key, request.method, request.url, nonce=self.nonces.get(request.url),
                               access_token=session.access_token)
            response = await call_next(request.with_headers(DPoP=proof))
            changed = self.nonces.update(request.url, response.http.headers.get(DPOP_NONCE_HEADER))
            if attempt == 1 and changed and _wants_nonce(response):
                continue
            return response
        raise AssertionError("unreachable")


def _www_authenticate(response: XrpcResponse) -> str:
    return str(response.http.headers.get("WWW-Authenticate", ""))


def _wants_nonce(response: XrpcResponse) -> bool:
    return response.http.status_code in (400, 401) and (
        "use_dpop_nonce" in _www_authenticate(response) or response.raw.get("error") == "use_dpop_nonce")


def _token_expired(response: XrpcResponse) -> bool:
    if response.http.status_code != 401 and response.raw.get("error") != "ExpiredToken":
        return False
    return "use_dpop_nonce" not in _www_authenticate(response)
