"""Decode a record block with its CID links as ``CID`` values.

``libipld`` decodes a DAG-CBOR link (tag 42) and a byte string alike, to ``bytes``. The links of
a block are read from its bytes (each tag 42 is followed by ``0x00`` and the binary CID), and
only the decoded byte strings equal to one of them become ``CID``: a byte string that merely
looks like a CID stays ``bytes``. Blocks without any tag 42 (most likes, follows, plain posts)
are returned as decoded, at the cost of one substring search.
"""

from __future__ import annotations

from typing import Any

import libipld

from .._cid import cid_of

TAG_42 = b"\xd8\x2a"
"""How a DAG-CBOR link starts (tag 42): a block without these bytes holds no link."""


def _tagged(raw: bytes) -> set[bytes]:
    """The binary CIDs that ``raw`` encodes as links (tag 42 over a byte string ``00 <cid>``)."""
    links: set[bytes] = set()
    at = raw.find(TAG_42)
    while at >= 0:
        head = raw[at + 2] if at + 2 < len(raw) else 0
        if 0x41 <= head <= 0x57:
            start, size = at + 3, head - 0x40
        elif head == 0x58 and at + 3 < len(raw):
            start, size = at + 4, raw[at + 3]
        else:
            start, size = -1, 0
        if start > 0 and raw[start:start + 1] == b"\x00":
            links.add(raw[start + 1:start + size])
        at = raw.find(TAG_42, at + 2)
    return links


def _replace(value: Any, links: set[bytes]) -> None:
    """Turn, in place, the byte strings of ``value`` that are in ``links`` into ``CID`` values."""
    if type(value) is dict:
        for key, item in value.items():
            kind = type(item)
            if kind is bytes:
                if item in links:
                    value[key] = cid_of(item)
            elif kind is dict or kind is list:
                _replace(item, links)
    else:
        for index, item in enumerate(value):
            kind = type(item)
            if kind is bytes:
                if item in links:
                    value[index] = cid_of(item)
            elif kind is dict or kind is list:
                _replace(item, links)


def with_cids(value: Any, raw: bytes) -> Any:
    """``value`` (freshly decoded from the DAG-CBOR ``raw``: changed in place) with its links as ``CID``."""
    if TAG_42 not in raw:
        return value
    return linked(value, raw)


def linked(value: Any, raw: bytes) -> Any:
    """``with_cids`` for a ``raw`` already known to hold a tag 42 (the caller searched for it)."""
    if type(value) is bytes:
        return cid_of(value) if value in _tagged(raw) else value
    if type(value) is dict or type(value) is list:
        links = _tagged(raw)
        if links:
            _replace(value, links)
    return value


def decode_record(data: bytes) -> dict[str, Any]:
    """A record block decoded (links as ``CID``).

    Raises:
        ValueError: not DAG-CBOR, or not a map.
    """
    record = libipld.decode_dag_cbor(data)
    if type(record) is not dict:
        raise ValueError(f"a record is a map, this block is a {type(record).__name__}")
    return with_cids(record, data) if TAG_42 in data else record
