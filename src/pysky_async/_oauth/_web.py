"""What the FastAPI and aiohttp glue share: the signed login cookie and safe redirects."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from .._exceptions import InvalidInput

COOKIE_NAME = "pysky_did"


class LoginCookie:
    """A cookie naming the logged-in user's DID, signed with HMAC-SHA256 so a browser cannot
    claim another user. It holds no token: the session stays in the database.

    Args:
        secret: at least 32 bytes of the app's own secret.
        secure: send the cookie over HTTPS only (leave False only for loopback development).
    """

    def __init__(self, secret: str | bytes, *, secure: bool = True, name: str = COOKIE_NAME) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret
        if len(self._secret) < 32:
            raise InvalidInput("the login cookie secret must be at least 32 bytes (secrets.token_urlsafe(32))")
        self.secure = secure
        self.name = name

    def _mac(self, did: str) -> str:
        return hmac.new(self._secret, did.encode(), hashlib.sha256).hexdigest()

    def dump(self, did: str) -> str:
        return f"{did}|{self._mac(did)}"

    def load(self, value: str | None) -> str | None:
        """The DID in a cookie value, or None when it is missing or forged."""
        if not value or "|" not in value:
            return None
        did, mac = value.rsplit("|", 1)
        return did if hmac.compare_digest(mac, self._mac(did)) else None


def safe_next(value: str | None) -> str:
    """Where to send the browser after login: a path on this site only (no open redirect)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
