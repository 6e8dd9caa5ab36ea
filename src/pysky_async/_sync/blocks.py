"""Content addressing: every block's bytes must hash to its CID (CIDv1, sha2-256).

atproto repos use CIDv1 with the sha2-256 multihash: ``dag-cbor`` (0x71) for commits, MST
nodes and records, ``raw`` (0x55) for blobs. ``libipld.decode_car`` does not check that a
block's bytes match its CID (a relay could put other bytes under a signed CID), so CARs are
read here section by section and each block is hashed with ``hashlib``.
"""

from __future__ import annotations

import hashlib

import libipld

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


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 varint at ``data[pos]`` and the position after it (CAR section lengths).

    The one varint reader of the CAR scanners (``read_car`` here, ``_streams.car.car_blocks``);
    callers inline the one-byte case (most sections are under 128 bytes) and call this otherwise.

    Raises:
        ValueError: the varint runs past the end of ``data`` or past 64 bits.
    """
    value = shift = 0
    end = len(data)
    while pos < end and shift <= 63:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError(f"a truncated varint at byte {pos}")


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
