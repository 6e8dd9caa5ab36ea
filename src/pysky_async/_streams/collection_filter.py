"""Collection filters of a stream: an NSID (``app.bsky.feed.post``) or an NSID prefix (``app.bsky.feed.*``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .._exceptions import InvalidIdentifier, InvalidInput
from .._syntax import Nsid

_PREFIX = re.compile(r"[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*")
_EXPECTED = "expected an NSID such as 'app.bsky.feed.post' or a prefix ending in '.*' such as 'app.bsky.feed.*'"


def check_collection(value: str) -> str:
    """``value`` if it is an NSID or ``prefix.*`` (prefix: whole NSID segments); else ``InvalidInput``."""
    if not isinstance(value, str):
        raise InvalidInput(f"a collection filter must be a string, not {type(value).__name__}: {_EXPECTED}")
    if value.endswith(".*"):
        if len(value) <= 317 and _PREFIX.fullmatch(value[:-2]):
            return value
    else:
        try:
            return str(Nsid(value))
        except InvalidIdentifier:
            pass
    raise InvalidInput(f"{value!r} is not a collection filter: {_EXPECTED}")


def check_collections(values: Iterable[str] | None) -> list[str]:
    """Each of ``values`` checked by ``check_collection`` (a lone string is refused: pass a list)."""
    if isinstance(values, str):
        raise InvalidInput(f"collections takes a list of collection filters, not one string: "
                           f"collections=[{values!r}]")
    return [check_collection(value) for value in values or ()]
