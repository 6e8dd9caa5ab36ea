"""Keep secrets (passwords, JWTs, OAuth codes and verifiers, private keys, Authorization
headers) out of logs and the database."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_KEYS = frozenset(
    key.lower()
    for key in (
        "password",
        "accessJwt",
        "refreshJwt",
        "authorization",
        "authFactorToken",
        "token",
        "access_token",
        "refresh_token",
        "appPassword",
        "plcOp",
        "recoveryKey",
        # OAuth (token and PAR requests, stored logins)
        "code",
        "code_verifier",
        "pkce_verifier",
        "client_assertion",
        "client_secret",
        "id_token",
        "dpop_key",
        "private_key",
    )
)
# the private members of a JWK (EC "d", RSA's primes and exponents, a symmetric "k")
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# three base64url segments, the first two starting with a JSON object ("eyJ" = '{"')
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret fields and anything that looks like a JWT replaced."""
    if isinstance(value, dict):
        private = _PRIVATE_JWK_MEMBERS if "kty" in value else frozenset()
        return {
            key: REDACTED if str(key).lower() in _SECRET_KEYS or key in private else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """``text`` with every JWT-looking token replaced."""
    if "eyJ" not in text:
        return text
    return _JWT.sub(REDACTED, text)
