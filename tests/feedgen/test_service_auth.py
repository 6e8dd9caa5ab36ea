"""ServiceAuthVerifier against tokens signed with keys generated here: each refusal carries the
reference's XRPC error name (@atproto/xrpc-server auth.ts) and a message that says what was wrong."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import PyskyError, ServiceAuthError, ServiceAuthVerifier

from .tokens import LXM, SERVICE_DID, Directory, b64, make_jwt

pytestmark = pytest.mark.anyio

ALICE = "did:plc:alice234567abcdefghijklm"


def k256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256K1())


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def setup(key: ec.EllipticCurvePrivateKey | None = None) -> tuple[ec.EllipticCurvePrivateKey, Directory,
                                                                    ServiceAuthVerifier]:
    key = key or k256()
    directory = Directory()
    directory.add(ALICE, key)
    return key, directory, ServiceAuthVerifier(directory, service_did=SERVICE_DID)


async def refused(verifier: ServiceAuthVerifier, token: str | None, error: str) -> ServiceAuthError:
    header = None if token is None else f"Bearer {token}"
    with pytest.raises(ServiceAuthError) as caught:
        await verifier.verify(header)
    assert caught.value.error == error, caught.value
    assert caught.value.status_code == 401
    assert isinstance(caught.value, PyskyError)
    return caught.value


@pytest.mark.parametrize("curve", ["secp256k1", "p256"])
async def test_a_valid_token_gives_the_issuer(curve: str) -> None:
    key, directory, verifier = setup(k256() if curve == "secp256k1" else p256())
    assert await verifier.verify(f"Bearer {make_jwt(key, iss=ALICE)}") == ALICE
    assert await verifier.verify(f"bearer {make_jwt(key, iss=ALICE)}") == ALICE  # the scheme is case-insensitive
    assert directory.fetches == [(ALICE, False)]  # the key is cached


async def test_high_s_signatures_are_accepted_as_the_reference_does_for_jwts() -> None:
    key, _, verifier = setup()
    assert await verifier.verify(f"Bearer {make_jwt(key, iss=ALICE, high_s=True)}") == ALICE


async def test_missing_or_malformed_headers() -> None:
    key, _, verifier = setup()
    error = await refused(verifier, None, "AuthenticationRequired")
    assert "Bearer" in error.message
    with pytest.raises(ServiceAuthError, match="Bearer <jwt>"):
        await verifier.verify(f"Basic {make_jwt(key, iss=ALICE)}")
    await refused(verifier, "not-a-jwt", "BadJwt")
    await refused(verifier, "a.b.c", "BadJwt")


async def test_wrong_audience() -> None:
    key, _, verifier = setup()
    error = await refused(verifier, make_jwt(key, iss=ALICE, aud="did:web:other.example.com"), "BadJwtAudience")
    assert "did:web:other.example.com" in error.message and SERVICE_DID in error.message
    await refused(verifier, make_jwt(key, iss=ALICE, aud=SERVICE_DID + "#bsky_fg"), "BadJwtAudience")


async def test_wrong_or_missing_lxm() -> None:
    key, _, verifier = setup()
    error = await refused(verifier, make_jwt(key, iss=ALICE, lxm="app.bsky.feed.getFeed"), "BadJwtLexiconMethod")
    assert LXM in error.message
    error = await refused(verifier, make_jwt(key, iss=ALICE, lxm=None), "BadJwtLexiconMethod")
    assert "missing" in error.message
    lenient = ServiceAuthVerifier(verifier.identity, service_did=SERVICE_DID, lxm=None)
    assert await lenient.verify(f"Bearer {make_jwt(key, iss=ALICE, lxm=None)}") == ALICE
    assert await lenient.verify(f"Bearer {make_jwt(key, iss=ALICE)}", lxm=LXM) == ALICE


async def test_expiry_with_a_small_leeway() -> None:
    key, _, verifier = setup()
    now = time.time()
    await refused(verifier, make_jwt(key, iss=ALICE, exp=now - 60), "JwtExpired")
    assert await verifier.verify(f"Bearer {make_jwt(key, iss=ALICE, exp=now - 2)}") == ALICE  # within 10 s
    frozen = ServiceAuthVerifier(verifier.identity, service_did=SERVICE_DID, leeway=0, clock=lambda: now)
    await refused(frozen, make_jwt(key, iss=ALICE, exp=now - 1), "JwtExpired")


async def test_a_token_issued_in_the_future_is_refused() -> None:
    key, _, verifier = setup()
    error = await refused(verifier, make_jwt(key, iss=ALICE, iat=time.time() + 600, exp=time.time() + 700),
                          "BadJwt")
    assert "future" in error.message


async def test_signed_by_another_key() -> None:
    _, directory, verifier = setup()
    error = await refused(verifier, make_jwt(k256(), iss=ALICE), "BadJwtSignature")
    assert ALICE in error.message
    assert directory.fetches == [(ALICE, False), (ALICE, True)]  # looked once more: it may have rotated


async def test_a_rotated_key_is_picked_up_once_on_the_first_mismatch() -> None:
    key, directory, verifier = setup()
    assert await verifier.verify(f"Bearer {make_jwt(key, iss=ALICE)}") == ALICE
    rotated = k256()
    directory.add(ALICE, rotated)
    assert await verifier.verify(f"Bearer {make_jwt(rotated, iss=ALICE)}") == ALICE
    assert verifier.key_refreshes == 1
    assert await verifier.verify(f"Bearer {make_jwt(rotated, iss=ALICE)}") == ALICE  # the new key is cached
    await refused(verifier, make_jwt(key, iss=ALICE), "BadJwtSignature")  # the old key no longer works
    assert directory.fetches == [(ALICE, False), (ALICE, True)]  # no second refresh within refresh_interval


async def test_the_signature_must_be_by_the_curve_the_alg_names() -> None:
    key, _, verifier = setup(p256())
    await refused(verifier, make_jwt(key, iss=ALICE, alg="ES256K"), "BadJwtSignature")
    await refused(verifier, make_jwt(key, iss=ALICE, alg="HS256"), "BadJwtSignature")
    await refused(verifier, make_jwt(key, iss=ALICE, alg="none"), "BadJwtSignature")


async def test_tampered_payload_and_der_signatures() -> None:
    key, _, verifier = setup()
    head, _, sig = make_jwt(key, iss=ALICE).split(".")
    forged = b64(json.dumps({"iss": ALICE, "aud": SERVICE_DID, "exp": int(time.time()) + 60, "lxm": LXM}).encode())
    await refused(verifier, f"{head}.{forged}.{sig}", "BadJwtSignature")
    await refused(verifier, f"{head}.{forged}.{b64(b'0' * 70)}", "BadJwtSignature")


@pytest.mark.parametrize("typ", ["at+jwt", "refresh+jwt", "dpop+jwt"])
async def test_access_refresh_and_dpop_tokens_are_not_service_tokens(typ: str) -> None:
    key, _, verifier = setup()
    await refused(verifier, make_jwt(key, iss=ALICE, header={"typ": typ}), "BadJwtType")


async def test_issuer_checks() -> None:
    key, _, verifier = setup()
    await refused(verifier, make_jwt(key, iss="alice.test"), "BadJwtIss")
    await refused(verifier, make_jwt(key, iss=ALICE + "#"), "BadJwtIss")
    error = await refused(verifier, make_jwt(key, iss="did:plc:nobody234567abcdefghijk"), "BadJwtIss")
    assert "could not resolve" in error.message


async def test_a_labeler_issuer_is_checked_against_its_label_key() -> None:
    label_key, repo_key = k256(), k256()
    directory = Directory()
    directory.add(ALICE, repo_key)
    directory.documents[ALICE]["verificationMethod"].append(
        {**directory.documents[ALICE]["verificationMethod"][0], "id": f"{ALICE}#atproto_label",
         "publicKeyMultibase": Directory._multikey(label_key)})
    verifier = ServiceAuthVerifier(directory, service_did=SERVICE_DID)
    assert await verifier.verify(f"Bearer {make_jwt(label_key, iss=ALICE + '#atproto_labeler')}") == \
        ALICE + "#atproto_labeler"
    await refused(verifier, make_jwt(repo_key, iss=ALICE + "#atproto_labeler"), "BadJwtSignature")
    assert await verifier.verify(f"Bearer {make_jwt(repo_key, iss=ALICE)}") == ALICE


def test_repr_shows_no_key_material() -> None:
    _, _, verifier = setup()
    assert repr(verifier) == f"ServiceAuthVerifier(service_did={SERVICE_DID!r}, lxm={LXM!r})"
