"""``bsky.oauth``: log users in with AT Protocol OAuth and act for them.

    bsky.oauth.configure(OAuthApp.loopback("http://127.0.0.1:8000/oauth/callback"))
    url = await bsky.oauth.start("alice.bsky.social")          # send the user there
    login = await bsky.oauth.callback(request.query_params)      # on the redirect back
    alice = await bsky.oauth.client_for(login.did)               # an AsyncBskyClient as alice
    await bsky.oauth.logout(login.did)                           # revoke and forget
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .._exceptions import IdentityNotFound, InvalidInput, NetworkError, OAuthCallbackError, OAuthError, PyskyError
from .._identity import IdentityResolver, pds_endpoint_from_did_doc
from .._middleware import Handler
from .._storage.models import utcnow
from .._storage.oauth_repository import OAuthStateRepository
from .._storage.store import Store
from .._syntax import Did, Handle
from ._app import OAuthApp
from ._dpop import NonceCache, generate_key, key_from_json, key_to_json
from ._logins import LoginStore
from ._middleware import DpopMiddleware, OAuthAccount
from ._secrets import SecretBox
from ._server import AuthServer, AuthServerClient
from ._sessions import OAuthSession, OAuthSessionStore, expires_at

if TYPE_CHECKING:
    from .._client import AsyncBskyClient

BSKY_APPVIEW = "did:web:api.bsky.app#bsky_appview"
LOGIN_TTL = dt.timedelta(minutes=10)
"""How long a started login waits for its callback."""

ClientFactory = Callable[[OAuthAccount, DpopMiddleware], "AsyncBskyClient"]


@dataclass(frozen=True)
class OAuthLogin:
    """A finished login: the user's session (no tokens in its repr) and your ``app_state``."""

    session: OAuthSession
    app_state: str | None

    @property
    def did(self) -> str:
        return self.session.did


@dataclass
class _Configured:
    app: OAuthApp
    server: AuthServerClient
    sessions: OAuthSessionStore
    box: SecretBox
    appview: str | None


class OAuth:
    """OAuth for the users of your service (``bsky.oauth``); configure it once with
    ``configure()``. Sessions live in the client's database, shared by every worker."""

    def __init__(self, store: Store, send: Handler, identity: IdentityResolver,
                 make_client: ClientFactory) -> None:
        self._store = store
        self._send = send
        self._identity = identity
        self._make_client = make_client
        self._configured: _Configured | None = None
        self.nonces = NonceCache()
        self.logins = LoginStore(store)
        """The logins of the web glue (its login cookies)."""

    @staticmethod
    def generate_encryption_key() -> str:
        """A new key for ``configure(encryption_key=...)`` (keep it with your other secrets)."""
        return SecretBox.generate_key()

    def configure(self, app: OAuthApp, *, encryption_key: str | bytes | None = None,
                  appview: str | None = BSKY_APPVIEW, allow_http_loopback: bool | None = None) -> OAuth:
        """Set the app (client metadata, keys) once, before the first login.

        Args:
            app: who your service is (``OAuthApp.loopback(...)`` for development).
            encryption_key: encrypt tokens and DPoP keys at rest (``generate_encryption_key()``).
            appview: the ``atproto-proxy`` service for ``app.bsky.*`` calls made as a user (None:
                the PDS's own default).
            allow_http_loopback: let metadata and token requests use plain http to localhost
                (development servers); default: only for an ``OAuthApp.loopback`` app.
        """
        box = SecretBox(encryption_key)
        loopback = app.is_loopback if allow_http_loopback is None else allow_http_loopback
        server = AuthServerClient(self._send, app, self.nonces, allow_http_loopback=loopback)
        self._configured = _Configured(app, server, OAuthSessionStore(self._store, box, server, app.client_id),
                                       box, appview)
        return self

    @property
    def _c(self) -> _Configured:
        if self._configured is None:
            raise InvalidInput("bsky.oauth is not configured: call bsky.oauth.configure(OAuthApp(...)) first")
        return self._configured

    @property
    def app(self) -> OAuthApp:
        return self._c.app

    # -- login -------------------------------------------------------------------------

    async def start(self, identifier: str, *, redirect_uri: str | None = None, app_state: str | None = None) -> str:
        """Begin a login; return the URL to send the user's browser to.

        Args:
            identifier: the user's handle or DID, or their PDS / entryway URL (``https://bsky.social``).
            redirect_uri: one of the app's redirect URIs (default: the first).
            app_state: your own data, handed back by ``callback()`` (not sent to the server).
        """
        c = self._c
        redirect = c.app.redirect_uri(redirect_uri)
        did, handle, pds = await self._resolve(identifier)
        issuer = await c.server.issuer_of(pds) if pds else await self._issuer_of_service(identifier)
        server = await c.server.metadata(issuer)
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        key = generate_key()
        form = {"response_type": "code", "redirect_uri": redirect, "scope": c.app.scope, "state": state,
                "code_challenge": challenge, "code_challenge_method": "S256"}
        if handle or did:
            form["login_hint"] = handle or did or ""
        par = await c.server.post(server, server.par_endpoint, form, key)
        request_uri = par.get("request_uri")
        if not isinstance(request_uri, str):
            raise OAuthError(f"{server.par_endpoint} returned no request_uri")
        async with self._store.transaction() as db:
            repo = OAuthStateRepository(db)
            await repo.delete_older_than(utcnow() - LOGIN_TTL)
            await repo.add(state=state, issuer=issuer, did=did, handle=handle, pds_endpoint=pds,
                           redirect_uri=redirect, pkce_verifier=c.box.seal(verifier),
                           dpop_key=c.box.seal(key_to_json(key)), app_state=app_state)
        return f"{server.authorization_endpoint}?" + urlencode({"client_id": c.app.client_id,
                                                                 "request_uri": request_uri})

    async def callback(self, params: Mapping[str, str]) -> OAuthLogin:
        """Finish a login from the query parameters of the redirect back to the app.

        The ``state`` is used up whatever happens; the session is stored only when every check
        passed (known state, same issuer, code exchanged, ``sub`` resolving to that issuer).
        """
        c = self._c
        state = params.get("state")
        if not state:
            raise OAuthCallbackError("the OAuth callback has no state parameter: it is not the answer to a login")
        async with self._store.transaction() as db:
            login = await OAuthStateRepository(db).take(state)
        if login is None:
            raise OAuthCallbackError("unknown or already used OAuth state: start the login again")
        if login.created_at < utcnow() - LOGIN_TTL:
            raise OAuthCallbackError("the login took too long (over 10 minutes): start it again")
        if params.get("error"):
            raise OAuthCallbackError(f"the authorization server refused the login: {params['error']}"
                                     f"{': ' + params['error_description'] if params.get('error_description') else ''}",
                                     error=params["error"])
        if params.get("iss") != login.issuer:
            raise OAuthCallbackError(f"the callback comes from issuer {params.get('iss')!r}, not {login.issuer!r} "
                                     "where the login started", error="invalid_request")
        code = params.get("code")
        if not code:
            raise OAuthCallbackError("the OAuth callback has no code", error="invalid_request")
        server = await c.server.metadata(login.issuer)
        key = key_from_json(c.box.open(login.dpop_key))
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
                "code_verifier": c.box.open(login.pkce_verifier)}
        try:
            tokens = await c.server.post(server, server.token_endpoint, form, key)
        except OAuthError as exc:
            raise OAuthCallbackError(f"the code was not accepted (used already, or expired?): {exc}",
                                     error=exc.error, status_code=exc.status_code) from exc
        try:
            session = await self._check_tokens(tokens, login.did, login.handle, server, key)
        except PyskyError:
            await self._revoke(server, key, tokens.get("refresh_token") or tokens.get("access_token"))
            raise
        await c.sessions.save(session)
        _restrict_sqlite_file(self._store)
        return OAuthLogin(session, login.app_state)

    async def _check_tokens(self, tokens: dict[str, Any], expected_did: str | None, handle: str | None,
                            server: AuthServer, key: Any) -> OAuthSession:
        sub = tokens.get("sub")
        if not isinstance(sub, str) or not sub.startswith("did:"):
            raise OAuthCallbackError(f"the token response names no user DID (sub={sub!r})", error="invalid_grant")
        if expected_did and sub != expected_did:
            raise OAuthCallbackError(f"the user logged in as {sub}, not {expected_did} who started the login",
                                     error="invalid_grant")
        if tokens.get("token_type") != "DPoP" or not isinstance(tokens.get("access_token"), str):
            raise OAuthCallbackError("the token response has no DPoP access token", error="invalid_grant")
        scope = str(tokens.get("scope") or "")
        if "atproto" not in scope.split():
            raise OAuthCallbackError(f"the granted scope {scope!r} lacks 'atproto'", error="invalid_scope")
        # the issuer check: the DID must name a PDS whose authorization server is this issuer
        document = await self._identity.resolve_did(sub)
        pds = pds_endpoint_from_did_doc(document)
        if pds is None:
            raise OAuthCallbackError(f"the DID document of {sub} names no PDS", error="invalid_grant")
        issuer = await self._c.server.issuer_of(pds)
        if issuer != server.issuer:
            raise OAuthCallbackError(f"{sub}'s PDS {pds} is served by {issuer}, not by {server.issuer} who "
                                     "issued the tokens: refusing them", error="invalid_grant")
        if handle is None:
            handle = await self._identity.handle_of(sub)
        refresh = tokens.get("refresh_token")
        return OAuthSession(did=sub, handle=handle, pds_endpoint=pds, issuer=server.issuer, scope=scope,
                            access_token=tokens["access_token"], refresh_token=refresh if isinstance(refresh, str)
                            else None, dpop_key=key, expires_at=expires_at(tokens))

    async def _resolve(self, identifier: str) -> tuple[str | None, str | None, str | None]:
        """(did, handle, pds) of a handle or DID; (None, None, None) for a service URL."""
        identifier = identifier.strip().lstrip("@")
        if identifier.startswith(("https://", "http://")):
            return None, None, None
        if identifier.startswith("did:"):
            did, handle = str(Did(identifier)), None
        else:
            handle = str(Handle(identifier)).lower()
            did = await self._identity.resolve_handle(handle)
        document = await self._identity.resolve_did(did)
        if handle is not None and f"at://{handle}" not in [str(a).lower() for a in document.get("alsoKnownAs") or []]:
            raise IdentityNotFound(f"{handle} resolves to {did}, whose DID document does not claim that handle",
                                   identifier=handle, reason="handle_mismatch")
        pds = pds_endpoint_from_did_doc(document)
        if pds is None:
            raise IdentityNotFound(f"the DID document of {did} names no PDS", identifier=did, reason="no_pds")
        return did, handle, pds

    async def _issuer_of_service(self, url: str) -> str:
        """A PDS URL (its authorization server) or an authorization server URL itself."""
        url = url.rstrip("/")
        try:
            return await self._c.server.issuer_of(url)
        except OAuthError:
            return (await self._c.server.metadata(url)).issuer

    # -- users ---------------------------------------------------------------------------

    async def session(self, did: str) -> OAuthSession:
        """The stored session of a user (NotAuthenticated if there is none)."""
        return await self._c.sessions.load(did)

    async def client_for(self, did: str) -> AsyncBskyClient:
        """An ``AsyncBskyClient`` acting as this user: it shares this client's HTTP pool, store
        and call log; its calls go to the user's PDS with DPoP (refreshing when needed)."""
        c = self._c
        await c.sessions.load(did)
        account = OAuthAccount(c.sessions, did, self.logout)
        await account.current_oauth()
        return self._make_client(account, DpopMiddleware(account, self.nonces, c.appview))

    async def logout(self, did: str) -> None:
        """Revoke the user's tokens at their authorization server and forget the session."""
        c = self._c
        session = await c.sessions.remove(did)
        if session is None:
            return
        try:
            server = await c.server.metadata(session.issuer)
        except (OAuthError, NetworkError):
            return
        await self._revoke(server, session.dpop_key, session.refresh_token or session.access_token)

    async def _revoke(self, server: AuthServer, key: Any, token: Any) -> None:
        if server.revocation_endpoint is None or not isinstance(token, str):
            return
        try:
            await self._c.server.post(server, server.revocation_endpoint, {"token": token}, key)
        except (OAuthError, NetworkError):
            pass  # revocation is best effort: the session is already forgotten here


def _restrict_sqlite_file(store: Store) -> None:
    """Tokens live in the database: keep an SQLite file readable by its owner only."""
    if store.dialect != "sqlite":
        return
    path = store.engine.url.database
    if path and path != ":memory:" and os.path.exists(path):
        os.chmod(path, 0o600)
