"""``CID``: a content identifier as a value (binary form inside, base32 string outside).

atproto links records, MST nodes and blobs by CIDv1 (sha2-256; ``dag-cbor`` or ``raw``). In
DAG-CBOR they travel as binary (tag 42), in JSON as ``{"$link": "bafy..."}``. Decoded repo
records carry ``CID`` values, so a link is never confused with a ``bytes`` field and prints as
its string. ``pysky_async.Cid`` (``_formats``) is the lexicon's *string* format; this is the value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Final

_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 varint at ``data[pos]`` and the position after it (CIDs, CAR sections).

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


def _check(raw: bytes) -> None:
    """Raise ValueError unless ``raw`` is a whole binary CIDv1 (version, codec, multihash)."""
    if raw[:1] != b"\x01":
        raise ValueError("not a CIDv1 (atproto uses version 1 only)")
    _codec, pos = read_varint(raw, 1)
    _code, pos = read_varint(raw, pos)
    size, pos = read_varint(raw, pos)
    if len(raw) - pos != size:
        raise ValueError(f"its multihash digest is {len(raw) - pos} bytes, it declares {size}")


_encode_cid: Callable[[bytes], str] | None = None
"""``libipld.encode_cid``, imported on first use (``import pysky_async`` stays cheap)."""


def _base32(raw: bytes) -> str:
    # multibase "b": RFC 4648 base32, lower case, unpadded. A CIDv1 goes through libipld's Rust
    # encoder (~2 us); base64.b32encode is a Python loop on 3.11 (~50 us, most of a backfill's
    # client CPU when every record's CID is printed). It parses the CID and ignores trailing
    # bytes, hence the length check; anything else takes the base64 path.
    global _encode_cid
    if raw[:1] == b"\x01":
        if _encode_cid is None:
            import libipld

            _encode_cid = libipld.encode_cid
        try:
            text = _encode_cid(raw)
        except ValueError:
            text = ""
        if len(text) == 1 + (len(raw) * 8 + 4) // 5:
            return text
    return "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


class CID:
    """An immutable CIDv1: ``CID.decode("bafy...")``, ``CID.from_bytes(b)``, ``bytes(cid)``, ``str(cid)``.

    ``str()`` is the base32 multibase form (``bafy...``), as atproto writes CIDs; equality and hash
    follow the binary form; ``json()`` is ``{"$link": str(cid)}``.
    """

    __slots__ = ("_raw", "_str")
    _raw: bytes
    _str: str

    DAG_CBOR: Final = 0x71
    RAW: Final = 0x55

    def __init__(self, raw: bytes) -> None:
        """Wrap a binary CID as is (``from_bytes`` checks it; this does not)."""
        object.__setattr__(self, "_raw", bytes(raw))

    @classmethod
    def from_bytes(cls, data: bytes) -> CID:
        """The CID of a binary CIDv1 (as in DAG-CBOR links and CAR sections).

        Raises:
            InvalidInput: not a whole CIDv1.
        """
        try:
            _check(bytes(data))
        except ValueError as exc:
            from ._exceptions import InvalidInput

            raise InvalidInput(f"not a binary CID ({exc}): {bytes(data)[:40].hex()}") from exc
        return cls(data)

    @classmethod
    def decode(cls, text: str) -> CID:
        """The CID of its string form (any multibase; atproto writes base32, ``b...``).

        Raises:
            InvalidInput: not a CIDv1 string (CIDv0 ``Qm...`` is not used by atproto).
        """
        import libipld

        from ._exceptions import InvalidInput

        if not isinstance(text, str):
            raise InvalidInput(f"CID.decode takes the string form of a CID, not {type(text).__name__}")
        try:
            _base, raw = libipld.decode_multibase(text)
            _check(raw)
        except ValueError as exc:
            raise InvalidInput(f"{text[:80]!r} is not a CIDv1 string ({exc}); atproto CIDs look like 'bafyrei...'"
                               ) from exc
        cid = cls(raw)
        return cid

    @property
    def codec(self) -> int:
        """The multicodec of the content: 0x71 ``dag-cbor`` (records, nodes), 0x55 ``raw`` (blobs)."""
        return read_varint(self._raw, 1)[0]

    def json(self) -> dict[str, str]:
        """The atproto JSON form: ``{"$link": "bafy..."}``."""
        return {"$link": str(self)}

    def __bytes__(self) -> bytes:
        return self._raw

    def __str__(self) -> str:
        try:
            return self._str
        except AttributeError:
            text = _base32(self._raw)
            object.__setattr__(self, "_str", text)
            return text

    def __repr__(self) -> str:
        return f"CID({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CID):
            return self._raw == other._raw
        return NotImplemented

    def __hash__(self) -> int:
        return hash((CID, self._raw))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("CID is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("CID is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (CID, (self._raw,))


_new = object.__new__
_set_raw: Any = CID.__dict__["_raw"].__set__


def cid_of(raw: bytes) -> CID:
    """A ``CID`` of binary CID bytes already checked (a CAR section's, a decoded link): the fast path."""
    cid = _new(CID)
    _set_raw(cid, raw)
    return cid
