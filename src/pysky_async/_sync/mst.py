"""The repo's Merkle Search Tree: key heights, node encoding, lookups and rebuilds over partial trees.

A node is DAG-CBOR ``{l: CID|null, e: [{p, k, v, t}]}``: ``l`` the subtree left of the first
entry, each entry's key is ``p`` bytes of the previous key plus ``k``, ``v`` the record CID and
``t`` the subtree to its right. A key's height (its layer) is the number of leading zero bits of
sha-256(key) counted in 2-bit steps (fanout 4); a node at layer L holds exactly the keys of
height L in its range, with subtrees of layer L-1 between them, and the root sits at the highest
layer. The tree is therefore canonical: one set of keys has one root CID.

Firehose commits carry only the nodes on the paths their operations touched, so the tree here
is *partial*: a subtree whose block is absent stays an opaque CID. ``lookup`` proves inclusion
or exclusion of a key; ``Partial`` flattens the known part into leaves and opaque subtrees,
applies edits, and rebuilds the root, failing with ``reason="proof-incomplete"`` exactly when
the edit needs the inside of an opaque subtree (as indigo's ``InvertOp`` needs those blocks).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import libipld

from .._exceptions import VerificationError
from .blocks import cid_for, cid_str

Blocks = Mapping[bytes, bytes]
_sha256 = hashlib.sha256


def key_height(key: bytes) -> int:
    """The MST layer of ``key``: leading zero bits of its sha-256, in 2-bit steps."""
    digest = _sha256(key).digest()
    first = digest[0]
    if first:  # 255 keys in 256: the first byte decides
        return (8 - first.bit_length()) >> 1
    return (256 - int.from_bytes(digest, "big").bit_length()) // 2


@dataclass(frozen=True, slots=True)
class Node:
    """A decoded MST node: the left subtree and ``(key, value, right subtree)`` entries."""

    left: bytes | None
    entries: tuple[tuple[bytes, bytes, bytes | None], ...]


_new = object.__new__
_set_left: Any = Node.__dict__["left"].__set__
_set_entries: Any = Node.__dict__["entries"].__set__
_decode = libipld.decode_dag_cbor
_entry = itemgetter("p", "k", "v", "t")


def _Node(left: bytes | None, entries: tuple[tuple[bytes, bytes, bytes | None], ...]) -> Node:
    """``Node(left, entries)`` without the frozen dataclass's ``__init__`` (a third of a small node's decode)."""
    node = _new(Node)
    _set_left(node, left)
    _set_entries(node, entries)
    return node


def _missing(cid: bytes) -> VerificationError:
    return VerificationError(f"the MST node {cid_str(cid)} needed for the proof is not in the commit's blocks",
                             reason="proof-incomplete")


def decode_node(data: bytes) -> Node:
    """Decode (and structurally check) one MST node block.

    Raises:
        VerificationError: not an MST node, keys not strictly ascending or not compressed
            canonically (the whole prefix shared with the previous key) (reason ``mst``).
    """
    try:
        raw = _decode(data)
        left, items = raw["l"], raw["e"]
        if len(raw) != 2 or type(items) is not list or not (left is None or type(left) is bytes):
            raise ValueError("expected {l: link, e: [...]}")
        entries: list[tuple[bytes, bytes, bytes | None]] = []
        previous = b""
        for item in items:
            prefix, suffix, value, right = _entry(item)
            if type(prefix) is not int or type(suffix) is not bytes or not 0 <= prefix <= len(previous):
                raise ValueError(f"bad key compression in {item!r}")
            if prefix:
                if prefix < len(previous) and suffix[:1] == previous[prefix:prefix + 1]:
                    raise ValueError(f"key compression not maximal in {item!r} (shares more than {prefix} bytes)")
                key = previous[:prefix] + suffix
            elif previous and suffix[:1] == previous[:1]:
                raise ValueError(f"key compression not maximal in {item!r} (shares more than 0 bytes)")
            else:
                key = suffix
            if key <= previous and entries:
                raise ValueError("keys are not strictly ascending")
            if type(value) is not bytes or not (right is None or type(right) is bytes):
                raise ValueError(f"an entry without a value link: {item!r}")
            entries.append((key, value, right))
            previous = key
        return _Node(left, tuple(entries))
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"not a valid MST node: {exc}", reason="mst") from exc


class NodeCache:
    """Decodes the MST nodes of one block set once each."""

    __slots__ = ("_nodes", "blocks")

    def __init__(self, blocks: Blocks) -> None:
        self.blocks = blocks
        self._nodes: dict[bytes, Node] = {}

    def get(self, cid: bytes) -> Node | None:
        node = self._nodes.get(cid)
        if node is None:
            data = self.blocks.get(cid)
            if data is None:
                return None
            node = self._nodes[cid] = decode_node(data)
        return node


def lookup(nodes: NodeCache, root: bytes, key: bytes) -> bytes | None:
    """The value CID under ``key`` in the tree at ``root`` (None: provably absent).

    Walks only the nodes on the key's path, so the commit's blocks are its proof.

    Raises:
        VerificationError: a node on the path is missing (reason ``proof-incomplete``) or invalid.
    """
    cid: bytes | None = root
    while cid is not None:
        node = nodes.get(cid)
        if node is None:
            raise _missing(cid)
        child = node.left
        for entry_key, value, right in node.entries:
            if entry_key == key:
                return value
            if entry_key > key:
                break
            child = right
        cid = child
    return None


# ---------------------------------------------------------------------------- encoding
def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    if n < 0x100:
        return bytes((major << 5 | 24, n))
    if n < 0x10000:
        return bytes((major << 5 | 25,)) + n.to_bytes(2, "big")
    return bytes((major << 5 | 26,)) + n.to_bytes(4, "big")


def _cbor_link(cid: bytes | None) -> bytes:
    if cid is None:
        return b"\xf6"
    return b"\xd8\x2a" + _head(2, len(cid) + 1) + b"\x00" + cid


def encode_node(left: bytes | None, entries: Iterable[tuple[bytes, bytes, bytes | None]]) -> bytes:
    """The canonical DAG-CBOR of an MST node (keys prefix-compressed against the previous one)."""
    items = list(entries)
    out = [b"\xa2\x61e", _head(4, len(items))]
    previous = b""
    for key, value, right in items:
        prefix = 0
        limit = min(len(key), len(previous))
        while prefix < limit and key[prefix] == previous[prefix]:
            prefix += 1
        suffix = key[prefix:]
        out += (b"\xa4\x61k", _head(2, len(suffix)), suffix, b"\x61p", _head(0, prefix),
                b"\x61t", _cbor_link(right), b"\x61v", _cbor_link(value))
        previous = key
    out += (b"\x61l", _cbor_link(left))
    return b"".join(out)


# ---------------------------------------------------------------------------- partial trees
@dataclass(frozen=True, slots=True)
class _Opaque:
    """A subtree whose block is not at hand: its CID and the layer of its top node."""

    cid: bytes
    layer: int


class Partial:
    """A tree known only along some paths: leaves in key order with opaque subtrees between them.

    Edits (``put``/``remove``) change leaves; ``root()`` rebuilds the canonical root CID,
    hashing new nodes and reusing opaque subtrees whole where their range is untouched.
    """

    def __init__(self, leaves: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._keys: list[bytes] = []
        self._items: list[tuple[bytes, bytes] | _Opaque] = []
        self._layers: dict[bytes, int] = {}  # keys read from signed nodes: their node's layer
        for key, value in sorted(leaves):
            self._items.append((key, value))
        self._reindex()
        self.new_blocks: dict[bytes, bytes] = {}
        """Every node block ``root()`` hashed, by CID."""

    @classmethod
    def load(cls, nodes: NodeCache, root: bytes) -> Partial:
        """The partial tree at ``root`` from the nodes present (the root itself must be)."""
        tree = cls()
        node = nodes.get(root)
        if node is None:
            raise _missing(root)
        layer = key_height(node.entries[0][0]) if node.entries else 0
        if not node.entries and node.left is not None:
            raise VerificationError("the MST root is an empty node over a subtree (not canonical)", reason="mst")
        tree._flatten(nodes, root, layer)
        tree._reindex()
        return tree

    def _flatten(self, nodes: NodeCache, cid: bytes, layer: int) -> None:
        node = nodes.get(cid)
        if node is None:
            self._items.append(_Opaque(cid, layer))
            return
        if layer < 0:
            raise VerificationError("an MST node below layer 0", reason="mst")
        if node.left is not None:
            self._flatten(nodes, node.left, layer - 1)
        for key, value, right in node.entries:
            self._items.append((key, value))
            self._layers[key] = layer
            if right is not None:
                self._flatten(nodes, right, layer - 1)

    def _reindex(self) -> None:
        self._keys = [item[0] for item in self._items if isinstance(item, tuple)]
        self._positions = [i for i, item in enumerate(self._items) if isinstance(item, tuple)]

    def _slot(self, key: bytes) -> tuple[int, int | None]:
        """(index in items where ``key`` is or would go, index of the leaf if present)."""
        at = bisect.bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            return self._positions[at], self._positions[at]
        start = self._positions[at - 1] + 1 if at > 0 else 0
        stop = self._positions[at] if at < len(self._positions) else len(self._items)
        for item in self._items[start:stop]:  # an opaque subtree in the gap may hold the key
            assert isinstance(item, _Opaque)
            raise _missing(item.cid)
        return start, None

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key`` (None: absent), proven by the known part of the tree."""
        _at, found = self._slot(key)
        if found is None:
            return None
        item = self._items[found]
        assert isinstance(item, tuple)
        return item[1]

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value`` (insert or replace)."""
        at, found = self._slot(key)
        if found is not None:
            self._items[found] = (key, value)
            return
        self._items.insert(at, (key, value))
        self._reindex()

    def remove(self, key: bytes) -> None:
        """Delete ``key`` (it must be present)."""
        _at, found = self._slot(key)
        if found is None:
            raise VerificationError(f"cannot remove {key!r}: not in the tree", reason="mst")
        del self._items[found]
        self._reindex()

    def root(self) -> bytes:
        """The root CID of the tree as edited (new nodes are kept in ``new_blocks``)."""
        items = self._items
        layers = self._layers
        heights: list[int] = []
        for item in items:
            if isinstance(item, _Opaque):
                heights.append(item.layer)
            else:
                known = layers.get(item[0])
                heights.append(key_height(item[0]) if known is None else known)
        if not items:
            return self._store(encode_node(None, ()))
        cid = self._build(list(zip(items, heights, strict=True)), max(heights))
        assert cid is not None
        return cid

    def _store(self, data: bytes) -> bytes:
        cid = cid_for(data)
        self.new_blocks[cid] = data
        return cid

    def _build(self, items: list[tuple[tuple[bytes, bytes] | _Opaque, int]], layer: int) -> bytes | None:
        if not items:
            return None
        if len(items) == 1 and isinstance(items[0][0], _Opaque) and items[0][1] == layer:
            return items[0][0].cid
        gap: list[tuple[tuple[bytes, bytes] | _Opaque, int]] = []
        left: list[tuple[tuple[bytes, bytes] | _Opaque, int]] | None = None
        separators: list[tuple[bytes, bytes]] = []
        gaps: list[list[tuple[tuple[bytes, bytes] | _Opaque, int]]] = []
        for item, height in items:
            if isinstance(item, _Opaque) and height >= layer:
                raise _missing(item.cid)  # its keys must be merged with others at this layer
            if isinstance(item, tuple) and height == layer:
                if left is None:
                    left = gap
                else:
                    gaps.append(gap)
                separators.append(item)
                gap = []
            else:
                gap.append((item, height))
        if left is None:
            left = gap
        else:
            gaps.append(gap)
        if layer == 0 and (left or any(gaps)):
            raise VerificationError("an MST entry below layer 0", reason="mst")
        entries = [(key, value, self._build(after, layer - 1)) for (key, value), after in zip(separators, gaps,
                                                                                              strict=True)]
        return self._store(encode_node(self._build(left, layer - 1), entries))


EMPTY_TREE = cid_for(encode_node(None, ()))
"""The root CID of an empty repo's tree (what a repo's first commit has before it)."""


def build_root(leaves: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, dict[bytes, bytes]]:
    """The root CID and all node blocks of the complete tree holding ``leaves`` (key, value CID)."""
    tree = Partial(leaves)
    root = tree.root()
    return root, tree.new_blocks

