"""Content addressing: every block's bytes must hash to its CID (CIDv1, sha2-256).

atproto repos use CIDv1 with the sha2-256 multihash: ``dag-cbor`` (0x71) for commits, MST
nodes and records, ``raw`` (0x55) for blobs. ``libipld.decode_car`` does not check that a
block's bytes match its CID (a relay could put other bytes under a signed CID), so CARs are
read here section by section and each block is hashed with ``hashlib``.
"""

from __future__ import annotations

import hashlib

import libipld

from .._cid import read_varint
from .._exceptions import VerificationError

DAG_CBOR = 0x71
RAW = 0x55
_SHA2_256 = 0x12
_PREFIXES = (bytes((1, DAG_CBOR, _SHA2_256, 32)), bytes((1, RAW, _SHA2_256, 32)))
CID_LENGTH = 36
"""Binary length of every CID atproto uses (version, codec, hash code, size, 32-byte digest)."""


def cid_for(data: bytes, codec: int = DAG_CBOR) -> bytes:
    """The binary CIDv1 (sha2-256) of ``data``: ``dag-cbor`` by default, ``RAW`` for blobs."""
    return bytes((1, codec, _SHA2_256, 32)) + hashlib.sha256(data).digest()


def cid_str(cid: bytes) -> str:
    """The base32 string form of a binary CID (``bafyrei...``)."""
    return libipld.encode_cid(cid)


def check_block(cid: bytes, data: bytes) -> None:
    """Raise unless ``data`` hashes to ``cid`` (a CIDv1 sha2-256, dag-cbor or raw).

    Raises:
        VerificationError: another hash or codec, or the bytes do not match (reason ``block-cid``).
    """
    if cid[:4] not in _PREFIXES or len(cid) != CID_LENGTH:
        raise VerificationError(f"block {_show(cid)}: not a CIDv1 sha2-256 dag-cbor/raw CID",
                                reason="block-cid")
    if hashlib.sha256(data).digest() != cid[4:]:
        raise VerificationError(f"block {_show(cid)}: its bytes do not hash to its CID", reason="block-cid")


def _show(cid: bytes) -> str:
    try:
        return cid_str(cid)
    except ValueError:
        return cid.hex()


def _car_varint(data: bytes, pos: int) -> tuple[int, int]:
    try:
        return read_varint(data, pos)
    except ValueError as exc:
        raise VerificationError(f"malformed CAR: {exc}", reason="car") from exc


def read_car(car: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    """The roots and the blocks (binary CID -> bytes) of a CAR v1, every block hash-checked.

    Raises:
        VerificationError: the CAR is malformed (reason ``car``) or a block's bytes do not
            match its CID (reason ``block-cid``).
    """
    try:
        length, pos = _car_varint(car, 0)
        header = libipld.decode_dag_cbor(car[pos:pos + length])
    except ValueError as exc:
        raise VerificationError(f"malformed CAR header: {exc}", reason="car") from exc
    roots = header.get("roots") if isinstance(header, dict) else None
    if not isinstance(roots, list) or header.get("version") != 1:
        raise VerificationError("malformed CAR header: expected {version: 1, roots: [...]}", reason="car")
    pos += length
    blocks: dict[bytes, bytes] = {}
    end = len(car)
    sha256 = hashlib.sha256
    while pos < end:
        length = car[pos]
        if length < 0x80:
            pos += 1
        elif pos + 1 < end and car[pos + 1] < 0x80:  # 128 B .. 16 KiB: most records and nodes
            length = (length & 0x7F) | car[pos + 1] << 7
            pos += 2
        else:
            length, pos = _car_varint(car, pos)
        stop = pos + length
        if length < CID_LENGTH or stop > end:
            raise VerificationError(f"malformed CAR: a truncated section at byte {pos}", reason="car")
        cid = car[pos:pos + CID_LENGTH]
        data = car[pos + CID_LENGTH:stop]
        if cid[:4] not in _PREFIXES:
            raise VerificationError(f"CAR block at byte {pos}: not a CIDv1 sha2-256 dag-cbor/raw CID "
                                    f"({cid[:4].hex()})", reason="block-cid")
        if sha256(data).digest() != cid[4:]:
            raise VerificationError(f"block {_show(cid)}: its bytes do not hash to its CID", reason="block-cid")
        blocks[cid] = data
        pos = stop
    return [bytes(root) for root in roots], blocks
