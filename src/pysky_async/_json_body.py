"""Request bodies as JSON: the atproto data model's non-JSON values in their JSON forms.

A record read from a verified repo or the firehose carries ``CID`` values (a blob's ``ref``) and
may carry bytes; written back with ``create_record`` they must travel as ``{"$link": ...}`` and
``{"$bytes": ...}`` (unpadded base64). The conversion runs once per write body, before the
pipeline, so the call log, the write budget and both transports see plain JSON.
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
