"""Optional commit signature checks: the commit block's ``sig`` against the repo's ``#atproto`` key.

Uses ``cryptography`` (a dependency of pysky_async). Keys come from the DID document
through the resolver you pass (e.g. ``bsky.identity.resolve_did``) and are cached; a signature
that does not verify re-resolves the key once (it may have been rotated) before it counts as bad.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import libipld

from .._exceptions import StreamError
from .events import CommitEvent

logger = logging.getLogger("pysky_async.streams")
ResolveDid = Callable[[str], Awaitable[dict[str, Any]]]

_SECP256K1 = b"\xe7\x01"
_P256 = b"\x80\x24"


def signing_key(document: dict[str, Any]) -> Any:
    """The ``#atproto`` verification key of a DID document, as a ``cryptography`` public key.

    Both encodings in use: ``Multikey`` (multicodec-prefixed compressed point) and the legacy
    ``EcdsaSecp256k1VerificationKey2019`` / ``EcdsaSecp256r1VerificationKey2019`` (bare point).
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    for method in document.get("verificationMethod") or []:
        if str(method.get("id", "")).endswith("#atproto") and method.get("publicKeyMultibase"):
            _base, raw = libipld.decode_multibase(method["publicKeyMultibase"])
            kind = method.get("type")
            curve: ec.EllipticCurve
            if kind == "EcdsaSecp256k1VerificationKey2019" or raw[:2] == _SECP256K1:
                curve = ec.SECP256K1()
            elif kind == "EcdsaSecp256r1VerificationKey2019" or raw[:2] == _P256:
                curve = ec.SECP256R1()
            else:
                raise StreamError(f"{document.get('id')}: unknown #atproto key ({kind}, {raw[:2].hex()})")
            point = raw[2:] if kind == "Multikey" else raw
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    raise StreamError(f"{document.get('id')}: the DID document has no #atproto signing key")


def _valid(key: Any, commit: dict[str, Any]) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    sig = commit.get("sig")
    if not isinstance(sig, bytes) or len(sig) != 64:
        return False
    unsigned = libipld.encode_dag_cbor({k: v for k, v in commit.items() if k != "sig"})
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, unsigned, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class SignatureVerifier:
    """Checks ``CommitEvent.signed_commit`` against the repo's key (pass it to ``StreamConsumer``).

    Args:
        resolve_did: returns a DID document (``bsky.identity.resolve_did``).
        policy: ``"drop"`` (the handler never sees a commit that fails) or ``"pass"`` (it does;
            failures are still counted and logged).
    """

    def __init__(self, resolve_did: ResolveDid, *, policy: Literal["drop", "pass"] = "drop") -> None:
        if policy not in ("drop", "pass"):
            raise StreamError(f"policy must be 'drop' or 'pass', not {policy!r}")
        self.resolve_did = resolve_did
        self.policy = policy
        self.verified = 0
        self.failed = 0
        self.key_refreshes = 0
        self._keys: dict[str, Any] = {}

    async def _key(self, did: str, *, fresh: bool = False) -> Any:
        if fresh or did not in self._keys:
            self._keys[did] = signing_key(await self.resolve_did(did))
        return self._keys[did]

    async def check(self, event: CommitEvent) -> bool:
        """True if the commit is signed by its repo's key (failures are counted and logged)."""
        commit = event.signed_commit
        ok = False
        try:
            if commit is not None and commit.get("did") == event.did:
                ok = _valid(await self._key(event.did), commit)
                if not ok:
                    self.key_refreshes += 1
                    ok = _valid(await self._key(event.did, fresh=True), commit)
        except Exception as exc:  # an unresolvable DID or a bad key fails this commit, not the stream
            logger.warning("stream: cannot check the signature of %s at %s: %s", event.did, event.cursor, exc)
        if ok:
            self.verified += 1
        else:
            self.failed += 1
            logger.warning("stream: commit of %s at cursor %s failed signature verification (%s)",
                           event.did, event.cursor, "dropped" if self.policy == "drop" else "passed on")
        return ok
