"""Prove a firehose ``#commit`` (or ``#sync``) from its own blocks, as ``@atproto/sync`` and indigo do.

``prove_commit`` checks, without any network or key:

- every block of the CAR slice hashes to its CID, and the CAR's root is the commit;
- the commit block is a v3 commit of this repo at this ``rev`` with a 64-byte ``sig``;
- each op is proven against the commit's MST root (``data``): a create/update's key maps to
  its CID (inclusion, and the record block is present), a delete's key is absent (exclusion);
- with ``inductive=True`` (Sync 1.1), the ops inverted against the partial tree give back the
  root before the commit, which must equal the message's ``prevData``.

The signature over the unsigned commit is checked by the caller (``crypto.verify_signature``),
which holds the repo's key and may refresh it. Every failure is a ``VerificationError`` whose
``reason`` is a short tag (``block-cid``, ``proof-incomplete``, ``op-mismatch``, ``prev-data``...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import libipld

from .._exceptions import VerificationError
from .blocks import cid_str, read_car
from .mst import EMPTY_TREE, NodeCache, Partial, lookup


@dataclass(frozen=True, slots=True)
class CommitOp:
    """One op of a ``#commit`` message, CIDs binary (``prev``: the CID before an update/delete)."""

    action: str
    path: str
    cid: bytes | None
    prev: bytes | None = None

    @classmethod
    def from_frame(cls, op: dict[str, Any]) -> CommitOp:
        return cls(str(op["action"]), str(op["path"]), op.get("cid"), op.get("prev"))


@dataclass(frozen=True, slots=True)
class ProvenCommit:
    """What ``prove_commit`` established; ``unsigned``/``sig`` are for the signature check."""

    did: str
    rev: str
    data: bytes
    """The MST root after the commit."""
    unsigned: bytes
    sig: bytes
    blocks: dict[bytes, bytes]


def _fail(message: str, reason: str) -> VerificationError:
    return VerificationError(message, reason=reason)


def load_commit(car: bytes, commit_cid: bytes | None, *, did: str, rev: str) -> tuple[ProvenCommit, NodeCache]:
    """Read and hash-check ``car``, decode its commit block and check it names ``did`` at ``rev``."""
    roots, blocks = read_car(car)
    if commit_cid is None:
        if len(roots) != 1:
            raise _fail(f"expected one CAR root (the commit), got {len(roots)}", "commit")
        commit_cid = roots[0]
    elif roots[:1] != [commit_cid]:
        raise _fail("the CAR's root is not the event's commit", "commit")
    data = blocks.get(commit_cid)
    if data is None:
        raise _fail(f"the commit block {cid_str(commit_cid)} is not in the event's blocks", "commit")
    try:
        commit = libipld.decode_dag_cbor(data)
    except ValueError as exc:
        raise _fail(f"the commit block is not DAG-CBOR: {exc}", "commit") from exc
    if not isinstance(commit, dict) or commit.get("version") != 3:
        raise _fail("the commit block is not a version 3 repo commit", "commit")
    sig, root = commit.get("sig"), commit.get("data")
    if not isinstance(sig, bytes) or not isinstance(root, bytes):
        raise _fail("the commit block lacks its signature or data root", "commit")
    if commit.get("did") != did:
        raise _fail(f"the commit is of {commit.get('did')!r}, the event of {did!r}", "commit")
    if commit.get("rev") != rev:
        raise _fail(f"the commit's rev {commit.get('rev')!r} is not the event's {rev!r}", "commit")
    unsigned = libipld.encode_dag_cbor({k: v for k, v in commit.items() if k != "sig"})
    return ProvenCommit(did, rev, root, unsigned, sig, blocks), NodeCache(blocks)


def _check_ops(ops: Iterable[CommitOp]) -> list[CommitOp]:
    checked: dict[str, CommitOp] = {}
    for op in ops:
        collection, slash, rkey = op.path.partition("/")
        if not slash or not collection or not rkey or "/" in rkey:
            raise _fail(f"op path {op.path!r} is not collection/rkey", "op-invalid")
        if op.path in checked:
            raise _fail(f"two ops on {op.path} in one commit", "op-invalid")
        if (op.action in ("create", "update")) != (op.cid is not None) or op.action not in ("create", "update",
                                                                                              "delete"):
            raise _fail(f"a {op.action} op on {op.path} {'without' if op.cid is None else 'with'} a cid",
                        "op-invalid")
        checked[op.path] = op
    return sorted(checked.values(), key=lambda op: op.path)


def prove_commit(car: bytes, commit_cid: bytes | None, ops: Iterable[CommitOp], *, did: str, rev: str,
                 since: str | None, prev_data: bytes | None = None, inductive: bool = False) -> ProvenCommit:
    """Prove a commit message from its blocks (see the module docstring); the signature is left to the caller.

    A repo's first commit (no ``since``) carries no ``prevData``: it inverts onto the empty tree.

    Raises:
        VerificationError: the first thing that does not prove (its ``reason`` says what).
    """
    proven, nodes = load_commit(car, commit_cid, did=did, rev=rev)
    if prev_data is None and since is None:
        prev_data = EMPTY_TREE
    ordered = prove_ops(nodes, proven.data, ops, prev_data=prev_data, inductive=inductive)
    for op in ordered:
        if op.cid is not None and op.cid not in proven.blocks:
            raise _fail(f"{op.action} {op.path}: the record block is not in the event's blocks", "record-missing")
    return proven


def prove_ops(nodes: NodeCache, root: bytes, ops: Iterable[CommitOp], *, prev_data: bytes | None = None,
              inductive: bool = False) -> list[CommitOp]:
    """Prove ``ops`` against the tree at ``root`` (and, ``inductive``, invert them onto ``prev_data``).

    Returns the ops in path order. Raises ``VerificationError`` as ``prove_commit``.
    """
    ordered = _check_ops(ops)
    for op in ordered:
        found = lookup(nodes, root, op.path.encode())
        if found != op.cid:
            shown = "absent" if found is None else cid_str(found)
            raise _fail(f"{op.action} {op.path}: the signed tree has it {shown}", "op-mismatch")
    if inductive:
        if prev_data is None:
            raise _fail("the commit carries no prevData: the inductive check needs Sync 1.1 events", "no-prev-data")
        before = invert_ops(nodes, root, ordered)
        if before != prev_data:
            raise _fail(f"the ops inverted give the root {cid_str(before)}, the commit says prevData "
                        f"{cid_str(prev_data)}: an op is missing or altered", "prev-data")
    return ordered


def invert_ops(nodes: NodeCache, root: bytes, ops: Iterable[CommitOp]) -> bytes:
    """The root before ``ops``: each undone on the partial tree at ``root`` (Sync 1.1's inversion)."""
    tree = Partial.load(nodes, root)
    for op in ops:
        key = op.path.encode()
        if op.action == "create":
            tree.remove(key)
        elif op.prev is None:
            raise _fail(f"{op.action} {op.path} carries no prev CID: it cannot be inverted", "no-prev-data")
        else:
            tree.put(key, op.prev)
    return tree.root()
