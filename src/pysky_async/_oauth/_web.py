"""What the FastAPI and aiohttp glue share: the login cookie and safe redirects."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .._exceptions import InvalidInput

if TYPE_CHECKING:
    from ._oauth import OAuth

COOKIE_NAME = "pysky_did"
DEFAULT_MAX_AGE = 30 * 24 * 3600
"""A login cookie's default lifetime: 30 days."""


class LoginCookie:
    """The login cookie: ``did|issued_at|nonce|HMAC-SHA256``. It holds no token (the session
    stays in the database) and is honoured only while its login is: signed with the app's
    secret (a browser cannot claim another user), younger than ``max_age``, and its nonce still
    stored in ``bsky_oauth_login`` (a logout deletes it, so a replayed old cookie is refused;
    each login gets a new nonce, so no two logins share a value).

    Args:
        secret: at least 32 bytes of the app's own secret.
        secure: send the cookie over HTTPS only (leave False only for loopback development).
        max_age: the lifetime in seconds (also the cookie's ``Max-Age``).
        clock: the time in epoch seconds (tests move it).
    """

    def __init__(self, secret: str | bytes, *, secure: bool = True, name: str = COOKIE_NAME,
                 max_age: int = DEFAULT_MAX_AGE, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret
        if len(self._secret) < 32:
            raise InvalidInput("the login cookie secret must be at least 32 bytes (secrets.token_urlsafe(32))")
        if max_age <= 0:
            raise InvalidInput("LoginCookie(max_age=...) is the cookie's lifetime in seconds: give a positive number")
        self.secure = secure
        self.name = name
        self.max_age = max_age
        self._clock = clock

    def __repr__(self) -> str:
        return f"LoginCookie(name={self.name!r}, secure={self.secure}, max_age={self.max_age})"

    def _mac(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    async def issue(self, oauth: OAuth, did: str) -> str:
        """A new login of ``did``: stores its nonce and returns the cookie value."""
        issued = int(self._clock())
        nonce = secrets.token_urlsafe(24)
        await oauth.logins.add(did, nonce, _utc(issued), _utc(issued + self.max_age))
        payload = f"{did}|{issued}|{nonce}"
        return f"{payload}|{self._mac(payload)}"

    def parse(self, value: str | None) -> tuple[str, str] | None:
        """``(did, nonce)`` of a well-signed cookie younger than ``max_age``, else None (no
        database read: ``check`` also asks whether the login still stands)."""
        parts = (value or "").rsplit("|", 3)
        if len(parts) != 4:
            return None
        did, issued, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac(f"{did}|{issued}|{nonce}")) or not issued.isdigit():
            return None
        if self._clock() >= int(issued) + self.max_age:
            return None
        return did, nonce

    async def check(self, oauth: OAuth, value: str | None) -> str | None:
        """The DID of a cookie whose login still stands; None when it is missing, forged,
        expired or logged out."""
        parsed = self.parse(value)
        if parsed is None:
            return None
        did, nonce = parsed
        return did if await oauth.logins.active(did, nonce, _utc(self._clock())) else None


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


def safe_next(value: str | None) -> str:
    """Where to send the browser after login: a path on this site only (no open redirect)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
