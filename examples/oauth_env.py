"""The examples' OAuth settings from the environment (development: a loopback client)."""

from __future__ import annotations

import os
import secrets

from pysky_async import OAuthApp


def oauth_from_env() -> tuple[OAuthApp | None, str]:
    """A loopback OAuth app when ``BSKY_OAUTH_REDIRECT_URI`` is set, and the login cookie secret
    (``BSKY_OAUTH_COOKIE_SECRET``, else a random one: logins then last until a restart)."""
    redirect_uri = os.environ.get("BSKY_OAUTH_REDIRECT_URI")
    secret = os.environ.get("BSKY_OAUTH_COOKIE_SECRET") or secrets.token_urlsafe(32)
    return (OAuthApp.loopback(redirect_uri) if redirect_uri else None), secret


def encryption_key_from_env() -> str | None:
    """The key the OAuth tokens are encrypted with at rest (``BSKY_OAUTH_ENCRYPTION_KEY``; generate it
    once: ``python -c "from pysky_async import OAuth; print(OAuth.generate_encryption_key())"``)."""
    return os.environ.get("BSKY_OAUTH_ENCRYPTION_KEY") or None
