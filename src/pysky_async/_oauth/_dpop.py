"""DPoP (RFC 9449): one ES256 key per session, a fresh proof per request, server nonces.

Proofs are signed with joserfc (no hand-written crypto). A proof carries ``htm``/``htu``,
a fresh ``jti``, ``iat``, the server's latest nonce and, on resource requests, ``ath``
(the SHA-256 of the access token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import ECKey

DPOP_NONCE_HEADER = "DPoP-Nonce"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def generate_key() -> ECKey:
    """A new P-256 key (ES256) for one session."""
    return ECKey.generate_key("P-256", private=True)


def key_to_json(key: ECKey) -> str:
    """The private JWK as JSON (stored, encrypted when the app gives a key; never logged)."""
    return json.dumps(key.as_dict(private=True), sort_keys=True)


def key_from_json(data: str) -> ECKey:
    return ECKey.import_key(json.loads(data))


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(access token))."""
    return b64url(hashlib.sha256(access_token.encode()).digest())


def htu(url: str) -> str:
    """The URL a proof is bound to: no query, no fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def make_proof(key: ECKey, method: str, url: str, *, nonce: str | None = None,
               access_token: str | None = None) -> str:
    """A DPoP proof JWT for one request."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    claims: dict[str, object] = {"jti": secrets.token_urlsafe(16), "htm": method.upper(), "htu": htu(url),
                                 "iat": int(time.time())}
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    return jwt.encode(header, claims, key, algorithms=["ES256"])


class NonceCache:
    """The latest DPoP nonce each server (origin) sent; nonces rotate, so every response's
    ``DPoP-Nonce`` header replaces the one kept."""

    def __init__(self) -> None:
        self._nonces: dict[str, str] = {}

    def get(self, url: str) -> str | None:
        return self._nonces.get(origin(url))

    def seed(self, url: str, nonce: str | None) -> None:
        """Use ``nonce`` (stored by another worker) for ``url``'s server if none is known here."""
        if nonce:
            self._nonces.setdefault(origin(url), nonce)

    def update(self, url: str, nonce: str | None) -> bool:
        """Remember ``nonce`` for ``url``'s server; True when it changed."""
        if not nonce:
            return False
        key = origin(url)
        changed = self._nonces.get(key) != nonce
        self._nonces[key] = nonce
        return changed
