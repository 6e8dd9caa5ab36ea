"""MST proofs and the Sync 1.1 inductive check: the official commit-proof fixtures and tampered commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import libipld
import pytest

from pysky_async import VerificationError
from pysky_async._sync.blocks import cid_for, read_car
from pysky_async._sync.commit import CommitOp, prove_commit, prove_ops
from pysky_async._sync.mst import NodeCache, Partial, build_root, decode_node, encode_node, key_height, lookup

from .repo_builder import RepoWriter, replace_block

DATA = Path(__file__).parent.parent / "data" / "atproto-interop"
PROOFS = json.loads((DATA / "commit-proof-fixtures.json").read_text())
HEIGHTS = json.loads((DATA / "key_heights.json").read_text())


def binary(cid: str) -> bytes:
    digest: bytes = libipld.decode_cid(cid)["hash"]["digest"]
    return bytes((1, 0x71, 0x12, 0x20)) + digest


@pytest.mark.parametrize("fixture", HEIGHTS, ids=[f["key"] or "empty" for f in HEIGHTS])
def test_key_heights(fixture: dict[str, Any]) -> None:
    assert key_height(fixture["key"].encode()) == fixture["height"]


class Case:
    """One commit-proof fixture: the trees before and after, the proof blocks, the ops."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        self.leaf = binary(fixture["leafValue"])
        self.before, self.before_blocks = build_root((k.encode(), self.leaf) for k in fixture["keys"])
        after_keys = (set(fixture["keys"]) | set(fixture["adds"])) - set(fixture["dels"])
        self.after, after_blocks = build_root((k.encode(), self.leaf) for k in after_keys)
        self.proof = {binary(c) for c in fixture["blocksInProof"]}
        self.blocks = {c: after_blocks[c] for c in self.proof}
        self.ops = ([CommitOp("create", k, self.leaf) for k in fixture["adds"]]
                    + [CommitOp("delete", k, None, self.leaf) for k in fixture["dels"]])

    def prove(self, ops: list[CommitOp], prev_data: bytes) -> None:
        prove_ops(NodeCache(self.blocks), self.after, ops, prev_data=prev_data, inductive=True)


@pytest.mark.parametrize("fixture", PROOFS, ids=[f["comment"] for f in PROOFS])
def test_commit_proof_fixture(fixture: dict[str, Any]) -> None:
    case = Case(fixture)
    assert libipld.encode_cid(case.before) == fixture["rootBeforeCommit"]
    assert libipld.encode_cid(case.after) == fixture["rootAfterCommit"]
    assert len(case.blocks) == len(case.proof)  # every proof block is a node of the tree after
    case.prove(case.ops, case.before)  # only the proof's blocks are at hand


@pytest.mark.parametrize("fixture", PROOFS, ids=[f["comment"] for f in PROOFS])
def test_tampered_commit_proof_fixtures_are_refused(fixture: dict[str, Any]) -> None:
    case = Case(fixture)
    for dropped in range(len(case.ops)):
        with pytest.raises(VerificationError) as caught:
            case.prove(case.ops[:dropped] + case.ops[dropped + 1:], case.before)
        assert caught.value.reason in ("prev-data", "proof-incomplete")
    with pytest.raises(VerificationError, match="prevData") as caught:
        case.prove(case.ops, case.after)  # a wrong prevData
    assert caught.value.reason == "prev-data"
    flipped = cid_for(b"another record")
    for i, op in enumerate(case.ops):
        changed = CommitOp(op.action, op.path, flipped if op.cid else None, flipped if op.prev else None)
        with pytest.raises(VerificationError) as caught:
            case.prove([*case.ops[:i], changed, *case.ops[i + 1:]], case.before)
        assert caught.value.reason == ("op-mismatch" if op.action == "create" else "prev-data")
    if case.ops:
        first = case.ops[0]
        other = CommitOp("delete" if first.action == "create" else "create", first.path,
                         None if first.cid else case.leaf, first.cid)
        with pytest.raises(VerificationError, match="signed tree has it"):
            case.prove([other, *case.ops[1:]], case.before)  # an op claiming the opposite


def test_node_encoding_round_trips_through_libipld() -> None:
    leaf = cid_for(b"x")
    _root, blocks = build_root((f"app.bsky.feed.post/{i:013d}".encode(), leaf) for i in range(200))
    for cid, data in blocks.items():
        node = decode_node(data)
        assert encode_node(node.left, node.entries) == data
        assert cid_for(data) == cid
        raw = libipld.decode_dag_cbor(data)
        assert libipld.encode_dag_cbor(raw) == data  # canonical DAG-CBOR, as libipld writes it


def test_lookup_proves_inclusion_and_exclusion_and_needs_the_path() -> None:
    leaf = cid_for(b"x")
    keys = [f"app.bsky.feed.like/{i:013d}".encode() for i in range(300)]
    root, blocks = build_root((k, leaf) for k in keys)
    nodes = NodeCache(blocks)
    assert all(lookup(nodes, root, k) == leaf for k in keys[::7])
    assert lookup(nodes, root, b"app.bsky.feed.like/zzz") is None
    with pytest.raises(VerificationError) as caught:
        lookup(NodeCache({root: blocks[root]}), root, keys[150])
    assert caught.value.reason == "proof-incomplete"


def test_partial_tree_edits_match_full_rebuilds() -> None:
    leaf, other = cid_for(b"x"), cid_for(b"y")
    keys = [f"com.example.thing/{i:06d}".encode() for i in range(500)]
    root, blocks = build_root((k, leaf) for k in keys)
    tree = Partial.load(NodeCache(blocks), root)
    tree.remove(keys[10])
    tree.put(keys[20], other)
    tree.put(b"com.example.thing/new", leaf)
    expected, _ = build_root([(k, other if k == keys[20] else leaf) for k in keys if k != keys[10]]
                             + [(b"com.example.thing/new", leaf)])
    assert tree.root() == expected


# ---------------------------------------------------------------------------- whole commits
DID = "did:plc:abcdefghijklmnopqrstuvwx"


def _ops(body: dict[str, Any]) -> list[CommitOp]:
    return [CommitOp.from_frame(op) for op in body["ops"]]


def _prove(body: dict[str, Any], *, inductive: bool = True) -> None:
    prove_commit(body["blocks"], body["commit"], _ops(body), did=body["repo"], rev=body["rev"],
                 since=body["since"], prev_data=body["prevData"], inductive=inductive)


def writer_with_history() -> tuple[RepoWriter, list[dict[str, Any]]]:
    repo = RepoWriter(DID)
    bodies = [repo.commit([("create", f"app.bsky.feed.post/{i:013d}", {"text": f"post {i}"}) for i in range(40)])]
    for i in range(0, 39, 3):
        bodies.append(repo.commit([("update", f"app.bsky.feed.post/{i:013d}", {"text": f"edited {i}"})]))
        bodies.append(repo.commit([("delete", f"app.bsky.feed.post/{i + 1:013d}", None),
                                   ("create", f"app.bsky.feed.like/{i:013d}", {"subject": i})]))
    return repo, bodies


def test_genuine_commits_prove_in_both_modes() -> None:
    _repo, bodies = writer_with_history()
    for body in bodies:
        _prove(body, inductive=False)
        _prove(body, inductive=True)


def test_a_record_block_with_other_bytes_under_its_cid_is_refused() -> None:
    _repo, bodies = writer_with_history()
    body = bodies[5]
    record = next(op["cid"] for op in body["ops"] if op["cid"])
    forged = replace_block(body, record, libipld.encode_dag_cbor({"text": "forged"}))
    with pytest.raises(VerificationError, match="do not hash") as caught:
        _prove(forged, inductive=False)
    assert caught.value.reason == "block-cid"
    _roots, blocks = read_car(body["blocks"])
    node = next(c for c in blocks if c not in (body["commit"], record))  # an MST node
    with pytest.raises(VerificationError, match="do not hash"):
        _prove(replace_block(body, node, blocks[node] + b"\x00"))


def test_an_op_dropped_from_a_commit_is_refused_by_the_inductive_check() -> None:
    _repo, bodies = writer_with_history()
    body = bodies[2]  # a delete and a create
    assert len(body["ops"]) == 2
    for keep in body["ops"]:
        dropped = {**body, "ops": [keep]}
        _prove(dropped, inductive=False)  # proofs alone cannot see a missing op (as in @atproto/sync)
        with pytest.raises(VerificationError) as caught:
            _prove(dropped)
        assert caught.value.reason == "prev-data"


def test_an_op_with_another_cid_or_a_missing_record_is_refused() -> None:
    _repo, bodies = writer_with_history()
    body = bodies[1]  # an update
    flipped = [{**body["ops"][0], "cid": cid_for(b"other")}]
    with pytest.raises(VerificationError) as caught:
        _prove({**body, "ops": flipped}, inductive=False)
    assert caught.value.reason == "op-mismatch"
    wrong_prev = [{**body["ops"][0], "prev": cid_for(b"other")}]
    with pytest.raises(VerificationError) as caught:
        _prove({**body, "ops": wrong_prev})
    assert caught.value.reason == "prev-data"
    with pytest.raises(VerificationError) as caught:
        _prove({**body, "prevData": bodies[3]["prevData"]})
    assert caught.value.reason == "prev-data"
    with pytest.raises(VerificationError) as caught:
        _prove({**body, "rev": "3zzzzzzzzzzzz"})
    assert caught.value.reason == "commit"
