"""AT Protocol identifiers as strict value types that validate on construction.

``Did``, ``Handle``, ``AtIdentifier``, ``Nsid``, ``RecordKey`` and ``Tid`` are ``str`` subclasses;
``AtUri`` parses ``at://`` URIs. They follow the atproto syntax specifications and accept exactly
the valid lines of the official interop test vectors (tests/conformance/). Nothing is trimmed or
guessed: bsky.app links, ``@handle`` and stray spaces go through the helpers in ``_lenient``.
Bad input raises ``InvalidIdentifier`` (a ``ValueError``) saying what was wrong, before any
request is made.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from ._exceptions import InvalidIdentifier

_C = TypeVar("_C", bound="_Checked")


class _Checked(str):
    """A string validated by ``PATTERN`` on construction."""

    PATTERN: ClassVar[re.Pattern[str]]
    KIND: ClassVar[str]
    EXAMPLE: ClassVar[str]
    MAX_LENGTH: ClassVar[int] = 2048
    HINT: ClassVar[str] = ""

    def __new__(cls: type[_C], value: str) -> _C:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise InvalidIdentifier(f"a {cls.KIND} must be a string, not {type(value).__name__}")
        if len(value) > cls.MAX_LENGTH or not cls.PATTERN.fullmatch(value) or not cls._valid(value):
            raise InvalidIdentifier(
                f"{value!r} is not a valid {cls.KIND} (expected something like {cls.EXAMPLE!r}){cls.HINT}")
        return str.__new__(cls, value)

    @classmethod
    def _valid(cls, value: str) -> bool:
        """Checks beyond ``PATTERN`` (subclasses override)."""
        return True


class Did(_Checked):
    """A DID: ``did:plc:...`` or ``did:web:...`` (any method is accepted)."""

    PATTERN = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
    KIND = "DID"
    EXAMPLE = "did:plc:z72i7hdynmk6r22z27h6tvur"

    @property
    def method(self) -> str:
        return self.split(":", 2)[1]


class Handle(_Checked):
    """A handle (a domain name), normalised to lower case. ``@`` and spaces are not accepted:
    use ``handle_from_text`` for typed input."""

    PATTERN = re.compile(
        r"([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    )
    KIND = "handle"
    EXAMPLE = "alice.bsky.social"
    MAX_LENGTH = 253
    HINT = "; for typed input such as ' @alice.bsky.social' use handle_from_text()"

    def __new__(cls, value: str) -> Handle:
        if isinstance(value, str) and not isinstance(value, cls):
            value = value.lower() if cls.PATTERN.fullmatch(value) else value
        return super().__new__(cls, value)


class AtIdentifier(_Checked):
    """An at-identifier: a DID or a handle (handles normalised to lower case)."""

    PATTERN = re.compile(rf"{Did.PATTERN.pattern}|{Handle.PATTERN.pattern}")
    KIND = "DID or handle"
    EXAMPLE = "alice.bsky.social"

    def __new__(cls, value: str) -> AtIdentifier:
        if isinstance(value, str) and not isinstance(value, cls):
            return super().__new__(cls, str(Did(value) if value.startswith("did:") else Handle(value)))
        return super().__new__(cls, value)


class Nsid(_Checked):
    """A namespaced identifier: ``app.bsky.feed.post``."""

    PATTERN = re.compile(
        r"[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
        r"\.[a-zA-Z][a-zA-Z0-9]{0,62}"
    )
    KIND = "NSID"
    EXAMPLE = "app.bsky.feed.post"
    MAX_LENGTH = 317


class RecordKey(_Checked):
    """A record key: 1-512 of ``[a-zA-Z0-9_~.:-]``, not ``.`` or ``..``."""

    PATTERN = re.compile(r"(?!\.{1,2}$)[a-zA-Z0-9_~.:-]{1,512}")
    KIND = "record key"
    EXAMPLE = "3jzfcijpj2z2a"


_B32 = "234567abcdefghijklmnopqrstuvwxyz"

# The reference PDS refuses record keys its slur filter matches (``hasExplicitSlur`` in
# @atproto/pds, handle/explicit-slurs.ts: "Unacceptable slur in record key"). Over the TID
# alphabet only one of its patterns can match (the others are anchored at word boundaries and
# cannot span 13 characters that start with 2-7 or a-j); this is that pattern restricted to the
# alphabet, checked against the PDS's own function in tests/conformance/test_tid_rkeys.py.
_REFUSED_BY_PDS = re.compile(r"n[ailo4][gq]{2}(?:l[3e]t|[3e]r)")


class Tid(_Checked):
    """A timestamp identifier: 13 base32-sortable characters (microseconds + clock id).

    ``Tid.next()`` makes a new one, strictly increasing within the process.
    """

    PATTERN = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
    KIND = "TID"
    EXAMPLE = "3jzfcijpj2z2a"

    _lock = threading.Lock()
    _last = 0

    @classmethod
    def next(cls, clock_id: int | None = None) -> Tid:
        """A new TID for now (never equal to or below the previous one from this process).

        Skips the rare values (about one in a million) the reference PDS refuses as record keys.
        """
        import random

        clock = random.randrange(1024) if clock_id is None else clock_id
        while True:
            with cls._lock:
                micros = max(time.time_ns() // 1000, cls._last + 1)
                cls._last = micros
            tid = cls.from_parts(micros, clock)
            if not _REFUSED_BY_PDS.search(tid):
                return tid

    @classmethod
    def from_parts(cls, timestamp_us: int, clock_id: int = 0) -> Tid:
        value = (timestamp_us << 10) | (clock_id & 0x3FF)
        chars = []
        for _ in range(13):
            chars.append(_B32[value & 31])
            value >>= 5
        return cls("".join(reversed(chars)))

    @property
    def _value(self) -> int:
        value = 0
        for char in self:
            value = (value << 5) | _B32.index(char)
        return value

    @property
    def timestamp_us(self) -> int:
        """Microseconds since the Unix epoch."""
        return self._value >> 10

    @property
    def clock_id(self) -> int:
        return self._value & 0x3FF


_AT_URI = re.compile(r"at://([^/?#\s]+)(?:/([^/?#\s]+)(?:/([^/?#\s]+))?)?")
MAX_AT_URI_LENGTH = 8192


@dataclass(frozen=True)
class AtUri:
    """``at://AUTHORITY[/COLLECTION[/RKEY]]``; the authority is a DID or a handle.

    ``AtUri.parse`` takes exactly that string (no query, fragment, trailing slash or spaces);
    links and other typed input go through ``at_uri_from_text``.
    """

    authority: str
    collection: str | None = None
    rkey: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.authority, str) and self.authority.startswith("at://"):
            raise InvalidIdentifier(f"AtUri({self.authority!r}) takes the parts of a URI: use AtUri.parse(...)")
        object.__setattr__(self, "authority", str(AtIdentifier(self.authority)))
        if self.collection is not None:
            Nsid(self.collection)
        if self.rkey is not None:
            if self.collection is None:
                raise InvalidIdentifier("an AT-URI with a record key needs a collection")
            RecordKey(self.rkey)

    @classmethod
    def parse(cls, value: str | AtUri) -> AtUri:
        """Parse an ``at://`` URI; raises InvalidIdentifier."""
        if isinstance(value, AtUri):
            return value
        if not isinstance(value, str):
            raise InvalidIdentifier(f"an AT-URI must be a string, not {type(value).__name__}")
        match = _AT_URI.fullmatch(value) if len(value) <= MAX_AT_URI_LENGTH else None
        if match is None:
            raise InvalidIdentifier(
                f"{value!r} is not an AT-URI: expected 'at://<did or handle>[/<collection>[/<rkey>]]' with no "
                "spaces, query, fragment or trailing slash (at_uri_from_text() takes links and typed input)"
            )
        try:
            return cls(*match.groups())
        except InvalidIdentifier as exc:
            raise InvalidIdentifier(f"{value!r} is not a valid AT-URI: {exc}") from None

    @property
    def has_did(self) -> bool:
        return self.authority.startswith("did:")

    def __str__(self) -> str:
        return "at://" + "/".join(p for p in (self.authority, self.collection, self.rkey) if p is not None)
