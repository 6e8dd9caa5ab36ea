"""Signature rules from the official atproto interop fixtures (tests/data/atproto-interop)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import libipld
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import VerificationError
from pysky_async._streams import SignatureVerifier, decode_frame
from pysky_async._sync.blocks import cid_for
from pysky_async._sync.crypto import parse_did_key, parse_verification_method, verify_signature

from .repo_builder import RepoWriter, car, did_document, frame, sign

DATA = Path(__file__).parent.parent / "data" / "atproto-interop"
SIGNATURES = json.loads((DATA / "signature-fixtures.json").read_text())
pytestmark = pytest.mark.anyio


def b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("backend", ["cryptography", "coincurve"])
@pytest.mark.parametrize("fixture", SIGNATURES, ids=[f["comment"] for f in SIGNATURES])
def test_signature_fixture(fixture: dict[str, Any], backend: Any) -> None:
    if backend == "coincurve":
        pytest.importorskip("coincurve")  # the fast-verify extra (part of the test extra)
    message, signature = b64(fixture["messageBase64"]), b64(fixture["signatureBase64"])
    from_did = parse_did_key(fixture["publicKeyDid"])
    from_document = parse_verification_method(fixture["didDocSuite"], fixture["publicKeyMultibase"])
    assert from_did.public_numbers() == from_document.public_numbers()
    assert from_did.curve.name == {"ES256": "secp256r1", "ES256K": "secp256k1"}[fixture["algorithm"]]
    assert verify_signature(from_did, message, signature, backend) is fixture["validSignature"]
    assert verify_signature(from_did, message + b"!", signature, backend) is False


@pytest.mark.parametrize("backend", ["cryptography", "coincurve"])
def test_both_backends_agree_on_fresh_secp256k1_signatures(backend: Any) -> None:
    if backend == "coincurve":
        pytest.importorskip("coincurve")
    repo = RepoWriter("did:plc:abcdefghijklmnopqrstuvwx")
    for n in range(20):
        data = f"message {n}".encode()
        low, high = sign(repo.key, data), sign(repo.key, data, high_s=True)
        assert verify_signature(repo.key.public_key(), data, low, backend)
        assert not verify_signature(repo.key.public_key(), data, high, backend)


_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.mark.parametrize("backend", ["cryptography", "coincurve"])
def test_out_of_range_r_and_s_are_refused_by_both_backends(backend: Any) -> None:
    """libsecp256k1's compact path (``coincurve``) refuses what the DER path does: zero, the order or
    above, and high S (``r + n`` or ``s`` swapped for ``n - s`` are the same point's other encodings)."""
    if backend == "coincurve":
        pytest.importorskip("coincurve")
    repo = RepoWriter("did:plc:abcdefghijklmnopqrstuvwx")
    data = b"a commit"
    good = sign(repo.key, data)
    r, s = int.from_bytes(good[:32], "big"), int.from_bytes(good[32:], "big")
    n = _SECP256K1_ORDER

    def compact(r: int, s: int) -> bytes:
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    assert verify_signature(repo.key.public_key(), data, compact(r, s), backend)
    bad = [compact(0, s), compact(r, 0), compact(n, s), compact(r, n), compact(r + n, s) if r + n < 2 ** 256 else
           compact(2 ** 256 - 1, s), compact(r, n - s), compact(r, s - 1), good[:63], good + b"\x00"]
    for signature in bad:
        assert verify_signature(repo.key.public_key(), data, signature, backend) is False, signature.hex()


def test_the_fixtures_cover_both_curves_and_both_refusals() -> None:
    kinds = {(f["algorithm"], f["validSignature"], tuple(f["tags"])) for f in SIGNATURES}
    assert kinds == {(alg, True, ()) for alg in ("ES256", "ES256K")} | {
        (alg, False, (tag,)) for alg in ("ES256", "ES256K") for tag in ("high-s", "der-encoded")}


@pytest.mark.parametrize("name", ["w3c_didkey_K256.json", "w3c_didkey_P256.json"])
def test_did_keys_of_both_curves_parse_to_the_private_keys_public_half(name: str) -> None:
    for fixture in json.loads((DATA / name).read_text()):
        if "privateKeyBytesHex" in fixture:
            secret = int(fixture["privateKeyBytesHex"], 16)
        else:
            secret = int.from_bytes(libipld.decode_multibase("z" + fixture["privateKeyBytesBase58"])[1], "big")
        curve: ec.EllipticCurve = ec.SECP256K1() if "K256" in name else ec.SECP256R1()
        expected = ec.derive_private_key(secret, curve).public_key()
        assert parse_did_key(fixture["publicDidKey"]).public_numbers() == expected.public_numbers()


@pytest.mark.parametrize("bad", ["did:web:example.com", "did:key:zzzz", "did:key:" + libipld.encode_multibase(
    "z", b"\xed\x01" + bytes(32)), "did:key:" + libipld.encode_multibase("z", b"\xe7\x01" + bytes(33))])
def test_bad_did_keys_are_refused_with_a_verification_error(bad: str) -> None:
    with pytest.raises(VerificationError):
        parse_did_key(bad)


@pytest.mark.parametrize("form", ["low-s", "high-s", "der"])
async def test_a_commit_with_a_high_s_or_der_signature_is_refused(form: str) -> None:
    repo = RepoWriter("did:plc:abcdefghijklmnopqrstuvwx")
    body = repo.commit([("create", "app.bsky.feed.post/3lbeqo2a4s22a", {"text": "hi"})])
    if form == "high-s":
        body = repo.resign(body, high_s=True)
    elif form == "der":
        _header, blocks = libipld.decode_car(body["blocks"])
        commit = blocks[body["commit"]]
        unsigned = libipld.encode_dag_cbor({k: v for k, v in commit.items() if k != "sig"})
        der = repo.key.sign(unsigned, ec.ECDSA(hashes.SHA256()))
        block = libipld.encode_dag_cbor({**commit, "sig": der})
        body = {**body, "commit": cid_for(block), "blocks": car([cid_for(block)], [(cid_for(block), block)])}
    event = decode_frame(frame(body), keep_commit=True)

    async def resolve(did: str) -> dict[str, Any]:
        return did_document(did, repo.key)

    verifier = SignatureVerifier(resolve, verify="signature")
    assert await verifier.check(event) is (form == "low-s")
    assert verifier.failures == ({} if form == "low-s" else {"signature": 1})
