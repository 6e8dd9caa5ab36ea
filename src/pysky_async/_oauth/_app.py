"""The app's side of OAuth: its client metadata (``client-metadata.json``), its keys
(``jwks.json``) and how it authenticates to the token endpoint."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey

from .._exceptions import InvalidInput

DEFAULT_SCOPE = "atproto transition:generic"
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class OAuthApp:
    """Who your service is to the users' authorization servers.

    Use ``OAuthApp.loopback(...)`` during development (a public client with no metadata to
    host), and for production a ``client_id`` that is the HTTPS URL where you serve
    ``metadata()`` (``client-metadata.json``); pass ``keys`` (ES256 private JWKs) to be a
    confidential client (``private_key_jwt``, sessions last up to 180 days) and serve
    ``jwks()`` at ``jwks_uri``.

    Args:
        client_id: the URL of the client metadata document (or the loopback client id).
        redirect_uris: where users come back to; the first is the default.
        scope: space-separated scopes; must contain ``atproto``.
        client_name / client_uri: shown on the consent page.
        keys: private ES256 JWKs (dicts with a ``kid``) for ``private_key_jwt``.
        jwks_uri: where ``jwks()`` is served (confidential clients).
    """

    client_id: str
    redirect_uris: tuple[str, ...]
    scope: str = DEFAULT_SCOPE
    client_name: str | None = None
    client_uri: str | None = None
    keys: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    jwks_uri: str | None = None

    def __post_init__(self) -> None:
        if "atproto" not in self.scope.split():
            raise InvalidInput(f"the OAuth scope must contain 'atproto'; got {self.scope!r}")
        if not self.redirect_uris:
            raise InvalidInput("an OAuthApp needs at least one redirect URI")
        for key in self.keys:
            if key.get("kty") != "EC" or key.get("crv") != "P-256" or "d" not in key or not key.get("kid"):
                raise InvalidInput("OAuthApp keys must be private ES256 (EC P-256) JWKs with a 'kid'; "
                                   "make one with OAuthApp.generate_key(kid)")
        if self.keys and not self.jwks_uri:
            raise InvalidInput("a confidential OAuthApp (keys=) needs jwks_uri, where jwks() is served")

    @classmethod
    def loopback(cls, redirect_uri: str, scope: str = DEFAULT_SCOPE) -> OAuthApp:
        """A development client (``client_id`` ``http://localhost?...``): public, no metadata
        to serve; ``redirect_uri`` must be ``http://127.0.0.1:<port>/...`` or ``http://[::1]...``."""
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.netloc.rsplit(":", 1)[0] not in LOOPBACK_HOSTS:
            raise InvalidInput(f"a loopback client's redirect URI must be http://127.0.0.1:<port>/... or "
                               f"http://[::1]:<port>/...; got {redirect_uri!r}")
        client_id = "http://localhost?" + urlencode({"redirect_uri": redirect_uri, "scope": scope})
        return cls(client_id=client_id, redirect_uris=(redirect_uri,), scope=scope)

    @staticmethod
    def generate_key(kid: str) -> dict[str, Any]:
        """A new private ES256 JWK for ``keys=`` (store it as a secret)."""
        key = ECKey.generate_key("P-256", private=True)
        return {**key.as_dict(private=True), "kid": kid}

    @property
    def is_loopback(self) -> bool:
        """A development client: plain http to loopback servers is allowed."""
        return self.client_id.startswith("http://localhost")

    @property
    def is_confidential(self) -> bool:
        return bool(self.keys)

    def metadata(self) -> dict[str, Any]:
        """The client metadata document to serve at ``client_id``."""
        data: dict[str, Any] = {
            "client_id": self.client_id,
            "application_type": "web",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "redirect_uris": list(self.redirect_uris),
            "scope": self.scope,
            "dpop_bound_access_tokens": True,
            "token_endpoint_auth_method": "private_key_jwt" if self.is_confidential else "none",
        }
        if self.is_confidential:
            data["token_endpoint_auth_signing_alg"] = "ES256"
            data["jwks_uri"] = self.jwks_uri
        if self.client_name:
            data["client_name"] = self.client_name
        if self.client_uri:
            data["client_uri"] = self.client_uri
        return data

    def jwks(self) -> dict[str, Any]:
        """The public keys (``jwks.json``)."""
        public = []
        for key in self.keys:
            jwk = ECKey.import_key(dict(key)).as_dict(private=False)
            public.append({**jwk, "kid": key["kid"], "use": "sig", "alg": "ES256"})
        return {"keys": public}

    def redirect_uri(self, redirect_uri: str | None) -> str:
        if redirect_uri is None:
            return self.redirect_uris[0]
        if redirect_uri not in self.redirect_uris:
            raise InvalidInput(f"{redirect_uri!r} is not one of the app's redirect_uris")
        return redirect_uri

    def client_auth(self, issuer: str) -> dict[str, str]:
        """The token-endpoint client authentication fields (``client_id`` and, for a
        confidential client, a fresh ES256 ``client_assertion`` with ``aud`` = issuer)."""
        fields = {"client_id": self.client_id}
        if self.is_confidential:
            key_data = self.keys[0]
            now = int(time.time())
            claims = {"iss": self.client_id, "sub": self.client_id, "aud": issuer,
                      "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 60}
            assertion = jwt.encode({"alg": "ES256", "kid": key_data["kid"]}, claims,
                                   ECKey.import_key(dict(key_data)), algorithms=["ES256"])
            fields.update(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion)
        return fields


def scopes(scope: str) -> Sequence[str]:
    return scope.split()
