"""Whole-repo CARs (as ``getRepo`` serves them) for tests and benchmarks, and ways to spoil them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import libipld
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async._sync.blocks import cid_for
from pysky_async._sync.mst import build_root, encode_node

from ..streams.repo_builder import car, sign, tid


def commit_block(did: str, key: ec.EllipticCurvePrivateKey, data: bytes, rev: str | None = None) -> tuple[bytes, bytes]:
    unsigned = {"did": did, "version": 3, "data": data, "rev": rev or tid(), "prev": None}
    block = libipld.encode_dag_cbor({**unsigned, "sig": sign(key, libipld.encode_dag_cbor(unsigned))})
    return cid_for(block), block


def repo_car(did: str, key: ec.EllipticCurvePrivateKey, records: Mapping[str, dict[str, Any] | bytes]) -> bytes:
    """The CAR of a repo holding ``records`` (path -> record, or its block already encoded): the
    commit, every MST node, every record."""
    record_blocks = {path: record if isinstance(record, bytes) else libipld.encode_dag_cbor(record)
                     for path, record in records.items()}
    cids = {path: cid_for(block) for path, block in record_blocks.items()}
    root, nodes = build_root((path.encode(), cid) for path, cid in cids.items())
    commit_cid, commit = commit_block(did, key, root)
    return car([commit_cid], [(commit_cid, commit), *nodes.items(),
                              *((cids[path], block) for path, block in record_blocks.items())])


def tree_car(did: str, key: ec.EllipticCurvePrivateKey, root: bytes, nodes: Iterable[tuple[bytes, bytes]],
             records: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A CAR around a hand-made tree (``root`` and its node blocks), signed by ``key``."""
    commit_cid, commit = commit_block(did, key, root)
    return car([commit_cid], [(commit_cid, commit), *nodes, *records])


def node(left: bytes | None, entries: list[tuple[bytes, bytes, bytes | None]]) -> tuple[bytes, bytes]:
    """An MST node block (CID, bytes) with the given entries, encoded as the PDS would."""
    block = encode_node(left, entries)
    return cid_for(block), block
