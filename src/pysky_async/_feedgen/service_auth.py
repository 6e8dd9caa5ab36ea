"""Verify the service-auth JWTs other atproto services send (the AppView to a feed generator).

What ``verifyJwt`` of ``@atproto/xrpc-server`` (auth.ts) checks, with the same XRPC error names:
the header's ``typ`` is not an access, refresh or DPoP token type (``BadJwtType``); ``exp`` has
not passed (``JwtExpired``; ``leeway`` seconds of clock skew allowed, the reference allows none);
``aud`` is this service's DID, exactly (``BadJwtAudience``); ``lxm`` is the method called, and a
token without ``lxm`` is refused when one is asked for, as the reference does
(``BadJwtLexiconMethod``); ``iss`` is a DID, optionally with a service fragment (``BadJwtIss``);
the signature is the issuer's ``#atproto`` key (``#atproto_label`` for an ``#atproto_labeler``
issuer) from its DID document, re-resolved once on a mismatch because the key may have rotated
(``BadJwtSignature``). Beyond the reference: an ``iat`` more than ``leeway`` seconds in the
future is refused (``BadJwt``), and the signature must be the JWS form (64 bytes ``r || s``;
high-S is accepted, as the reference's ``allowMalleableSig`` does for JWTs, DER is not).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .._exceptions import IdentityNotFound, InvalidIdentifier, ServiceAuthError, VerificationError
from .._sync.crypto import CheckSignature, parse_verification_method, signature_checker
from .._syntax import Did
from .._ttl_cache import TtlCache

GET_FEED_SKELETON = "app.bsky.feed.getFeedSkeleton"
_CURVE_OF_ALG = {"ES256K": "secp256k1", "ES256": "secp256r1"}
_REFUSED_TYPES = ("at+jwt", "refresh+jwt", "dpop+jwt")
_ORDERS = {"secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
           "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551}


class DidDocuments(Protocol):
    """Where DID documents come from: ``bsky.identity`` (an ``IdentityResolver``) fits."""

    async def resolve_did(self, did: str, *, fresh: bool = False) -> Mapping[str, Any]:
        """The DID document of ``did``; ``fresh=True`` bypasses any cache."""
        ...


def _b64json(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error):
        return None


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; ServiceAuthError without one."""
    if not authorization:
        raise ServiceAuthError("no Authorization header: this method needs a service-auth token "
                               "(Authorization: Bearer <jwt>)")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ServiceAuthError("the Authorization header must be 'Bearer <jwt>' (a service-auth token)")
    return token.strip()


class ServiceAuthVerifier:
    """Checks incoming service-auth tokens addressed to ``service_did``.

    Args:
        identity: resolves issuers' DID documents (``bsky.identity``).
        service_did: this service's DID; a token's ``aud`` must equal it.
        lxm: the method a token must be scoped to, unless ``verify`` is given another (None: no check).
        leeway: seconds of clock skew allowed on ``exp`` and ``iat`` (default 10).
        key_ttl: seconds an issuer's key is kept (default 300).
        refresh_interval: an issuer's DID document is fetched again on a bad signature at most
            once per this many seconds (default 30), so forged tokens cannot hammer the PLC directory.
        clock: the wall clock (``time.time``) for ``exp`` and ``iat``.

    ``await verifier.verify(request.headers.get("authorization"))`` returns the issuer (the
    requesting account's DID) or raises ``ServiceAuthError`` (``.error`` is the XRPC error name).
    """

    def __init__(self, identity: DidDocuments, *, service_did: str, lxm: str | None = GET_FEED_SKELETON,
                 leeway: float = 10.0, key_ttl: float = 300.0, refresh_interval: float = 30.0,
                 max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.identity = identity
        self.service_did = str(Did(service_did))
        self.lxm = lxm
        self.leeway = leeway
        self.clock = clock
        self._keys: TtlCache[str, _Key] = TtlCache(ttl=key_ttl, max_entries=max_entries)
        self._refreshed: TtlCache[str, bool] = TtlCache(ttl=refresh_interval, max_entries=max_entries)
        self.key_refreshes = 0
        """How many times a bad signature made the verifier fetch an issuer's DID document again."""

    def __repr__(self) -> str:
        return f"ServiceAuthVerifier(service_did={self.service_did!r}, lxm={self.lxm!r})"

    async def verify(self, authorization: str | None, *, lxm: str | None = None) -> str:
        """The issuer DID of a valid token in ``authorization`` (the whole ``Bearer ...`` header).

        ``lxm``: the method called (default: the verifier's ``lxm``). Raises ServiceAuthError.
        """
        return await self.verify_token(bearer_token(authorization), lxm=lxm)

    async def verify_token(self, token: str, *, lxm: str | None = None) -> str:
        """Like ``verify``, for the bare JWT."""
        parts = token.split(".")
        if len(parts) != 3:
            raise ServiceAuthError("poorly formatted jwt: expected header.payload.signature", error="BadJwt")
        header, payload = _b64json(parts[0]), _b64json(parts[1])
        if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
            raise ServiceAuthError("poorly formatted jwt: the header is not JSON with an alg", error="BadJwt")
        if header.get("typ") in _REFUSED_TYPES:
            raise ServiceAuthError(f'invalid jwt type "{header["typ"]}": service auth needs a service-auth token, '
                                   "not an access, refresh or DPoP token", error="BadJwtType")
        iss, exp = self._claims(payload)
        now = self.clock()
        if now > exp + self.leeway:
            raise ServiceAuthError(f"jwt expired {now - exp:.0f} s ago: ask the issuer for a new token",
                                   error="JwtExpired")
        iat = payload.get("iat")
        if isinstance(iat, (int, float)) and not isinstance(iat, bool) and iat > now + self.leeway:
            raise ServiceAuthError(f"jwt issued {iat - now:.0f} s in the future (iat): check the issuer's clock",
                                   error="BadJwt")
        if payload["aud"] != self.service_did:
            raise ServiceAuthError(f"jwt audience {payload['aud']!r} does not match this service's DID "
                                   f"{self.service_did!r}", error="BadJwtAudience")
        wanted = lxm if lxm is not None else self.lxm
        if wanted is not None and payload.get("lxm") != wanted:
            problem = "missing jwt lexicon method (lxm)" if payload.get("lxm") is None else \
                f"bad jwt lexicon method (lxm) {payload['lxm']!r}"
            raise ServiceAuthError(f"{problem}: must match {wanted}", error="BadJwtLexiconMethod")
        await self._check_signature(iss, str(header["alg"]), parts)
        return iss

    def _claims(self, payload: Any) -> tuple[str, float]:
        if not (isinstance(payload, dict) and isinstance(payload.get("iss"), str)
                and isinstance(payload.get("aud"), str) and isinstance(payload.get("exp"), (int, float))
                and not isinstance(payload.get("exp"), bool)
                and (payload.get("lxm") is None or isinstance(payload.get("lxm"), str))):
            raise ServiceAuthError("poorly formatted jwt: the payload needs iss, aud (strings) and exp (a number)",
                                   error="BadJwt")
        iss = str(payload["iss"])
        did, _, fragment = iss.partition("#")
        try:
            Did(did)
        except InvalidIdentifier:
            raise ServiceAuthError(f"jwt iss {iss!r} is not a valid DID", error="BadJwtIss") from None
        if "#" in iss and (not fragment or "#" in fragment):
            raise ServiceAuthError(f"jwt iss {iss!r} is not a valid DID", error="BadJwtIss")
        return iss, float(payload["exp"])

    async def _check_signature(self, iss: str, alg: str, parts: list[str]) -> None:
        curve = _CURVE_OF_ALG.get(alg)
        if curve is None:
            raise ServiceAuthError(f"could not verify jwt signature: alg {alg!r} is not ES256K or ES256",
                                   error="BadJwtSignature")
        try:
            signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        except (ValueError, binascii.Error):
            signature = b""
        if len(signature) != 64:
            raise ServiceAuthError("could not verify jwt signature: not a 64-byte r||s signature",
                                   error="BadJwtSignature")
        data = f"{parts[0]}.{parts[1]}".encode()
        key = await self._key(iss, fresh=False)
        if _verifies(key, curve, data, signature):
            return
        if self._refreshed.get(iss) is None:  # the key may have rotated: look once more
            self._refreshed.put(iss, True)
            self.key_refreshes += 1
            fresh = await self._key(iss, fresh=True)
            if _verifies(fresh, curve, data, signature):
                return
        raise ServiceAuthError(f"jwt signature does not match the signing key of {iss}", error="BadJwtSignature")

    async def _key(self, iss: str, *, fresh: bool) -> _Key:
        if not fresh:
            return await self._keys.get_or_load(iss, lambda: self._load_key(iss, fresh=False))
        key = await self._load_key(iss, fresh=True)
        self._keys.put(iss, key)
        return key

    async def _load_key(self, iss: str, *, fresh: bool) -> _Key:
        did, _, service = iss.partition("#")
        key_id = "#atproto_label" if service == "atproto_labeler" else "#atproto"
        try:
            document = await self.identity.resolve_did(did, fresh=fresh)
        except IdentityNotFound as exc:
            raise ServiceAuthError(f"could not resolve the jwt issuer {did}: {exc}", error="BadJwtIss") from exc
        for method in document.get("verificationMethod") or []:
            if (isinstance(method, dict) and str(method.get("id", "")).endswith(key_id)
                    and method.get("publicKeyMultibase")):
                try:
                    key = parse_verification_method(method.get("type"), str(method["publicKeyMultibase"]))
                    return _Key(key.curve.name, signature_checker(key))
                except VerificationError as exc:
                    raise ServiceAuthError(f"the {key_id} key in the DID document of {did} is unusable: {exc}",
                                           error="BadJwtSignature") from exc
        raise ServiceAuthError(f"the DID document of {did} has no {key_id} signing key", error="BadJwtSignature")


class _Key:
    """An issuer's public key: its curve and a ``check(data, signature)`` (libsecp256k1 when installed)."""

    __slots__ = ("check", "curve")

    def __init__(self, curve: str, check: CheckSignature) -> None:
        self.curve = curve
        self.check = check


def _verifies(key: _Key, curve: str, data: bytes, signature: bytes) -> bool:
    """ECDSA-SHA256 over ``data``; the key's curve must be the one the JWT's ``alg`` names. A high-S
    signature is checked as its low-S twin (the same signature to ECDSA): JWTs allow both."""
    if key.curve != curve:
        return False
    order = _ORDERS[curve]
    s = int.from_bytes(signature[32:], "big")
    if order // 2 < s < order:
        signature = signature[:32] + (order - s).to_bytes(32, "big")
    return key.check(data, signature)
