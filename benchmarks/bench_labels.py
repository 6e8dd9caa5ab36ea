"""Label streams: what decoding and checking each label's signature costs.

    .venv/bin/python benchmarks/bench_labels.py [--labels 20000] [--repeats 3]

Labels are made and signed here the way @atproto/ozone signs them (``signLabel``: DAG-CBOR of the
label without ``sig``, a compact low-S secp256k1 signature), one per ``#labels`` frame as ozone
sends them. Measured in this process: ``decode_label_frame`` alone, and decode +
``LabelVerifier.check`` (the labeler's key cached after the first label) with each signature
backend (OpenSSL through ``cryptography``; libsecp256k1 through ``coincurve``, the
``fast-verify`` extra, when installed). Labels per second of CPU time, median of the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from tests.labels.labeler import LABELER, label_document, labels_frame, signed_label  # noqa: E402

from pysky_async._streams import LabelsFrame, LabelVerifier, decode_label_frame  # noqa: E402
from pysky_async._streams import labels as labels_module  # noqa: E402
from pysky_async._sync import crypto  # noqa: E402


def frames(n: int, key: ec.EllipticCurvePrivateKey) -> list[bytes]:
    return [labels_frame(seq, [signed_label(key, f"at://did:plc:subject{seq % 97:017d}/app.bsky.feed.post/3k{seq:011d}",
                                            "spam")]) for seq in range(1, n + 1)]


async def verify_all(data: list[bytes], document: dict[str, Any], backend: crypto.Backend) -> float:
    async def resolve(did: str) -> dict[str, Any]:
        return document

    namespace = vars(labels_module)  # the verifier looks its checker up there: swap in the chosen backend
    original = namespace["signature_checker"]
    namespace["signature_checker"] = lambda key: crypto.signature_checker(key, backend)
    try:
        verifier = LabelVerifier(resolve)
        started = time.process_time()
        for frame in data:
            event = decode_label_frame(frame)
            assert isinstance(event, LabelsFrame)
            for label in event.labels:
                assert await verifier.check(label)
        return time.process_time() - started
    finally:
        namespace["signature_checker"] = original


def decode_all(data: list[bytes]) -> float:
    started = time.process_time()
    for frame in data:
        decode_label_frame(frame)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256K1())
    data = frames(args.labels, key)
    document = label_document(LABELER, key)
    rows = [("decode only", [decode_all(data) for _ in range(args.repeats)])]
    backends: list[crypto.Backend] = ["cryptography"]
    if crypto._COINCURVE is not None:
        backends.append("coincurve")
    for backend in backends:
        rows.append((f"decode + verify ({backend})",
                     [asyncio.run(verify_all(data, document, backend)) for _ in range(args.repeats)]))
    print(f"{args.labels:,} labels, one per frame, secp256k1; median of {args.repeats} runs (CPU time)\n")
    print("| | labels/s | µs/label |")
    print("|---|---:|---:|")
    for name, seconds in rows:
        median = statistics.median(seconds)
        print(f"| {name} | {args.labels / median:,.0f} | {median / args.labels * 1e6:.1f} |")
    if len(backends) == 1:
        print("\n(coincurve is not installed: pip install 'pysky_async[fast-verify]' for the libsecp256k1 row)")


if __name__ == "__main__":
    main()
