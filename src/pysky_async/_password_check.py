"""A salted, slow hash of the password a stored session was made with (never the password),
so a client given another password notices and logs in with it instead of silently using
the stored session (``AsyncBskyClient(password="wrong")`` would otherwise never be checked)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1  # scrypt's interactive-login cost: ~50 ms, 16 MiB


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)


async def make_check(password: str) -> str:
    """``scrypt$<salt>$<hash>`` of ``password`` (computed off the event loop)."""
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_scrypt, password, salt)
    return f"scrypt${_b64(salt)}${_b64(digest)}"


async def matches(password: str, check: str) -> bool:
    """Whether ``password`` is the one ``check`` was made from (an unreadable check: no)."""
    try:
        scheme, salt, digest = check.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = await asyncio.to_thread(_scrypt, password, _unb64(salt))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
