"""verify_repo on whole-repo CARs built here: what it returns, and every way a CAR can lie."""

from __future__ import annotations

from typing import Any

import libipld
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import CID, VerificationError, lex
from pysky_async._sync.blocks import cid_for
from pysky_async._sync.crypto import signature_checker
from pysky_async._sync.mst import key_height
from pysky_async._sync.repo import verify_repo

from ..streams.repo_builder import _raw_blocks, car, sign
from .repo_car import commit_block, node, repo_car, tree_car

DID = "did:plc:verifyrepotest000000000"
BLOB = cid_for(b"an image", 0x55)


def cid_shaped_bytes_record() -> bytes:
    """A record whose byte string holds a CID's bytes, untagged (libipld's encoder would tag it)."""
    placeholder = b"P" * 36
    block = libipld.encode_dag_cbor({"$type": "com.example.bytes", "raw": placeholder})
    return block.replace(placeholder, cid_for(b"not a link"))


def sample_records(n: int = 300) -> dict[str, dict[str, Any] | bytes]:
    records: dict[str, dict[str, Any] | bytes] = {}
    for i in range(n):
        records[f"app.bsky.feed.post/3k{i:011d}"] = {
            "$type": "app.bsky.feed.post", "text": f"post {i}", "createdAt": "2026-12-04T00:00:00.000Z",
            **({"embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {
                "$type": "blob", "ref": BLOB, "mimeType": "image/png", "size": 8}}]}} if i % 7 == 0 else {})}
        records[f"app.bsky.feed.like/3l{i:011d}"] = {
            "$type": "app.bsky.feed.like", "createdAt": "2026-12-04T00:00:00.000Z",
            "subject": {"uri": f"at://{DID}/app.bsky.feed.post/3k{i:011d}", "cid": str(CID(cid_for(b"x")))}}
    records["app.bsky.actor.profile/self"] = {"$type": "app.bsky.actor.profile", "displayName": "Verify"}
    records["com.example.bytes/one"] = cid_shaped_bytes_record()
    return records


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256K1())


def test_a_whole_repo_verifies_and_yields_every_record(key: ec.EllipticCurvePrivateKey) -> None:
    records = sample_records()
    repo = verify_repo(repo_car(DID, key, records), did=DID, key=key.public_key())
    assert repo.did == DID and len(repo) == len(records)
    assert {r.path: r.cid for r in repo.records} == {
        p: CID(cid_for(v if isinstance(v, bytes) else libipld.encode_dag_cbor(v))) for p, v in records.items()}
    assert [r.path for r in repo.records] == sorted(records)  # MST key order
    groups = repo.by_collection()
    assert sorted(groups) == ["app.bsky.actor.profile", "app.bsky.feed.like", "app.bsky.feed.post",
                              "com.example.bytes"]
    assert len(groups["app.bsky.feed.post"]) == 300
    embedded = next(r for r in groups["app.bsky.feed.post"] if "embed" in r.record)
    ref = embedded.record["embed"]["images"][0]["image"]["ref"]
    assert isinstance(ref, CID) and ref == CID(BLOB)  # a link is a CID, not bytes
    assert groups["com.example.bytes"][0].record["raw"] == cid_for(b"not a link")  # a byte string stays bytes
    post = embedded.record_as(lex.app.bsky.feed.Post)
    assert post.text == embedded.record["text"]
    like = groups["app.bsky.feed.like"][0].record
    assert like == records[groups["app.bsky.feed.like"][0].path]


def test_collections_limits_the_records_not_the_checks(key: ec.EllipticCurvePrivateKey) -> None:
    data = repo_car(DID, key, sample_records(50))
    repo = verify_repo(data, did=DID, key=key.public_key(), collections={"app.bsky.feed.like"})
    assert {r.collection for r in repo.records} == {"app.bsky.feed.like"} and len(repo) == 50
    spoiled = _swap(data, lambda d: d.get("text") == "post 3", {"text": "forged"})
    with pytest.raises(VerificationError) as info:  # a post block forged: refused even when posts are not asked for
        verify_repo(spoiled, did=DID, key=key.public_key(), collections={"app.bsky.feed.like"})
    assert info.value.reason == "block-cid"


def test_an_empty_repo_and_a_signature_checker_as_the_key(key: ec.EllipticCurvePrivateKey) -> None:
    repo = verify_repo(repo_car(DID, key, {}), did=DID, key=signature_checker(key.public_key()))
    assert repo.records == [] and repo.rev


def _swap(data: bytes, match: Any, replacement: dict[str, Any]) -> bytes:
    """``data`` with the bytes of the first record matching ``match`` replaced (its CID kept)."""
    sections = _raw_blocks(data)
    root = libipld.decode_car(data)[0]["roots"][0]
    for i, (cid, block) in enumerate(sections):
        value = libipld.decode_dag_cbor(block)
        if isinstance(value, dict) and match(value):
            sections[i] = (cid, libipld.encode_dag_cbor({**value, **replacement}))
            return car([root], sections)
    raise AssertionError("no block matched")


def _reason(data: bytes, key: Any, did: str = DID) -> str:
    with pytest.raises(VerificationError) as info:
        verify_repo(data, did=did, key=key)
    assert did in str(info.value)  # the message names the repo
    return info.value.reason


def test_forged_record_bytes_under_a_genuine_cid_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    data = repo_car(DID, key, sample_records(20))
    assert _reason(_swap(data, lambda d: d.get("text") == "post 7", {"text": "forged"}), key.public_key()) \
        == "block-cid"


def test_a_dropped_node_or_record_block_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    data = repo_car(DID, key, sample_records(100))
    root = libipld.decode_car(data)[0]["roots"][0]
    sections = _raw_blocks(data)
    kinds = [libipld.decode_dag_cbor(b) for _c, b in sections]
    node_at = next(i for i, v in enumerate(kinds) if isinstance(v, dict) and set(v) == {"l", "e"} and i > 2)
    assert _reason(car([root], sections[:node_at] + sections[node_at + 1:]), key.public_key()) == "mst-incomplete"
    record_at = next(i for i, v in enumerate(kinds) if isinstance(v, dict) and "$type" in v)
    assert _reason(car([root], sections[:record_at] + sections[record_at + 1:]), key.public_key()) == "record"


def test_other_keys_high_s_and_other_repos_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    records = sample_records(5)
    assert _reason(repo_car(DID, ec.generate_private_key(ec.SECP256K1()), records), key.public_key()) \
        == "signature"
    data = repo_car(DID, key, records)
    sections = _raw_blocks(data)
    _commit_cid, commit = sections[0]
    value = libipld.decode_dag_cbor(commit)
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    high = libipld.encode_dag_cbor({**unsigned, "sig": sign(key, libipld.encode_dag_cbor(unsigned), high_s=True)})
    assert _reason(car([cid_for(high)], [(cid_for(high), high), *sections[1:]]), key.public_key()) == "signature"
    assert _reason(data, key.public_key(), did="did:plc:someoneelse00000000000") == "commit"
    p256 = ec.generate_private_key(ec.SECP256R1())
    assert verify_repo(repo_car(DID, p256, records), did=DID, key=p256.public_key()).records


def test_malformed_cars_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    data = repo_car(DID, key, sample_records(5))
    assert _reason(data[:-7], key.public_key()) == "car"
    assert _reason(b"\xff\xff", key.public_key()) == "car"
    two_roots = car([cid_for(b"a"), cid_for(b"b")], _raw_blocks(data))
    assert _reason(two_roots, key.public_key()) == "commit"


def _keys(height: int, n: int) -> list[bytes]:
    found: list[bytes] = []
    i = 0
    while len(found) < n:
        k = f"app.bsky.feed.post/{i:013d}".encode()
        if key_height(k) == height:
            found.append(k)
        i += 1
    return found


RECORD = libipld.encode_dag_cbor({"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-12-04T00:00:00Z"})
VALUE = cid_for(RECORD)


def _verify_tree(key: ec.EllipticCurvePrivateKey, root: bytes, nodes: list[tuple[bytes, bytes]]) -> str | None:
    data = tree_car(DID, key, root, nodes, [(VALUE, RECORD)])
    try:
        verify_repo(data, did=DID, key=key.public_key())
    except VerificationError as exc:
        return exc.reason
    return None


def test_a_hand_made_canonical_tree_verifies(key: ec.EllipticCurvePrivateKey) -> None:
    low = _keys(0, 4)
    high = _keys(1, 1)[0]
    left = node(None, [(k, VALUE, None) for k in low if k < high])
    right = node(None, [(k, VALUE, None) for k in low if k > high])
    assert left[1] and right[1]
    root = node(left[0] if any(k < high for k in low) else None,
                [(high, VALUE, right[0] if any(k > high for k in low) else None)])
    blocks = [b for b, keep in ((left, any(k < high for k in low)), (right, any(k > high for k in low))) if keep]
    assert _verify_tree(key, root[0], [root, *blocks]) is None


def test_malformed_trees_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    low = sorted(_keys(0, 3))
    one = _keys(1, 1)[0]
    unsorted = node(None, [(low[1], VALUE, None), (low[0], VALUE, None)])
    assert _verify_tree(key, unsorted[0], [unsorted]) == "mst"  # keys not ascending
    mixed = node(None, [(k, VALUE, None) for k in sorted([*low, one])])
    assert _verify_tree(key, mixed[0], [mixed]) == "mst"  # a height-1 key among layer-0 keys
    empty = node(None, [])
    over_empty = node(empty[0], [(one, VALUE, None)])
    assert _verify_tree(key, over_empty[0], [over_empty, empty]) == "mst"  # an empty subtree must be null
    leaf_over = node(None, [(k, VALUE, None) for k in low])
    child_at_zero = node(None, [(low[0], VALUE, leaf_over[0])])
    assert _verify_tree(key, child_at_zero[0], [child_at_zero, leaf_over]) == "mst"  # below layer 0
    bigger = [k for k in _keys(0, 40) if k > one][:1]
    smaller = [k for k in _keys(0, 40) if k < one][:1]
    assert bigger and smaller
    wrong_side = node(None, [(bigger[0], VALUE, None)])  # a key above the separator in its left subtree
    root = node(wrong_side[0], [(one, VALUE, None)])
    assert _verify_tree(key, root[0], [root, wrong_side]) == "mst"
    top_empty = node(node(None, [(smaller[0], VALUE, None)])[0], [])
    assert _verify_tree(key, top_empty[0], [top_empty, node(None, [(smaller[0], VALUE, None)])]) == "mst"
    bad_path = node(None, [(b"no-slash-here", VALUE, None)])
    if key_height(b"no-slash-here") == 0:
        assert _verify_tree(key, bad_path[0], [bad_path]) == "mst"


def test_commit_block_helper_signs_for_the_did(key: ec.EllipticCurvePrivateKey) -> None:
    cid, block = commit_block(DID, key, cid_for(b"root"))
    assert libipld.decode_dag_cbor(block)["did"] == DID and cid == cid_for(block)
