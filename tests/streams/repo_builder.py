"""A signing repo writer for tests and benchmarks: firehose ``#commit``/``#sync`` frames made locally.

Each commit rebuilds the MST (pysky_async._sync.mst), signs the commit (compact, low-S) and puts
in its CAR slice what a PDS does: the commit, the MST nodes new in this commit (indigo's
"diff blocks", which the Sync 1.1 inversion needs) and the new record blocks, with
``prevData`` and each op's ``prev``. Tampering helpers change one thing of a frame body.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import libipld
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pysky_async import VerificationError
from pysky_async._sync.blocks import cid_for, cid_str
from pysky_async._sync.commit import CommitOp, invert_ops
from pysky_async._sync.mst import NodeCache, build_root

_ORDER = {"secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
          "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551}
_TID = "234567abcdefghijklmnopqrstuvwxyz"
_clock = itertools.count(1_733_000_000_000_000)


def tid() -> str:
    """A fresh, increasing TID."""
    n = next(_clock) << 10
    return "".join(_TID[(n >> (60 - 5 * i)) & 31] for i in range(13))


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def car(roots: list[bytes], blocks: list[tuple[bytes, bytes]]) -> bytes:
    header = libipld.encode_dag_cbor({"version": 1, "roots": roots})
    return varint(len(header)) + header + b"".join(varint(len(c) + len(d)) + c + d for c, d in blocks)


def sign(key: ec.EllipticCurvePrivateKey, data: bytes, *, high_s: bool = False) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    n = _ORDER[key.curve.name]
    s = max(s, n - s) if high_s else min(s, n - s)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def did_document(did: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """A DID document whose ``#atproto`` Multikey is ``key``'s public half."""
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    prefix = b"\xe7\x01" if key.curve.name == "secp256k1" else b"\x80\x24"
    return {"id": did, "verificationMethod": [{"id": f"{did}#atproto", "type": "Multikey", "controller": did,
                                               "publicKeyMultibase": libipld.encode_multibase("z", prefix + point)}]}


@dataclass
class RepoWriter:
    """One repo: its records (path -> record CID), key, rev and MST root."""

    did: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256K1()))
    records: dict[str, bytes] = field(default_factory=dict)
    rev: str | None = None
    seq: int = 0
    _nodes: dict[bytes, bytes] = field(default_factory=dict)
    _root: bytes | None = None

    def __post_init__(self) -> None:
        self._root, self._nodes = build_root(())

    @property
    def data(self) -> bytes:
        assert self._root is not None
        return self._root

    def _commit_block(self, rev: str, data: bytes, *, high_s: bool = False,
                      key: ec.EllipticCurvePrivateKey | None = None) -> tuple[bytes, bytes]:
        unsigned = {"did": self.did, "version": 3, "data": data, "rev": rev, "prev": None}
        sig = sign(key or self.key, libipld.encode_dag_cbor(unsigned), high_s=high_s)
        block = libipld.encode_dag_cbor({**unsigned, "sig": sig})
        return cid_for(block), block

    def commit(self, writes: list[tuple[str, str, dict[str, Any] | None]]) -> dict[str, Any]:
        """Apply ``(action, path, record)`` writes; the ``#commit`` frame body that announces them."""
        before_root, before_nodes = self.data, self._nodes
        ops, record_blocks = [], []
        for action, path, record in writes:
            prev = self.records.get(path)
            cid = None
            if action == "delete":
                del self.records[path]
            else:
                block = libipld.encode_dag_cbor(record)
                cid = cid_for(block)
                record_blocks.append((cid, block))
                self.records[path] = cid
            ops.append({"action": action, "path": path, "cid": cid, "prev": prev})
        self._root, self._nodes = build_root((k.encode(), v) for k, v in self.records.items())
        diff = {c: d for c, d in self._nodes.items() if c not in before_nodes}
        _complete_proof(diff, self._nodes, self.data, [CommitOp.from_frame(op) for op in ops])
        rev, since = tid(), self.rev
        commit_cid, commit_block = self._commit_block(rev, self.data)
        self.rev = rev
        self.seq += 1
        return {"seq": self.seq, "repo": self.did, "rev": rev, "since": since, "commit": commit_cid,
                "blocks": car([commit_cid], [(commit_cid, commit_block), *diff.items(), *record_blocks]),
                "ops": ops, "prevData": before_root if since is not None else None,  # none at first, as the PDS
                "time": "2026-12-04T00:00:00.000Z", "tooBig": False, "blobs": [], "rebase": False}

    def sync(self) -> dict[str, Any]:
        """A ``#sync`` frame body declaring the repo's current state (its signed commit only)."""
        rev = tid()
        commit_cid, commit_block = self._commit_block(rev, self.data)
        self.rev = rev
        self.seq += 1
        return {"seq": self.seq, "did": self.did, "rev": rev, "time": "2026-12-04T00:00:00.000Z",
                "blocks": car([commit_cid], [(commit_cid, commit_block)])}

    def resign(self, body: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None, *,
               high_s: bool = False) -> dict[str, Any]:
        """``body`` with its commit re-signed (by ``key``, or high-S) and the CAR rebuilt around it."""
        _header, blocks = libipld.decode_car(body["blocks"])
        raw = _raw_blocks(body["blocks"])
        commit = blocks[body["commit"]]
        commit_cid, commit_block = self._commit_block(commit["rev"], commit["data"], high_s=high_s, key=key)
        others = [(c, d) for c, d in raw if c != body["commit"]]
        return {**body, "commit": commit_cid,
                "blocks": car([commit_cid], [(commit_cid, commit_block), *others])}


def _complete_proof(proof: dict[bytes, bytes], tree: dict[bytes, bytes], root: bytes, ops: list[CommitOp]) -> None:
    """Add to ``proof`` the unchanged nodes the inversion of ``ops`` needs (as a Sync 1.1 PDS does)."""
    while True:
        try:
            invert_ops(NodeCache(proof), root, sorted(ops, key=lambda op: op.path))
            return
        except VerificationError as exc:
            if exc.reason != "proof-incomplete":
                raise
            missing = next(c for c in tree if c not in proof and cid_str(c) in str(exc))
            proof[missing] = tree[missing]


def _raw_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    length, pos = _read_varint(data, 0)
    pos += length
    out = []
    while pos < len(data):
        length, pos = _read_varint(data, pos)
        out.append((data[pos:pos + 36], data[pos + 36:pos + length]))
        pos += length
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def replace_block(body: dict[str, Any], cid: bytes, data: bytes) -> dict[str, Any]:
    """``body`` with the bytes under ``cid`` swapped for ``data`` (the CID kept)."""
    raw = _raw_blocks(body["blocks"])
    return {**body, "blocks": car([body["commit"]], [(c, data if c == cid else d) for c, d in raw])}


def frame(body: dict[str, Any], kind: str = "#commit") -> bytes:
    """The binary firehose frame (header + body) of ``body``."""
    return libipld.encode_dag_cbor({"op": 1, "t": kind}) + libipld.encode_dag_cbor(body)
