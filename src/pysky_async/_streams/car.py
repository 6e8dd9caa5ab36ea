"""Pick blocks out of a CAR slice without decoding the rest (MST nodes, the commit block).

A firehose commit's CAR holds the MST path and the commit next to the records; only the records
named by the ops are wanted. Scanning the sections (varint length, CID, data) and decoding just
those blocks is ~3× faster than ``libipld.decode_car`` on the reference PDS's frames.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import libipld

_CID_LEN = 36  # CIDv1, dag-cbor or raw codec, sha2-256: every CID atproto repos use


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def car_blocks(car: bytes, wanted: Collection[bytes]) -> dict[bytes, Any]:
    """The decoded blocks of ``car`` whose binary CIDs are in ``wanted`` (missing ones are absent).

    Raises:
        ValueError / IndexError: the CAR is malformed.
    """
    found: dict[bytes, Any] = {}
    if not wanted:
        return found
    length, pos = _varint(car, 0)
    pos += length
    end = len(car)
    while pos < end and len(found) < len(wanted):
        length, pos = _varint(car, pos)
        if length < _CID_LEN or pos + length > end:
            raise ValueError(f"truncated CAR section at byte {pos}")
        if car[pos] != 1 or car[pos + 2] != 0x12 or car[pos + 3] != 0x20:
            # another CID shape: let libipld parse the whole slice
            _header, blocks = libipld.decode_car(car)
            return {cid: blocks[cid] for cid in wanted if cid in blocks}
        cid = car[pos:pos + _CID_LEN]
        if cid in wanted:
            found[cid] = libipld.decode_dag_cbor(car[pos + _CID_LEN:pos + length])
        pos += length
    return found
