"""Verify a whole repository (a ``com.atproto.sync.getRepo`` CAR) and yield its records.

``verify_repo`` proves, without any network, what ``@atproto/repo``'s ``verifyRepo`` does:

- every block of the CAR hashes to its CID (``read_car``), and the CAR's root is the commit;
- the commit is a v3 commit of the expected DID, signed (compact, low-S) by the given key;
- the MST from the commit's ``data`` is whole and canonical: every node present, keys strictly
  ascending across the tree, each key in the node of its ``key_height`` layer, no empty
  subtrees, keys of the form ``collection/rkey``;
- every record block named by a leaf is present and decodes to a map.

Records come back with their CID links as ``CID`` values (see ``records.decode_record``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import libipld
import msgspec

from .._cid import CID, cid_of
from .._exceptions import VerificationError
from .blocks import cid_str, read_car
from .crypto import CheckSignature, PublicKey, signature_checker
from .mst import Node, decode_node, key_height
from .records import TAG_42, linked

if TYPE_CHECKING:
    from ..lex._base import LexObject

M = TypeVar("M", bound="LexObject")


class RepoRecord(msgspec.Struct, frozen=True, gc=False):
    """One record of a verified repo: where it is, its CID and its value (links as ``CID``).

    Immutable; not tracked by the cyclic garbage collector (a repo's 100,000 records would make
    every collection pass over them), so never put a record inside its own ``record`` dict.
    """

    collection: str
    rkey: str
    cid: CID
    record: dict[str, Any]

    @property
    def path(self) -> str:
        """``collection/rkey``, the record's MST key."""
        return f"{self.collection}/{self.rkey}"

    def record_as(self, model: type[M]) -> M:
        """The record as ``model`` (e.g. ``lex.app.bsky.feed.Post``). ``InvalidInput`` when the record is
        in another collection than the model's; ``InvalidResponse`` when it does not fit the model."""
        from .._typed_record import typed_record

        return typed_record(model, self.collection, self.path, self.record, "record")


@dataclass(frozen=True, slots=True)
class VerifiedRepo:
    """A repo whose commit, tree and records were proven (``verify_repo``)."""

    did: str
    rev: str
    commit_cid: CID
    data_cid: CID
    """The MST root the commit signs."""
    records: list[RepoRecord] = field(repr=False)
    """Every record (of the requested collections), in MST key order (collection, then rkey)."""
    car_bytes: int = 0
    """The size of the CAR the repo was read from."""

    def by_collection(self) -> dict[str, list[RepoRecord]]:
        """The records grouped by collection (in key order within each)."""
        groups: dict[str, list[RepoRecord]] = {}
        for record in self.records:
            groups.setdefault(record.collection, []).append(record)
        return groups

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return (f"VerifiedRepo(did={self.did!r}, rev={self.rev!r}, commit_cid={self.commit_cid!r}, "
                f"records={len(self.records)})")


def _fail(did: str, message: str, reason: str) -> VerificationError:
    return VerificationError(f"repo {did}: {message}", reason=reason)


def _commit(did: str, roots: list[bytes], blocks: dict[bytes, bytes]) -> tuple[bytes, dict[str, Any]]:
    if len(roots) != 1:
        raise _fail(did, f"expected one CAR root (the commit), got {len(roots)}", "commit")
    data = blocks.get(roots[0])
    if data is None:
        raise _fail(did, f"the commit block {cid_str(roots[0])} is not in the CAR", "commit")
    try:
        commit = libipld.decode_dag_cbor(data)
    except ValueError as exc:
        raise _fail(did, f"the commit block is not DAG-CBOR: {exc}", "commit") from exc
    if not isinstance(commit, dict) or commit.get("version") != 3:
        raise _fail(did, "the CAR's root is not a version 3 repo commit", "commit")
    if not isinstance(commit.get("sig"), bytes) or not isinstance(commit.get("data"), bytes) \
            or not isinstance(commit.get("rev"), str):
        raise _fail(did, "the commit lacks its signature, data root or rev", "commit")
    if commit.get("did") != did:
        raise _fail(did, f"the commit is of {commit.get('did')!r}, not of the repo asked for", "commit")
    return roots[0], commit


def check_commit_signature(did: str, commit: dict[str, Any], key: PublicKey | CheckSignature) -> None:
    """Raise ``VerificationError`` (reason ``signature``) unless ``key`` signed ``commit``."""
    check = key if callable(key) and not isinstance(key, PublicKey) else signature_checker(key)
    unsigned = libipld.encode_dag_cbor({k: v for k, v in commit.items() if k != "sig"})
    if not check(unsigned, commit["sig"]):
        raise _fail(did, "the commit is not signed by the repo's #atproto key (compact low-S ECDSA)", "signature")


def walk_tree(did: str, blocks: dict[bytes, bytes], root: bytes) -> list[tuple[bytes, bytes]]:
    """Every ``(key, value CID)`` of the MST at ``root``, in key order, the tree's shape checked.

    Raises:
        VerificationError: a node is missing (``mst-incomplete``) or the tree is not a canonical
            MST (``mst``: unsorted keys, a key at the wrong layer, an empty subtree...).
    """
    leaves: list[tuple[bytes, bytes]] = []
    top = _node(did, blocks, root)
    if not top.entries:
        if top.left is not None:
            raise _fail(did, "the MST root is an empty node over a subtree (not canonical)", "mst")
        return leaves
    _visit(did, blocks, root, top, key_height(top.entries[0][0]), leaves)
    return leaves


def _node(did: str, blocks: dict[bytes, bytes], cid: bytes) -> Node:
    data = blocks.get(cid)
    if data is None:
        raise _fail(did, f"the MST node {cid_str(cid)} is not in the CAR", "mst-incomplete")
    try:
        return decode_node(data)
    except VerificationError as exc:
        raise _fail(did, f"MST node {cid_str(cid)}: {exc}", "mst") from exc


def _visit(did: str, blocks: dict[bytes, bytes], cid: bytes, node: Node, layer: int,
           leaves: list[tuple[bytes, bytes]]) -> None:
    """Append the leaves under ``node`` (at ``layer``) to ``leaves``, checking order and layers."""
    if not node.entries and node.left is None:
        raise _fail(did, f"the MST node {cid_str(cid)} is empty (an empty subtree must be null)", "mst")
    if layer == 0 and (node.left is not None or any(right is not None for _k, _v, right in node.entries)):
        raise _fail(did, f"the MST node {cid_str(cid)} at layer 0 has a subtree", "mst")
    if node.left is not None:
        _visit(did, blocks, node.left, _node(did, blocks, node.left), layer - 1, leaves)
    append = leaves.append
    for key, value, right in node.entries:
        if leaves and key <= leaves[-1][0]:
            raise _fail(did, f"MST keys out of order: {key!r} after {leaves[-1][0]!r}", "mst")
        height = key_height(key)
        if height != layer:
            raise _fail(did, f"the MST key {key!r} is at layer {layer}, its height is {height}", "mst")
        append((key, value))
        if right is not None:
            _visit(did, blocks, right, _node(did, blocks, right), layer - 1, leaves)


def _split(did: str, key: bytes) -> tuple[str, str]:
    try:
        path = key.decode()
    except UnicodeDecodeError:
        raise _fail(did, f"the MST key {key!r} is not UTF-8", "mst") from None
    collection, slash, rkey = path.partition("/")
    if not slash or not collection or not rkey or "/" in rkey:
        raise _fail(did, f"the MST key {path!r} is not collection/rkey", "mst")
    return collection, rkey


def verify_repo(car: bytes, *, did: str, key: PublicKey | CheckSignature,
                collections: Collection[str] | None = None) -> VerifiedRepo:
    """Verify a repo CAR (``getRepo``) of ``did`` signed by ``key`` and return its records.

    Pure and CPU-bound (about a second per 100,000 records): run it in a worker thread
    (``anyio.to_thread.run_sync``) from async code, as ``bsky.sync.get_repo`` does. The whole
    tree is always walked and checked; ``collections`` only limits which records are decoded
    and returned.

    Raises:
        VerificationError: the first thing that does not verify; ``reason`` is ``car``,
            ``block-cid``, ``commit``, ``signature``, ``mst``, ``mst-incomplete`` or ``record``.
    """
    try:
        roots, blocks = read_car(car)
    except VerificationError as exc:
        raise _fail(did, str(exc), exc.reason) from exc
    commit_cid, commit = _commit(did, roots, blocks)
    check_commit_signature(did, commit, key)
    wanted: Callable[[str], bool] = (lambda _c: True) if collections is None else set(collections).__contains__
    records: list[RepoRecord] = []
    append = records.append
    get = blocks.get
    decode = libipld.decode_dag_cbor
    prefix, collection, keep = b"\x00", "", False  # the current collection's key prefix (b"app.bsky.feed.post/")
    for path, value in walk_tree(did, blocks, commit["data"]):
        rest = path[len(prefix):]  # keys are sorted: one collection's keys come together
        if path.startswith(prefix) and rest and b"/" not in rest and rest.isascii():
            rkey = rest.decode()
        else:
            collection, rkey = _split(did, path)
            prefix, keep = path[:len(path) - len(rkey.encode())], wanted(collection)
        if not keep:
            continue
        data = get(value)
        if data is None:
            raise _fail(did, f"the record block {cid_str(value)} of {collection}/{rkey} is not in the CAR",
                        "record")
        try:
            record = decode(data)
        except ValueError as exc:
            raise _fail(did, f"the record {collection}/{rkey} ({cid_str(value)}) is not DAG-CBOR: {exc}",
                        "record") from exc
        if type(record) is not dict:
            raise _fail(did, f"the record {collection}/{rkey} ({cid_str(value)}) is not a map", "record")
        if TAG_42 in data:  # a link inside: CID values (most likes, follows and posts have none)
            record = linked(record, data)
        append(RepoRecord(collection, rkey, cid_of(value), record))
    return VerifiedRepo(did, commit["rev"], cid_of(commit_cid), cid_of(commit["data"]), records, len(car))
