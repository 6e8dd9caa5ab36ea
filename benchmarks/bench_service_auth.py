"""Service-auth verification: what checking the AppView's token costs a feed generator per request.

    .venv/bin/python benchmarks/bench_service_auth.py [--tokens 2000] [--repeats 3]

Tokens signed here (as ``@atproto/xrpc-server``'s createServiceJwt makes them) by 50 issuers
whose DID documents come from memory: the figure is ``ServiceAuthVerifier.verify`` alone (parse,
claims, a cached key, the signature), median of the repeats; the first two
columns have every issuer's key cached, the last two resolve each issuer once (a cold cache);
per second of the process's CPU time is the figure that holds on a shared, loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from collections.abc import Mapping
from typing import Any

import libipld
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pysky_async import ServiceAuthVerifier

SERVICE = "did:web:feeds.example.com"
LXM = "app.bsky.feed.getFeedSkeleton"
CURVES = {"ES256K": (ec.SECP256K1(), b"\xe7\x01"), "ES256": (ec.SECP256R1(), b"\x80\x24")}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Documents:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def resolve_did(self, did: str, *, fresh: bool = False) -> Mapping[str, Any]:
        return self.docs[did]


def issuers(alg: str, n: int, documents: Documents) -> list[tuple[str, ec.EllipticCurvePrivateKey]]:
    curve, prefix = CURVES[alg]
    out = []
    for i in range(n):
        key = ec.generate_private_key(curve)
        did = f"did:plc:bench{alg.lower()}{i:016d}"
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        multikey = libipld.encode_multibase("z", prefix + point)
        documents.docs[did] = {"id": did, "verificationMethod": [
            {"id": f"{did}#atproto", "type": "Multikey", "publicKeyMultibase": multikey}]}
        out.append((did, key))
    return out


def token(alg: str, did: str, key: ec.EllipticCurvePrivateKey) -> str:
    now = int(time.time())
    head = b64(json.dumps({"typ": "JWT", "alg": alg}).encode())
    body = b64(json.dumps({"iat": now, "iss": did, "aud": SERVICE, "exp": now + 3600, "lxm": LXM}).encode())
    r, s = decode_dss_signature(key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{head}.{body}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


async def rate(verifier: ServiceAuthVerifier, headers: list[str]) -> tuple[float, float]:
    """Tokens per second of wall time and of the process's CPU time."""
    t0, c0 = time.perf_counter(), time.process_time()
    for header in headers:
        await verifier.verify(header)
    return len(headers) / (time.perf_counter() - t0), len(headers) / (time.process_time() - c0)


async def main(n_tokens: int, repeats: int) -> None:
    rows: list[tuple[str, list[float]]] = []
    for alg in CURVES:
        documents = Documents()
        signers = issuers(alg, 50, documents)
        headers = [f"Bearer {token(alg, *signers[i % len(signers)])}" for i in range(n_tokens)]
        warm, cold = [], []
        for _ in range(repeats):
            verifier = ServiceAuthVerifier(documents, service_did=SERVICE)
            cold.append(await rate(verifier, headers[:len(signers)]))
            warm.append(await rate(verifier, headers))
        rows.append((alg, [statistics.median(r[i] for r in runs) for runs in (warm, cold) for i in (0, 1)]))
    print("| alg | keys cached: tokens/s (wall) | (CPU) | cold, one per issuer: tokens/s (wall) | (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for alg, figures in rows:
        print(f"| {alg} | " + " | ".join(f"{f:,.0f}" for f in figures) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.tokens, args.repeats))
