"""Whole-repo verification: ``verify_repo`` of a synthetic 100,000-record repo (a ~25 MB CAR).

    .venv/bin/python benchmarks/bench_backfill.py [--records 100000] [--repeats 5]

The script builds the repo once (posts, likes and follows with TID rkeys, 1 post in 20 with an
image blob link; every MST node; a secp256k1-signed commit) and caches the CAR in the temp
directory. Then it times, in this process:

- ``verify_repo``: the whole check (every block hashed, the signature, the MST walk with its
  structure checks, every record decoded with links as ``CID``); the same with the cyclic GC
  off (the share of the collector's passes over 100,000 new dicts; the library leaves the GC
  alone); and its parts alone: ``read_car`` (sections split and hashed) and the MST walk
  without record decoding;
- for comparison: ``libipld.decode_car`` (decodes every block, checks no hash) and the
  ``atproto`` SDK's ``CAR.from_bytes`` (the same, through libipld; no hashes, no MST, no signature).

Figures are the median of the repeats, wall and CPU time (the machine is shared: the CPU figure
is the stable one); the load average is printed with them. Target: ``verify_repo`` ≤ 3 s.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libipld
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pysky_async._sync.blocks import cid_for, read_car
from pysky_async._sync.mst import build_root
from pysky_async._sync.repo import verify_repo, walk_tree

DID = "did:plc:benchbackfill00000000000"
_TID = "234567abcdefghijklmnopqrstuvwxyz"
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
WORDS = ("the quick brown fox jumps over lazy dogs while bluesky posts travel through relays and "
         "feeds to everyone who follows along at home or at work today").split()


def tid(n: int) -> str:
    value = (1_733_000_000_000_000 + n * 1000) << 10
    return "".join(_TID[(value >> (60 - 5 * i)) & 31] for i in range(13))


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def records(count: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    blob = cid_for(b"an image", 0x55)
    for i in range(count):
        kind = i % 10
        created = f"2026-12-04T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        if kind < 6:
            text = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(6 + i % 10))
            record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created,
                                      "langs": ["en"]}
            if i % 20 == 0:
                record["embed"] = {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {
                    "$type": "blob", "ref": blob, "mimeType": "image/jpeg", "size": 123456}}]}
            out[f"app.bsky.feed.post/{tid(i)}"] = record
        elif kind < 9:
            out[f"app.bsky.feed.like/{tid(i)}"] = {"$type": "app.bsky.feed.like", "createdAt": created, "subject": {
                "uri": f"at://did:plc:someone{i % 997:017d}/app.bsky.feed.post/{tid(i * 3)}",
                "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}}
        else:
            out[f"app.bsky.graph.follow/{tid(i)}"] = {"$type": "app.bsky.graph.follow", "createdAt": created,
                                                      "subject": f"did:plc:someone{i % 99991:017d}"}
    return out


def build(count: int, key: ec.EllipticCurvePrivateKey) -> bytes:
    blocks = {path: libipld.encode_dag_cbor(value) for path, value in records(count).items()}
    cids = {path: cid_for(block) for path, block in blocks.items()}
    root, nodes = build_root((path.encode(), cid) for path, cid in cids.items())
    unsigned = {"did": DID, "version": 3, "data": root, "rev": tid(count + 1), "prev": None}
    r, s = decode_dss_signature(key.sign(libipld.encode_dag_cbor(unsigned), ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + min(s, _N - s).to_bytes(32, "big")
    commit = libipld.encode_dag_cbor({**unsigned, "sig": sig})
    commit_cid = cid_for(commit)
    header = libipld.encode_dag_cbor({"version": 1, "roots": [commit_cid]})
    sections = [(commit_cid, commit), *nodes.items(), *((cids[p], b) for p, b in blocks.items())]
    return varint(len(header)) + header + b"".join(varint(len(c) + len(d)) + c + d for c, d in sections)


def cached_car(count: int) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    path = Path(tempfile.gettempdir()) / f"pysky_bench_backfill_{count}.car"
    key_path = path.with_suffix(".key")
    seed = int.from_bytes(hashlib.sha256(b"bench_backfill").digest(), "big") % _N
    key = ec.derive_private_key(seed, ec.SECP256K1())
    if not path.exists():
        started = time.perf_counter()
        data = build(count, key)
        path.write_bytes(data)
        key_path.write_text(str(seed))
        print(f"built {path} ({len(data) / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
    return path.read_bytes(), key.public_key()


def measure(run: Callable[[], Any], repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    car, key = cached_car(args.records)
    repo = verify_repo(car, did=DID, key=key)
    assert len(repo.records) == args.records

    def walk_only() -> None:
        _roots, blocks = read_car(car)
        commit = libipld.decode_dag_cbor(blocks[_roots[0]])
        for _ in walk_tree(DID, blocks, commit["data"]):
            pass

    def without_gc() -> None:
        gc.disable()
        try:
            verify_repo(car, did=DID, key=key)
        finally:
            gc.enable()

    rows: list[tuple[str, Callable[[], Any]]] = [
        ("verify_repo (all checks, records decoded)", lambda: verify_repo(car, did=DID, key=key)),
        ("  the same with the cyclic GC off", without_gc),
        ("  read_car: split + sha-256 of every block", lambda: read_car(car)),
        ("  read_car + MST walk (no record decoding)", walk_only),
        ("libipld.decode_car (no hash checks)", lambda: libipld.decode_car(car)),
    ]
    try:
        from atproto import CAR

        rows.append(("atproto SDK CAR.from_bytes (no checks)", lambda: CAR.from_bytes(car)))
    except ImportError:
        print("(atproto not installed: pip install 'pysky_async[bench]' for the side-by-side row)")
    print(f"{args.records:,} records, CAR {len(car) / 1e6:.1f} MB, load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores; median of {args.repeats}")
    print(f"{'':46} {'wall s':>8} {'cpu s':>8} {'records/s (cpu)':>16}")
    for name, run in rows:
        wall, cpu = measure(run, args.repeats)
        print(f"{name:46} {wall:8.2f} {cpu:8.2f} {args.records / cpu:16,.0f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
