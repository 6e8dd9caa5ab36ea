"""atproto signatures: ECDSA over SHA-256 on P-256 or secp256k1, compact ``r || s``, low-S only.

The rules of the atproto cryptography spec (and its ``signature-fixtures.json``): a signature is
the 64-byte concatenation of ``r`` and ``s``; DER encodings and high-S signatures (``s > n/2``,
the malleable twin of a valid one) are invalid. Keys travel as ``did:key`` or ``Multikey``
strings (multibase base58btc of a multicodec-prefixed compressed point) or, in older DID
documents, as bare points under ``EcdsaSecp256k1VerificationKey2019`` /
``EcdsaSecp256r1VerificationKey2019``. ``cryptography`` does the curve arithmetic, except that
secp256k1 signatures (most repos' keys) go to libsecp256k1 through ``coincurve`` when the
``fast-verify`` extra is installed: OpenSSL's generic secp256k1 is ~10× slower
(benchmarks/bench_verify.py).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any, Literal

import libipld
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .._exceptions import MissingDependency, VerificationError

PublicKey = ec.EllipticCurvePublicKey

_SECP256K1_PREFIX = b"\xe7\x01"  # multicodec secp256k1-pub
_P256_PREFIX = b"\x80\x24"  # multicodec p256-pub
_ORDER = {
    "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}
_LEGACY_CURVES: dict[str, ec.EllipticCurve] = {
    "EcdsaSecp256k1VerificationKey2019": ec.SECP256K1(),
    "EcdsaSecp256r1VerificationKey2019": ec.SECP256R1(),
}
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
Backend = Literal["auto", "cryptography", "coincurve"]
CheckSignature = Callable[[bytes, bytes], bool]
"""``check(data, signature) -> bool`` for one key (see ``signature_checker``)."""


def _load_coincurve() -> Any:
    try:
        return importlib.import_module("coincurve")
    except ImportError:
        return None


_COINCURVE: Any = _load_coincurve()


def _load_libsecp256k1() -> Any:
    """coincurve's compiled libsecp256k1 binding (``ffi``, ``lib``), to verify a compact signature
    without the DER round trip ``PublicKey.verify`` needs; None if this coincurve has no such module."""
    if _COINCURVE is None:
        return None
    try:
        binding = importlib.import_module("coincurve._libsecp256k1")
    except ImportError:
        return None
    if not all(hasattr(binding.lib, name) for name in ("secp256k1_ecdsa_signature_parse_compact",
                                                       "secp256k1_ecdsa_verify")):
        return None
    return binding


_LIBSECP256K1: Any = _load_libsecp256k1()


def _point(curve: ec.EllipticCurve, point: bytes, what: str) -> PublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as exc:
        raise VerificationError(f"{what}: not a point on {curve.name}") from exc


def parse_multikey(multibase: str) -> PublicKey:
    """A ``Multikey`` / ``did:key`` body (``z...``): multicodec-prefixed point on either curve."""
    try:
        base, raw = libipld.decode_multibase(multibase)
    except ValueError as exc:
        raise VerificationError(f"{multibase!r} is not multibase") from exc
    if base != "z":
        raise VerificationError(f"{multibase!r}: atproto keys are base58btc multibase ('z' prefix)")
    if raw[:2] == _SECP256K1_PREFIX:
        return _point(ec.SECP256K1(), raw[2:], multibase)
    if raw[:2] == _P256_PREFIX:
        return _point(ec.SECP256R1(), raw[2:], multibase)
    raise VerificationError(f"{multibase!r}: unknown key type (multicodec {raw[:2].hex()}); "
                            "atproto uses secp256k1 (0xe7) or P-256 (0x1200)")


def parse_did_key(did_key: str) -> PublicKey:
    """The public key of a ``did:key:z...`` (secp256k1 or P-256)."""
    if not did_key.startswith("did:key:"):
        raise VerificationError(f"{did_key!r} is not a did:key")
    return parse_multikey(did_key[len("did:key:"):])


def parse_verification_method(kind: str | None, multibase: str) -> PublicKey:
    """A DID document verification method: ``Multikey`` or one of the two legacy suites."""
    if kind in _LEGACY_CURVES:
        try:
            _base, raw = libipld.decode_multibase(multibase)
        except ValueError as exc:
            raise VerificationError(f"{multibase!r} is not multibase") from exc
        if raw[:2] in (_SECP256K1_PREFIX, _P256_PREFIX):  # some documents prefix anyway
            raw = raw[2:]
        return _point(_LEGACY_CURVES[kind], raw, multibase)
    return parse_multikey(multibase)


def signing_key(document: dict[str, Any]) -> PublicKey:
    """The ``#atproto`` verification key of a DID document."""
    for method in document.get("verificationMethod") or []:
        if str(method.get("id", "")).endswith("#atproto") and method.get("publicKeyMultibase"):
            return parse_verification_method(method.get("type"), str(method["publicKeyMultibase"]))
    raise VerificationError(f"{document.get('id')}: the DID document has no #atproto signing key")


def signature_checker(key: PublicKey, backend: Backend = "auto") -> CheckSignature:
    """A ``check(data, signature)`` for ``key``: True only for a compact, low-S signature of ``data``.

    ``backend``: ``"auto"`` takes libsecp256k1 (``coincurve``) for secp256k1 keys when installed.

    Raises:
        MissingDependency: ``backend="coincurve"`` without coincurve installed.
    """
    order = _ORDER.get(key.curve.name)
    if order is None:
        raise VerificationError(f"{key.curve.name} keys are not used by atproto (P-256 or secp256k1 only)")
    half = order // 2
    fast = None
    if key.curve.name == "secp256k1" and backend != "cryptography":
        if _COINCURVE is None and backend == "coincurve":
            raise MissingDependency("coincurve is not installed: pip install 'pysky_async[fast-verify]'")
        if _COINCURVE is not None:
            point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
            fast = _COINCURVE.PublicKey(point)
            if _LIBSECP256K1 is not None:
                return _compact_checker(fast, half)

    def check(data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False  # DER (70-72 bytes) or garbage
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < order and 0 < s <= half):
            return False  # high-S: the malleable twin of a valid signature is refused
        der = encode_dss_signature(r, s)
        if fast is not None:
            return bool(fast.verify(der, data))
        try:
            key.verify(der, data, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True

    return check


def _compact_checker(public_key: Any, half: int) -> CheckSignature:
    """A secp256k1 ``check`` on libsecp256k1 directly: the compact ``r || s`` is parsed as is.

    ``parse_compact`` refuses ``r`` or ``s`` at or above the group order, ``ecdsa_verify`` refuses
    zero and high-S; the high-S test is made here too, so the rule does not rest on the library.
    """
    new, lib = _LIBSECP256K1.ffi.new, _LIBSECP256K1.lib
    parse, verify = lib.secp256k1_ecdsa_signature_parse_compact, lib.secp256k1_ecdsa_verify
    context, point = public_key.context.ctx, public_key.public_key
    sha256 = hashlib.sha256

    def check(data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False  # DER (70-72 bytes) or garbage
        if not 0 < int.from_bytes(signature[32:], "big") <= half:
            return False  # high-S: the malleable twin of a valid signature is refused
        parsed = new("secp256k1_ecdsa_signature *")
        ok: bool = parse(context, parsed, signature) == 1 and verify(context, parsed, sha256(data).digest(), point) == 1
        return ok

    return check


def verify_signature(key: PublicKey, data: bytes, signature: bytes, backend: Backend = "auto") -> bool:
    """True if ``signature`` (compact, low-S) signs ``data`` with ``key``; DER and high-S are False."""
    return signature_checker(key, backend)(data, signature)
