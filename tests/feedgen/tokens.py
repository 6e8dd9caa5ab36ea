"""Service-auth JWTs made here with keys generated here, and an in-memory DID directory."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import IdentityNotFound

from ..streams.repo_builder import did_document, sign

SERVICE_DID = "did:web:feeds.example.com"
LXM = "app.bsky.feed.getFeedSkeleton"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(key: ec.EllipticCurvePrivateKey, *, iss: str, aud: str = SERVICE_DID, lxm: str | None = LXM,
             exp: float | None = None, iat: float | None = None, alg: str | None = None,
             header: Mapping[str, Any] | None = None, high_s: bool = False, **extra: Any) -> str:
    """A JWT as @atproto/xrpc-server's createServiceJwt makes it (compact low-S r||s signature)."""
    now = time.time()
    alg = alg or ("ES256K" if key.curve.name == "secp256k1" else "ES256")
    head = {"typ": "JWT", "alg": alg, **(header or {})}
    payload: dict[str, Any] = {"iat": int(now) if iat is None else iat, "iss": iss, "aud": aud,
                               "exp": int(now) + 60 if exp is None else exp, "jti": "abc123", **extra}
    if lxm is not None:
        payload["lxm"] = lxm
    signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(key, signing_input.encode(), high_s=high_s))}"


class Directory:
    """DID documents by DID; counts fetches (``fresh`` or not)."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.fetches: list[tuple[str, bool]] = []

    def add(self, did: str, key: ec.EllipticCurvePrivateKey) -> None:
        self.documents[did] = did_document(did, key)

    @staticmethod
    def _multikey(key: ec.EllipticCurvePrivateKey) -> str:
        return str(did_document("did:plc:x", key)["verificationMethod"][0]["publicKeyMultibase"])

    async def resolve_did(self, did: str, *, fresh: bool = False) -> Mapping[str, Any]:
        self.fetches.append((did, fresh))
        if did not in self.documents:
            raise IdentityNotFound(f"{did} is not in the test directory", identifier=did, reason="not_found")
        return self.documents[did]
