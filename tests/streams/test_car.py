"""car_blocks (the CAR section scanner) agrees with libipld.decode_car."""

from __future__ import annotations

import hashlib

import libipld
import pytest

from pysky_async._streams.car import car_blocks

from ..realnet.pds import PdsServer
from .conftest import Written
from .repo_builder import varint
from .test_flow import raw_frames

pytestmark = pytest.mark.anyio


def car(blocks: list[tuple[bytes, bytes]]) -> bytes:
    header = libipld.encode_dag_cbor({"version": 1, "roots": [blocks[0][0]]})
    sections = b"".join(varint(len(cid) + len(data)) + cid + data for cid, data in blocks)
    return varint(len(header)) + header + sections


def cid(data: bytes, *, code: int = 0x12) -> bytes:
    digest = hashlib.sha256(data).digest() if code == 0x12 else hashlib.sha512(data).digest()
    return bytes([1, 0x71, code, len(digest)]) + digest


async def test_agrees_with_decode_car_on_real_commits(pds: PdsServer, written: Written) -> None:
    checked = 0
    for _seq, frame in await raw_frames(pds, written.accounts[2].did):
        _header, body = libipld.decode_dag_cbor_multi(frame)
        if not body.get("ops"):
            continue
        wanted = {op["cid"] for op in body["ops"] if op.get("cid")}
        _root, everything = libipld.decode_car(body["blocks"])
        assert car_blocks(body["blocks"], wanted) == {c: everything[c] for c in wanted}
        checked += len(wanted)
    assert checked > 100


def test_large_sections_other_cid_shapes_and_truncation() -> None:
    big = libipld.encode_dag_cbor({"text": "x" * 1000})  # a multi-byte varint length
    small = libipld.encode_dag_cbor({"n": 1})
    blocks = [(cid(big), big), (cid(small), small)]
    assert car_blocks(car(blocks), {cid(small)}) == {cid(small): {"n": 1}}
    assert car_blocks(car(blocks), {cid(big)}) == {cid(big): {"text": "x" * 1000}}
    assert car_blocks(car(blocks), {b"\x01q\x12 " + bytes(32)}) == {}
    other = [(cid(small, code=0x13), small), (cid(big), big)]  # sha2-512: atproto never uses it
    with pytest.raises(ValueError, match="sha2-256"):
        car_blocks(car(other), {cid(small, code=0x13)})
    with pytest.raises(ValueError, match="truncated"):
        car_blocks(car(blocks)[:-10], {cid(small)})


def test_a_block_whose_bytes_do_not_match_its_cid_is_refused() -> None:
    """A relay that keeps a record's CID but swaps its bytes must not get the forgery decoded."""
    genuine = libipld.encode_dag_cbor({"text": "what the author wrote"})
    forged = libipld.encode_dag_cbor({"text": "what the relay wants"})
    other = libipld.encode_dag_cbor({"n": 1})
    tampered = car([(cid(other), other), (cid(genuine), forged)])
    with pytest.raises(ValueError, match="do not hash to its CID"):
        car_blocks(tampered, {cid(genuine)})
    assert car_blocks(tampered, {cid(other)}) == {cid(other): {"n": 1}}  # only used blocks are hashed
