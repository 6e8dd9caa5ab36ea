"""Validation on demand: a value checked against its lexicon, locally, before any request.

``validate(model)`` checks a model (or ``validate_data(data, nsid)`` plain JSON) against the
lexicons pinned in lexicons/: required and nullable fields, types, string lengths in UTF-8 bytes
and in graphemes, string formats, enums, consts, integer ranges, array and bytes lengths, blob
MIME types and sizes, refs, tokens and unions (nested, all the way down). The first rule broken
raises ``InvalidInput`` naming the field path and the rule. Unknown fields are allowed.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .._exceptions import InvalidIdentifier, InvalidInput

Schemas = Mapping[str, Mapping[str, Any]]


@cache
def pinned_schemas() -> dict[str, dict[str, Any]]:
    """The pinned lexicons' defs by NSID (loaded on first use)."""
    loaded: dict[str, dict[str, Any]] = json.loads(Path(__file__).with_name("_lexicons.json").read_text("utf-8"))
    return loaded


def validate(value: Any) -> None:
    """Check a model (a record or object of ``pysky_async.lex``) against its lexicon.

    Raises ``InvalidInput`` naming the field path and the rule; returns None when it is valid.
    """
    from ._base import encode

    tag = type(value).__struct_config__.tag if hasattr(type(value), "__struct_config__") else None
    if not isinstance(tag, str):
        raise InvalidInput(f"validate() takes a lexicon model (a record or object), not {type(value).__name__}")
    validate_data(json.loads(encode(value)), tag)


def validate_data(data: Any, ref: str, schemas: Schemas | None = None) -> None:
    """Check plain JSON ``data`` against the def ``ref`` (``nsid`` or ``nsid#name``)."""
    schemas = pinned_schemas() if schemas is None else schemas
    _Validator(schemas).ref(data, ref, "", "$")


def _check_format(kind: str) -> Callable[[str], object] | None:
    from .. import _formats, _syntax

    checks: dict[str, Callable[[str], object]] = {
        "did": _syntax.Did, "handle": _syntax.Handle, "at-identifier": _syntax.AtIdentifier,
        "nsid": _syntax.Nsid, "record-key": _syntax.RecordKey, "tid": _syntax.Tid,
        "at-uri": _syntax.AtUri.parse, "datetime": _formats.Datetime, "language": _formats.Language,
        "cid": _formats.Cid, "uri": _formats.Uri,
    }
    return checks.get(kind)


class _Validator:
    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas

    def fail(self, path: str, rule: str) -> InvalidInput:
        return InvalidInput(f"{path}: {rule}")

    def resolve(self, ref: str, context: str) -> tuple[str, Mapping[str, Any]]:
        nsid, _, name = ref.partition("#")
        nsid = nsid or context
        name = name or "main"
        try:
            return nsid, self.schemas[nsid][name]
        except KeyError:
            raise InvalidInput(f"no lexicon def {nsid}#{name} to validate against") from None

    def ref(self, data: Any, ref: str, context: str, path: str) -> None:
        nsid, schema = self.resolve(ref, context)
        if schema["type"] == "record":
            schema = schema["record"]
        if schema["type"] == "token":
            full = nsid if ref.endswith("#main") or "#" not in ref else f"{nsid}#{ref.partition('#')[2]}"
            if data != full:
                raise self.fail(path, f"must be the token {full!r}")
            return
        self.value(data, schema, nsid, path)

    def value(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        kind = schema["type"]
        check = getattr(self, "t_" + kind.replace("-", "_"), None)
        if check is None:
            raise InvalidInput(f"{path}: lexicon type {kind!r} is not supported by validate()")
        check(data, schema, nsid, path)

    def t_null(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if data is not None:
            raise self.fail(path, "must be null")

    def t_boolean(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, bool):
            raise self.fail(path, "must be a boolean")
        if "const" in schema and data != schema["const"]:
            raise self.fail(path, f"must be {schema['const']!r} (const)")

    def t_integer(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, int) or isinstance(data, bool):
            raise self.fail(path, "must be an integer")
        if "const" in schema and data != schema["const"]:
            raise self.fail(path, f"must be {schema['const']} (const)")
        if "enum" in schema and data not in schema["enum"]:
            raise self.fail(path, f"must be one of {schema['enum']} (enum)")
        if "minimum" in schema and data < schema["minimum"]:
            raise self.fail(path, f"must be at least {schema['minimum']} (minimum)")
        if "maximum" in schema and data > schema["maximum"]:
            raise self.fail(path, f"must be at most {schema['maximum']} (maximum)")

    def t_string(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, str):
            raise self.fail(path, "must be a string")
        if "const" in schema and data != schema["const"]:
            raise self.fail(path, f"must be {schema['const']!r} (const)")
        if "enum" in schema and data not in schema["enum"]:
            raise self.fail(path, f"must be one of {schema['enum']} (enum)")
        if "minLength" in schema or "maxLength" in schema:
            size = len(data.encode("utf-8"))
            if size < schema.get("minLength", 0):
                raise self.fail(path, f"is {size} UTF-8 bytes, at least {schema['minLength']} needed (minLength)")
            if "maxLength" in schema and size > schema["maxLength"]:
                raise self.fail(path, f"is {size} UTF-8 bytes, at most {schema['maxLength']} allowed (maxLength)")
        if "minGraphemes" in schema or "maxGraphemes" in schema:
            from .._graphemes import grapheme_count

            count = grapheme_count(data)
            if count < schema.get("minGraphemes", 0):
                raise self.fail(path, f"is {count} graphemes, at least {schema['minGraphemes']} needed "
                                      f"(minGraphemes)")
            if "maxGraphemes" in schema and count > schema["maxGraphemes"]:
                raise self.fail(path, f"is {count} graphemes, at most {schema['maxGraphemes']} allowed "
                                      f"(maxGraphemes)")
        if "format" in schema:
            check = _check_format(schema["format"])
            if check is not None:
                try:
                    check(data)
                except InvalidIdentifier as exc:
                    raise self.fail(path, f"is not a valid {schema['format']} ({exc})") from None

    def t_bytes(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, dict) or set(data) != {"$bytes"} or not isinstance(data["$bytes"], str):
            raise self.fail(path, 'must be bytes: {"$bytes": "<base64>"}')
        text = data["$bytes"]
        try:
            size = len(base64.b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError):
            size = len(text) * 3 // 4
        if size < schema.get("minLength", 0):
            raise self.fail(path, f"is {size} bytes, at least {schema['minLength']} needed (minLength)")
        if "maxLength" in schema and size > schema["maxLength"]:
            raise self.fail(path, f"is {size} bytes, at most {schema['maxLength']} allowed (maxLength)")

    def t_cid_link(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, dict) or set(data) != {"$link"} or not isinstance(data["$link"], str):
            raise self.fail(path, 'must be a CID link: {"$link": "bafy..."}')

    def t_blob(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        legacy = isinstance(data, dict) and "$type" not in data and isinstance(data.get("cid"), str)
        if not isinstance(data, dict) or (data.get("$type") != "blob" and not legacy):
            raise self.fail(path, 'must be a blob ({"$type": "blob", "ref": ..., "mimeType": ..., "size": ...})')
        mime = data.get("mimeType")
        if not isinstance(mime, str):
            raise self.fail(path + ".mimeType", "must be a string")
        if not legacy:
            self.t_cid_link(data.get("ref"), {}, nsid, path + ".ref")
            size = data.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise self.fail(path + ".size", "must be a non-negative integer")
            if "maxSize" in schema and size > schema["maxSize"]:
                raise self.fail(path, f"is {size} bytes, at most {schema['maxSize']} allowed (maxSize)")
        accept = schema.get("accept")
        if accept and not any(pattern == "*/*" or fnmatch.fnmatchcase(mime, pattern) for pattern in accept):
            raise self.fail(path + ".mimeType", f"{mime!r} is not accepted here (accept: {', '.join(accept)})")

    def t_unknown(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, dict):
            raise self.fail(path, "must be an object")
        if "$bytes" in data or data.get("$type") == "blob":
            raise self.fail(path, "must be an object, not bytes or a blob")

    def t_array(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, list):
            raise self.fail(path, "must be an array")
        if len(data) < schema.get("minLength", 0):
            raise self.fail(path, f"has {len(data)} items, at least {schema['minLength']} needed (minLength)")
        if "maxLength" in schema and len(data) > schema["maxLength"]:
            raise self.fail(path, f"has {len(data)} items, at most {schema['maxLength']} allowed (maxLength)")
        for index, item in enumerate(data):
            self.value(item, schema["items"], nsid, f"{path}[{index}]")

    def t_object(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, dict):
            raise self.fail(path, "must be an object")
        nullable = set(schema.get("nullable", ()))
        for name in schema.get("required", ()):
            if name not in data:
                raise self.fail(f"{path}.{name}", "is required")
        for name, prop in schema.get("properties", {}).items():
            if name not in data:
                continue
            if data[name] is None and name in nullable:
                continue
            self.value(data[name], prop, nsid, f"{path}.{name}")

    def t_ref(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        self.ref(data, schema["ref"] if "#" not in schema["ref"] or schema["ref"][0] != "#"
                 else nsid + schema["ref"], nsid, path)

    def t_union(self, data: Any, schema: Mapping[str, Any], nsid: str, path: str) -> None:
        if not isinstance(data, dict):
            raise self.fail(path, "must be an object with a $type (union)")
        tag = data.get("$type")
        if not isinstance(tag, str):
            raise self.fail(path + ".$type", "is required in a union")
        refs = [nsid + ref if ref.startswith("#") else ref for ref in schema.get("refs", ())]
        normal = tag.removesuffix("#main")
        for ref in refs:
            if ref.removesuffix("#main") == normal:
                self.ref(data, ref, nsid, path)
                return
        if schema.get("closed"):
            raise self.fail(path + ".$type", f"{tag!r} is not one of {refs} (closed union)")
