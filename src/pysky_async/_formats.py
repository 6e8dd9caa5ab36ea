"""The atproto string formats beyond identifiers: ``Datetime``, ``Language``, ``Cid``, ``Uri``.

Strict ``str`` value types like those in ``_syntax``, following the Lexicon format rules and the
official interop test vectors (tests/conformance/). Bad input raises ``InvalidIdentifier``.
"""

from __future__ import annotations

import datetime as dt
import re

from ._exceptions import InvalidIdentifier
from ._syntax import _Checked

_DATETIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[012])-(?P<day>[0-2][0-9]|3[01])"
    r"T(?P<hour>[01][0-9]|2[0-3]):(?P<minute>[0-5][0-9]):(?P<second>[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?P<offset>Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)


class Datetime(_Checked):
    """An atproto datetime: RFC 3339 and ISO 8601 at once, e.g. ``1985-04-12T23:20:50.123Z``.

    Upper-case ``T`` and ``Z``, seconds required, a time zone required (``Z`` or ``±hh:mm``, never
    ``-00:00``), a real calendar date, not before year 0 once normalised to UTC.
    ``Datetime.of(datetime)`` formats an aware ``datetime`` the preferred way.
    """

    PATTERN = _DATETIME
    KIND = "datetime"
    EXAMPLE = "1985-04-12T23:20:50.123Z"
    MAX_LENGTH = 64

    @classmethod
    def _valid(cls, value: str) -> bool:
        if value.endswith("-00:00"):
            return False
        parts = _DATETIME.fullmatch(value)
        assert parts is not None
        year, month, day, hour, minute, second = (int(parts[name]) for name in
                                                  ("year", "month", "day", "hour", "minute", "second"))
        if second == 60:
            return False  # a leap second does not parse as an ISO 8601 instant
        try:
            dt.date(max(year, 1), month, day)
        except ValueError:
            return False
        if year == 0:  # only reachable as 0000-..., valid unless the offset moves it before year 0
            offset = parts["offset"]
            return offset == "Z" or offset[0] == "-" or (month, day, hour, minute) >= (1, 1, int(offset[1:3]),
                                                                                         int(offset[4:6]))
        return True

    @classmethod
    def of(cls, moment: dt.datetime) -> Datetime:
        """``moment`` (timezone-aware) in UTC with milliseconds: ``2024-05-01T12:00:00.000Z``."""
        if moment.tzinfo is None:
            raise InvalidIdentifier(f"{moment!r} has no time zone: pass an aware datetime (tzinfo=timezone.utc)")
        return cls(moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"))


_GRANDFATHERED = (
    "en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn|i-tao|i-tay|i-tsu|"
    "sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
)
_LANGTAG = (
    r"(?P<language>[a-z]{2,3}(?:-[A-Za-z]{3}(?:-[A-Za-z]{3}){0,2})?)"
    r"(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)"
    r"(?P<extensions>(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*)"
    r"(?:-[xX](?:-[A-Za-z0-9]{1,8})+)?"
)


class Language(_Checked):
    """A BCP 47 language tag as atproto checks it: ``en``, ``pt-BR``, ``zh-Hant``, ``i-default``.

    The primary language subtag is 2-3 lower-case letters; a variant or an extension singleton
    may not repeat (RFC 5646 §2.2.9).
    """

    PATTERN = re.compile(rf"(?P<grandfathered>{_GRANDFATHERED})|{_LANGTAG}|[xX](?:-[A-Za-z0-9]{{1,8}})+")
    KIND = "language tag"
    EXAMPLE = "pt-BR"
    MAX_LENGTH = 128

    @classmethod
    def _valid(cls, value: str) -> bool:
        parts = cls.PATTERN.fullmatch(value)
        assert parts is not None
        if parts["language"] is None:
            return True  # grandfathered or private use only
        variants = parts["variants"].lower().split("-")[1:]
        singletons = [s for s in parts["extensions"].lower().split("-")[1:] if len(s) == 1]
        return len(set(variants)) == len(variants) and len(set(singletons)) == len(singletons)


class Cid(_Checked):
    """A CID in string form (CIDv1, any multibase); only the syntax is checked, not the hash."""

    PATTERN = re.compile(r"(?!Qmb)[a-zA-Z0-9+=]{8,256}")
    KIND = "CID"
    EXAMPLE = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


class Uri(_Checked):
    """A generic URI (an RFC 3986 scheme, ``:``, no whitespace), at most 8 KB, as Lexicon's ``uri`` format."""

    PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:(?://)?[^\s/][^\s]*")
    KIND = "URI"
    EXAMPLE = "https://example.com/path"
    MAX_LENGTH = 8192
