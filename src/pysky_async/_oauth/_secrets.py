"""Secrets at rest: tokens and DPoP keys are encrypted (Fernet: AES-128-CBC + HMAC-SHA256,
from ``cryptography``) when the app gives a key, and stored as they are otherwise."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from .._exceptions import InvalidInput, StorageError

PREFIX = "fernet:"


class SecretBox:
    """Seals values before they are stored and opens them after they are read.

    Args:
        key: a Fernet key (``SecretBox.generate_key()``), or None to store values as they are.
    """

    def __init__(self, key: str | bytes | None) -> None:
        try:
            self._fernet = Fernet(key) if key else None
        except (ValueError, TypeError) as exc:
            raise InvalidInput("encryption_key must be a Fernet key: make one with "
                               "pysky_async.OAuth.generate_encryption_key()") from exc

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None:
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        if self._fernet is None:
            raise StorageError("the stored OAuth session is encrypted: pass the same encryption_key to "
                               "bsky.oauth.configure()")
        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode()).decode()
        except InvalidToken as exc:
            raise StorageError("the stored OAuth session does not decrypt with this encryption_key: "
                               "use the key it was stored with (or log the user in again)") from exc
