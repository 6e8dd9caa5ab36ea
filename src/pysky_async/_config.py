"""Client settings: keyword arguments first, then environment variables, then defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._exceptions import InvalidInput

DEFAULT_AUTH_HOST = "https://bsky.social"
DEFAULT_PUBLIC_HOST = "https://public.api.bsky.app"
CHAT_PROXY = "did:web:api.bsky.chat#bsky_chat"

PROXIED_SERVICES: dict[str, str] = {"api.bsky.chat": CHAT_PROXY}
"""Hosts that are reached through the PDS with an ``atproto-proxy`` header, never directly."""

PROXIED_NAMESPACES: dict[str, str] = {"chat.bsky.": CHAT_PROXY}
"""NSID prefixes whose calls are proxied by default."""

_NSID = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+\.[a-zA-Z][a-zA-Z0-9]{0,62}$")


@dataclass(frozen=True)
class ClientConfig:
    """The normalised settings of an AsyncBskyClient."""

    username: str | None
    password: str | None = field(repr=False)
    auth_host: str
    public_host: str
    database_url: str | None
    timeout: float

    @classmethod
    def from_options(
        cls,
        *,
        username: str | None,
        password: str | None,
        auth_host: str | None,
        public_host: str | None,
        database_url: str | None,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        env = os.environ if env is None else env
        return cls(
            username=username or env.get("BSKY_AUTH_USERNAME") or None,
            password=password or env.get("BSKY_AUTH_PASSWORD") or None,
            auth_host=normalize_host(auth_host or DEFAULT_AUTH_HOST),
            public_host=normalize_host(public_host or DEFAULT_PUBLIC_HOST),
            database_url=database_url,
            timeout=timeout,
        )


def normalize_host(host: str) -> str:
    """``"bsky.social"`` → ``"https://bsky.social"``; plain http is kept (local servers)."""
    host = host.strip().rstrip("/")
    if not host:
        raise InvalidInput("a host name cannot be empty")
    if "://" not in host:
        local = host.split(":")[0] in ("localhost", "127.0.0.1")
        host = ("http://" if local else "https://") + host
    if not host.startswith(("http://", "https://")):
        raise InvalidInput(f"{host!r} is not an http(s) URL")
    return host


def normalize_endpoint(endpoint: str) -> str:
    """Accept ``"app.bsky.actor.getProfile"``, ``"xrpc/app.bsky..."`` or ``"/xrpc/app.bsky..."``."""
    nsid = endpoint.strip().lstrip("/")
    nsid = nsid.removeprefix("xrpc/")
    if not _NSID.match(nsid):
        raise InvalidInput(
            f"{endpoint!r} is not an XRPC method name; expected an NSID such as "
            "'app.bsky.actor.getProfile'"
        )
    return nsid
