"""The authorization server: discovery (protected resource → authorization server metadata,
validated), and its endpoints (PAR, token, revocation) called with DPoP and the one-retry
nonce rule. Fetches are hardened: HTTPS only (loopback http for development clients), no
redirects, small bodies. Every call rides the client's pipeline (call log, bounds, deadline,
retry rules) like any other, skipping the account's middlewares as a login does; the call
log keeps no form body and no header, so no token, verifier, assertion or proof lands there."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc.jwk import ECKey

from .._exceptions import OAuthError, ResponseTooLarge
from .._middleware import SESSION_OWN, Handler
from .._request import XrpcRequest
from .._response import XrpcResponse
from ._app import OAuthApp
from ._dpop import DPOP_NONCE_HEADER, NonceCache, make_proof, origin

MAX_METADATA_BYTES = 64_000
METADATA_TTL = 300.0
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


@dataclass(frozen=True)
class AuthServer:
    """Validated authorization server metadata (the fields the client uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    par_endpoint: str
    revocation_endpoint: str | None

    @classmethod
    def from_metadata(cls, data: Any, issuer: str) -> AuthServer:
        """Check the metadata against the atproto OAuth profile; raise OAuthError if it falls short."""
        if not isinstance(data, dict):
            raise OAuthError(f"{issuer}: the authorization server metadata is not a JSON object")
        problems = []
        if data.get("issuer") != issuer:
            problems.append(f"issuer is {data.get('issuer')!r}, not {issuer!r}")
        for name in ("authorization_endpoint", "token_endpoint", "pushed_authorization_request_endpoint"):
            if not isinstance(data.get(name), str):
                problems.append(f"{name} is missing")
        checks = {"response_types_supported": "code", "grant_types_supported": "authorization_code",
                  "code_challenge_methods_supported": "S256", "dpop_signing_alg_values_supported": "ES256",
                  "scopes_supported": "atproto"}
        for name, needed in checks.items():
            if needed not in (data.get(name) or []):
                problems.append(f"{name} lacks {needed!r}")
        if data.get("client_id_metadata_document_supported") is not True:
            problems.append("client_id_metadata_document_supported is not true")
        if problems:
            raise OAuthError(f"{issuer} is no atproto OAuth authorization server: " + "; ".join(problems))
        revocation = data.get("revocation_endpoint")
        return cls(issuer=issuer, authorization_endpoint=data["authorization_endpoint"],
                   token_endpoint=data["token_endpoint"], par_endpoint=data["pushed_authorization_request_endpoint"],
                   revocation_endpoint=revocation if isinstance(revocation, str) else None)


class AuthServerClient:
    """Discovery and the authorization server's endpoints for one app.

    Args:
        send: the client's pipeline.
        app: the app (client id, client authentication).
        nonces: DPoP nonces per server (shared with the resource middleware).
        allow_http_loopback: allow plain http to localhost (development servers).
    """

    def __init__(self, send: Handler, app: OAuthApp, nonces: NonceCache, *,
                 allow_http_loopback: bool) -> None:
        self.send = send
        self.app = app
        self.nonces = nonces
        self.allow_http_loopback = allow_http_loopback
        self._metadata: dict[str, tuple[float, AuthServer]] = {}

    def check_url(self, url: str) -> str:
        """Refuse URLs a metadata fetch must not follow (SSRF): only HTTPS, plus plain http to
        loopback hosts for development (``allow_http_loopback``)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "https" and host:
            return url
        if parts.scheme == "http" and self.allow_http_loopback and host in LOOPBACK_NAMES:
            return url
        raise OAuthError(f"refusing to fetch OAuth metadata from {url!r}: only https URLs "
                         "(plain http to localhost only for development: an OAuthApp.loopback app, or "
                         "configure(allow_http_loopback=True))")

    async def _get_json(self, url: str, name: str) -> Any:
        self.check_url(url)
        request = _request("GET", url, name, headers={"accept": "application/json"})
        request.context.max_response_bytes = MAX_METADATA_BYTES
        try:
            response = await self.send(request)
        except ResponseTooLarge as exc:
            raise OAuthError(f"GET {url}: the metadata is larger than {MAX_METADATA_BYTES} bytes") from exc
        if response.status_code != 200:
            raise OAuthError(f"GET {url} answered HTTP {response.status_code}", status_code=response.status_code)
        if len(response.content) > MAX_METADATA_BYTES:
            raise OAuthError(f"GET {url}: the metadata is larger than {MAX_METADATA_BYTES} bytes")
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise OAuthError(f"GET {url} did not return JSON") from exc

    async def issuer_of(self, pds_endpoint: str) -> str:
        """The authorization server of a PDS (``/.well-known/oauth-protected-resource``)."""
        pds = origin(pds_endpoint)
        data = await self._get_json(f"{pds}/.well-known/oauth-protected-resource", "oauth.protectedResource")
        servers = data.get("authorization_servers") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("resource") != pds:
            raise OAuthError(f"{pds}'s protected resource metadata names another resource: "
                             f"{data.get('resource') if isinstance(data, dict) else data!r}")
        if not isinstance(servers, list) or len(servers) != 1 or not isinstance(servers[0], str):
            raise OAuthError(f"{pds} must name exactly one authorization server; it names {servers!r}")
        return servers[0]

    async def metadata(self, issuer: str) -> AuthServer:
        """The validated metadata of ``issuer`` (cached for a few minutes)."""
        cached = self._metadata.get(issuer)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        data = await self._get_json(f"{issuer.rstrip('/')}/.well-known/oauth-authorization-server",
                                    "oauth.authorizationServer")
        server = AuthServer.from_metadata(data, issuer)
        self._metadata[issuer] = (time.monotonic() + METADATA_TTL, server)
        return server

    async def post(self, server: AuthServer, url: str, form: Mapping[str, str], key: ECKey) -> dict[str, Any]:
        """POST a form to one of ``server``'s endpoints with client authentication and a DPoP
        proof; when the server asks for a (new) nonce, retry once with it."""
        self.check_url(url)
        body = urlencode({**form, **self.app.client_auth(server.issuer)}).encode()
        name = _ENDPOINT_NAMES.get(url.rsplit("/", 1)[-1], "oauth.request")
        for attempt in (1, 2):
            proof = make_proof(key, "POST", url, nonce=self.nonces.get(url))
            response = await self.send(_request("POST", url, name, content=body, headers={
                "DPoP": proof, "accept": "application/json", "content-type": "application/x-www-form-urlencoded"}))
            changed = self.nonces.update(url, response.http.headers.get(DPOP_NONCE_HEADER))
            data = _json_object(response)
            if response.status_code < 300:
                return data
            error = data.get("error")
            if attempt == 1 and error == "use_dpop_nonce" and changed:
                continue
            description = data.get("error_description")
            raise OAuthError(f"POST {url} answered HTTP {response.status_code} {error or ''}"
                             f"{': ' + str(description) if description else ''}".rstrip(),
                             error=error if isinstance(error, str) else None, status_code=response.status_code)
        raise AssertionError("unreachable")


_ENDPOINT_NAMES = {"par": "oauth.par", "token": "oauth.token", "revoke": "oauth.revoke"}
"""How the call log names the authorization server's endpoints (by the last part of their path)."""


def _request(method: str, url: str, name: str, **fields: Any) -> XrpcRequest:
    """A call to the authorization server through the pipeline: outside the account's middlewares
    (and the caller's own, like a login), its error rows written behind it."""
    parts = urlsplit(url)
    request = XrpcRequest(method, name, f"{parts.scheme}://{parts.netloc}", path=parts.path or "/",
                          params=dict(parse_qsl(parts.query)), skip=SESSION_OWN, **fields)
    request.context.log_errors_at_once = False
    return request


def _json_object(response: XrpcResponse) -> dict[str, Any]:
    try:
        data = json.loads(response.content) if response.content else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}
