"""Decode a record block with its CID links as ``CID`` values.

``libipld`` decodes a DAG-CBOR link (tag 42) and a byte string alike, to ``bytes``. A record's
bytes are searched for the tag-42 encoding of each CID-shaped value to tell them apart
exactly: a link is encoded ``d8 2a 58 25 00 <cid>``, a byte string without the tag.
Records without any tag 42 (most likes, follows, plain posts) are returned as decoded.
"""

from __future__ import annotations

from typing import Any

import libipld

from .._cid import CID

_TAG_42 = b"\xd8\x2a"


def _head(length: int) -> bytes:
    if length < 24:
        return bytes((0x40 | length,))
    if length < 0x100:
        return bytes((0x58, length))
    return b"\x59" + length.to_bytes(2, "big")


def _links(value: Any, raw: bytes) -> Any:
    kind = type(value)
    if kind is bytes:
        if value[:1] == b"\x01" and _TAG_42 + _head(len(value) + 1) + b"\x00" + value in raw:
            return CID(value)
        return value
    if kind is dict:
        return {key: _links(item, raw) for key, item in value.items()}
    if kind is list:
        return [_links(item, raw) for item in value]
    return value


def with_cids(value: Any, raw: bytes) -> Any:
    """``value`` (decoded from the DAG-CBOR ``raw``) with its links as ``CID`` values."""
    if _TAG_42 not in raw:
        return value
    return _links(value, raw)


def decode_record(data: bytes) -> dict[str, Any]:
    """A record block decoded (links as ``CID``).

    Raises:
        ValueError: not DAG-CBOR, or not a map.
    """
    record = libipld.decode_dag_cbor(data)
    if type(record) is not dict:
        raise ValueError(f"a record is a map, this block is a {type(record).__name__}")
    return with_cids(record, data) if _TAG_42 in data else record
