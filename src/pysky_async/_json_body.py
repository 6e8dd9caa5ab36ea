"""The atproto data model's non-JSON values in their JSON forms: request bodies and decoded records.

A record read from a verified repo or the firehose carries ``CID`` values (a blob's ``ref``) and
may carry bytes; written back with ``create_record`` they must travel as ``{"$link": ...}`` and
``{"$bytes": ...}`` (unpadded base64). ``json_body`` runs once per write body, before the
pipeline, so the call log, the write budget and both transports see plain JSON. ``atproto_json``
turns a decoded record into the JSON a typed model, a command line's output or a comparison with
``listRecords`` needs.
"""

from __future__ import annotations

import base64
from typing import Any

from ._cid import CID

_PLAIN = (str, int, float, bool, type(None))


def json_body(value: Any) -> Any:
    """``value`` with every ``CID`` as ``{"$link": ...}`` and bytes as ``{"$bytes": ...}``; the very
    same object when it holds neither (so the common body is not copied), else a copy (the
    caller's dicts are never changed)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(item, _PLAIN):
                continue
            new = json_body(item)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, (list, tuple)):
        items = [json_body(item) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    if isinstance(value, CID):
        return value.json()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}
    return value


def atproto_json(value: Any) -> Any:
    """A DAG-CBOR value (a firehose or repo record) as atproto JSON: ``CID`` values and binary CID
    links as ``{"$link"}``, bytes as ``{"$bytes"}``; Jetstream's records are JSON already and come
    back equal."""
    if isinstance(value, CID):
        return value.json()
    if isinstance(value, bytes):
        if value[:2] in (b"\x01q", b"\x01U"):
            import libipld

            try:
                return {"$link": libipld.encode_cid(value)}
            except ValueError:
                pass
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}  # unpadded, as the data model says
    if isinstance(value, dict):
        return {key: atproto_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [atproto_json(item) for item in value]
    return value
