"""What the generated models stand on: the Struct bases, blobs and links, and decoding with an
open ``$type`` union (an unknown ``$type`` becomes the untyped ``JsonObject``, never an error).

Decoding runs msgspec over the bytes with the closed unions the models declare (the fast path).
Only when that fails, the answer is decoded to plain JSON and the model is built member by member,
putting a ``JsonObject`` wherever an open union meets a ``$type`` this version does not know.

A lexicon ``unknown`` field (``PostView.record``, ``ViewRecord.value``, ``GetRecordOutput.value``)
is decoded lazily: msgspec keeps its JSON as ``msgspec.Raw`` and the field becomes a ``dict`` on
first access (``lazy_json``). Records were ~30 % of a timeline's typed decode. Until then the model
holds a reference to the answer's bytes; ``lex.encode`` writes the raw JSON back unchanged, while
``msgspec.structs.asdict``/``msgspec.to_builtins`` see the ``msgspec.Raw`` of a field not yet read.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import msgspec

if TYPE_CHECKING:
    from .._response import JsonObject

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


# gc=False: the garbage collector does not track the models (a 50-post timeline is ~1,500 of
# them; tracked, its decode took 10-45 % longer here). They hold trees of JSON values and never
# cycles; a cycle built by hand out of models would not be collected.


class LexObject(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="$type", gc=False):
    """A lexicon object or record: tagged with its ``$type`` (written when encoded)."""


class LexBody(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """The JSON body of a query's output or a procedure's input (no ``$type``)."""


class CidLink(msgspec.Struct, frozen=True, gc=False):
    """A CID link, ``{"$link": "bafy..."}`` on the wire."""

    link: str = msgspec.field(name="$link")


class Bytes(msgspec.Struct, frozen=True, gc=False):
    """Bytes, ``{"$bytes": "<base64>"}`` on the wire."""

    base64: str = msgspec.field(name="$bytes")


class Blob(LexObject, tag="blob"):
    """A blob reference; ``cid`` is set instead of ``ref``/``size`` in legacy records."""

    mime_type: str = msgspec.field(name="mimeType")
    ref: CidLink | None = None
    size: int | None = None
    cid: str | None = None


if TYPE_CHECKING:
    Unknown = JsonObject
else:
    class Unknown(LexObject, tag="\x00unknown"):
        """Stands for ``JsonObject`` in open unions at run time: no answer carries this ``$type``,
        so msgspec's closed union fails on an unknown one and ``decode`` takes the lenient path."""


_UNKNOWN: Any = Unknown  # the run-time sentinel (mypy sees JsonObject)


# -- lazy ``unknown`` fields -----------------------------------------------------------

if TYPE_CHECKING:
    LazyJson: TypeAlias = dict[str, Any]
    OptionalLazyJson: TypeAlias = dict[str, Any] | None
else:  # msgspec keeps the JSON undecoded (`Raw | None` would not decode an object: the field defaults to None)
    LazyJson = OptionalLazyJson = msgspec.Raw

_json_object: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(dict[str, Any])
_json_object_or_none: msgspec.json.Decoder[dict[str, Any] | None] = msgspec.json.Decoder(dict[str, Any] | None)


class _LazyJsonField:
    """A data descriptor over a Struct's slot: a ``msgspec.Raw`` found there is decoded to the
    JSON object it holds (once; the object replaces it in the slot), anything else is returned."""

    __slots__ = ("decoder", "slot", "where")

    def __init__(self, slot: Any, decoder: msgspec.json.Decoder[Any], where: str) -> None:
        self.slot, self.decoder, self.where = slot, decoder, where

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        value = self.slot.__get__(obj, owner)
        if type(value) is msgspec.Raw:
            try:
                value = self.decoder.decode(value)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                from .._exceptions import InvalidResponse

                raise InvalidResponse(f"{self.where} is not a JSON object ({exc}); the raw answer stays "
                                      f"reachable with get()/post()") from None
            self.slot.__set__(obj, value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        self.slot.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        self.slot.__delete__(obj)


def load_lazy(value: Any) -> None:
    """Decode every lazy field of a model still holding raw JSON (not of nested models)."""
    for name in getattr(type(value), "__lazy_json__", ()):
        getattr(value, name)


def lazy_json(*names: str) -> Callable[[type[S]], type[S]]:
    """Class decorator of the generated models: the named ``unknown`` fields decode on first access.

    Equality and ``repr`` decode them first, so a model compares and prints as if decoded eagerly.
    """

    def decorate(cls: type[S]) -> type[S]:
        defaults = dict(zip(cls.__struct_fields__[len(cls.__struct_fields__) - len(cls.__struct_defaults__):],
                            cls.__struct_defaults__, strict=True))
        for name in names:
            optional = defaults.get(name, msgspec.NODEFAULT) is not msgspec.NODEFAULT
            decoder = _json_object_or_none if optional else _json_object
            setattr(cls, name, _LazyJsonField(cls.__dict__[name], decoder, f"{cls.__name__}.{name}"))
        cls.__lazy_json__ = names  # type: ignore[attr-defined]
        struct_eq, struct_repr = cls.__eq__, cls.__repr__

        def __eq__(self: Any, other: object) -> bool:
            load_lazy(self)
            load_lazy(other)
            return struct_eq(self, other)

        def __repr__(self: Any) -> str:
            load_lazy(self)
            return struct_repr(self)

        cls.__eq__ = __eq__  # type: ignore[method-assign]
        cls.__repr__ = __repr__  # type: ignore[method-assign]
        return cls

    return decorate


def __getattr__(name: str) -> Any:
    if name == "JsonObject":  # lazily: the response module imports httpx
        from .._response import JsonObject

        return JsonObject
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(content: bytes, type_: type[T]) -> T:
    """JSON bytes as ``type_``; an open union's unknown ``$type`` becomes a ``JsonObject``.

    Raises ``msgspec.ValidationError``/``msgspec.DecodeError`` when the JSON does not fit the
    model otherwise (a required field missing, a wrong type); ``read`` wraps them.
    """
    if not isinstance(content, (bytes, str)):  # lazy fields keep a view of it: not of a buffer that may change
        content = bytes(content)
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(content)  # type: ignore[no-any-return]
    except msgspec.ValidationError:
        return build(type_, msgspec.json.decode(content))  # type: ignore[no-any-return]


def convert(value: Any, type_: type[T]) -> T:
    """Already-decoded JSON (a dict) as ``type_``, with the same open unions as ``decode``."""
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError:
        return build(type_, value)  # type: ignore[no-any-return]


def encode(value: Any) -> bytes:
    """A model (or dicts and lists of them) as JSON bytes; ``JsonObject`` members as their dict."""
    return msgspec.json.encode(value, enc_hook=_enc_hook)


def _enc_hook(value: Any) -> Any:
    raw = getattr(value, "raw", None)
    if isinstance(raw, dict):  # a JsonObject
        return raw
    if isinstance(value, Mapping):
        return dict(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


# -- the lenient path ------------------------------------------------------------------

_fields: dict[type, tuple[msgspec.structs.FieldInfo, ...]] = {}


def build(type_: Any, value: Any) -> Any:
    """Build ``type_`` from plain JSON, member by member (slow; only after the fast path failed)."""
    if type_ is Any:
        return value
    if type_ is msgspec.Raw:  # a lazy ``unknown`` field: already decoded here
        if value is not None and not isinstance(value, dict):
            raise msgspec.ValidationError(f"expected an object, got {type(value).__name__}")
        return value
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return _build_struct(type_, value)
    origin = typing.get_origin(type_)
    if origin is typing.Union or origin is types.UnionType:
        return _build_union(typing.get_args(type_), value)
    if origin is list:
        if not isinstance(value, list):
            raise msgspec.ValidationError(f"expected an array, got {type(value).__name__}")
        (item,) = typing.get_args(type_)
        return [build(item, element) for element in value]
    return msgspec.convert(value, type_)


def _build_struct(cls: type[msgspec.Struct], value: Any) -> Any:
    if not isinstance(value, dict):
        raise msgspec.ValidationError(f"expected an object for {cls.__name__}, got {type(value).__name__}")
    fields = _fields.get(cls)
    if fields is None:
        fields = _fields[cls] = msgspec.structs.fields(cls)
    kwargs = {}
    for info in fields:
        if info.encode_name in value:
            kwargs[info.name] = build(info.type, value[info.encode_name])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field missing
        raise msgspec.ValidationError(f"{cls.__name__}: {exc}") from None


def _build_union(members: tuple[Any, ...], value: Any) -> Any:
    if value is None and type(None) in members:
        return None
    structs = [m for m in members if isinstance(m, type) and issubclass(m, msgspec.Struct)]
    if isinstance(value, dict) and structs:
        tag = value.get("$type")
        if isinstance(tag, str) and tag.endswith("#main"):
            tag = tag[: -len("#main")]
        for cls in structs:
            if cls is not _UNKNOWN and cls.__struct_config__.tag == tag:
                return _build_struct(cls, value)
        if _UNKNOWN in structs:
            from .._response import JsonObject

            return JsonObject(value)
        if len(structs) == 1:  # a plain optional ref: its $type (if any) is not checked here
            return _build_struct(structs[0], value)
        raise msgspec.ValidationError(f"unknown $type {tag!r} in a closed union")
    for member in members:
        if member is type(None) or member in structs:
            continue
        try:
            return build(member, value)
        except msgspec.ValidationError:
            continue
    raise msgspec.ValidationError(f"{type(value).__name__} matches none of {members}")
