"""Read a JWT's claims (without verifying it: the server does that) to see when it expires."""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def claims(token: str) -> dict[str, Any]:
    """The decoded payload of a JWT, or {} when it cannot be read."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def expires_soon(token: str, *, now: float | None = None) -> bool:
    """True when the token is expired or within 10% of its lifetime (at most 60 s) of it."""
    payload = claims(token)
    exp = payload.get("exp")
    if not isinstance(exp, (int, float)):
        return False
    iat = payload.get("iat")
    lifetime = exp - iat if isinstance(iat, (int, float)) and iat < exp else 600
    margin = min(60.0, lifetime * 0.1)
    return (time.time() if now is None else now) >= exp - margin
