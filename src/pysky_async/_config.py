"""Client settings: keyword arguments first, then environment variables, then defaults."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidIdentifier, InvalidInput
from ._retry import RetryPolicy
from ._syntax import Did
from ._write_budget import WriteBudget

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ._middleware import Middleware

DEFAULT_AUTH_HOST = "https://bsky.social"
DEFAULT_PUBLIC_HOST = "https://public.api.bsky.app"
CHAT_PROXY = "did:web:api.bsky.chat#bsky_chat"
DEFAULT_PLC_DIRECTORY = "https://plc.directory"
DEFAULT_VIDEO_HOST = "https://video.bsky.app"
DEFAULT_WRITE_BUDGET = WriteBudget()
DEFAULT_RETRY = RetryPolicy()
DEFAULT_DEADLINE = 120.0
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
DEFAULT_CALL_LOG_MAX_PENDING = 100_000

PROXIED_SERVICES: dict[str, str] = {"api.bsky.chat": CHAT_PROXY}
"""Hosts that are reached through the PDS with an ``atproto-proxy`` header, never directly."""

PROXIED_NAMESPACES: dict[str, str] = {"chat.bsky.": CHAT_PROXY}
"""NSID prefixes whose calls are proxied by default."""

LABELED_NAMESPACES: tuple[str, ...] = ("app.bsky.",)
"""NSID prefixes of AppView calls, which carry ``atproto-accept-labelers`` when ``labelers`` is set."""

_NSID = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+\.[a-zA-Z][a-zA-Z0-9]{0,62}$")


@dataclass(frozen=True)
class ClientConfig:
    """Every option of an AsyncBskyClient, normalised (see ``AsyncBskyClient`` for each one).

    Frozen: ``bsky.with_options(...)`` makes a client with a changed copy.
    """

    username: str | None
    password: str | None = field(repr=False)
    auth_host: str
    public_host: str
    database_url: str | None = field(repr=False)
    engine: AsyncEngine | None = field(default=None, repr=False, compare=False)
    http_client: httpx.AsyncClient | None = field(default=None, repr=False, compare=False)
    middleware: tuple[Middleware, ...] = ()
    timeout: float | None = None
    deadline: float = DEFAULT_DEADLINE
    attempt_deadline: float | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    auto_migrate: bool | None = None
    plc_directory: str = DEFAULT_PLC_DIRECTORY
    write_budget: WriteBudget | None = DEFAULT_WRITE_BUDGET
    retry: RetryPolicy | None = DEFAULT_RETRY
    request_limit: tuple[int, float] | None = (3000, 300.0)
    image_max_bytes: int = 1_000_000
    video_host: str = DEFAULT_VIDEO_HOST
    video_service_did: str | None = None
    call_log_max_pending: int = DEFAULT_CALL_LOG_MAX_PENDING
    labelers: tuple[str, ...] = ()
    allow_private_did_web: bool = False

    @classmethod
    def from_options(
        cls,
        *,
        username: str | None = None,
        password: str | None = None,
        auth_host: str | None = None,
        public_host: str | None = None,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> ClientConfig:
        """Keyword arguments first, then environment variables (``ENVIRONMENT``), then defaults."""
        env = os.environ if env is None else env
        for option, variable in ENVIRONMENT.items():
            if options.get(option) is None and env.get(variable):
                options[option] = _from_env(option, variable, env[variable])
        options = {key: value for key, value in options.items() if value is not None or key not in _NONE_IS_DEFAULT}
        return cls(
            username=username or env.get("BSKY_AUTH_USERNAME") or None,
            password=password or env.get("BSKY_AUTH_PASSWORD") or None,
            auth_host=normalize_host(auth_host or env.get("PYSKY_AUTH_HOST") or DEFAULT_AUTH_HOST),
            public_host=normalize_host(public_host or env.get("PYSKY_PUBLIC_HOST") or DEFAULT_PUBLIC_HOST),
            database_url=database_url,
            **_normalised(options),
        )

    def replace(self, **changes: Any) -> ClientConfig:
        """A copy with some options changed (normalised as in ``from_options``)."""
        return dataclasses.replace(self, **_normalised(changes))


def _normalised(options: dict[str, Any]) -> dict[str, Any]:
    """Middleware as a tuple, hosts as URLs (``"bsky.social"`` → ``"https://bsky.social"``)."""
    if "middleware" in options:
        options["middleware"] = tuple(options["middleware"])
    for host in ("public_host", "plc_directory", "video_host"):
        if options.get(host) is not None:
            options[host] = normalize_host(options[host])
    if "labelers" in options:
        options["labelers"] = normalize_labelers(options["labelers"])
    return options


def normalize_labelers(labelers: str | Iterable[str] | None) -> tuple[str, ...]:
    """Labeler DIDs (each optionally ``did;redact``) as a tuple; a string is split on commas
    (``PYSKY_LABELERS="did:plc:a;redact,did:plc:b"``)."""
    if labelers is None:
        return ()
    if isinstance(labelers, str):
        labelers = labelers.split(",")
    normalized = []
    for entry in labelers:
        if not isinstance(entry, str):
            raise InvalidInput(f"labelers: {entry!r} is not a labeler's DID; pass DIDs (strings), each optionally "
                               "followed by ';redact'")
        if not entry.strip():
            continue
        did, *flags = (part.strip() for part in entry.split(";"))
        try:
            Did(did)
        except InvalidIdentifier as exc:
            raise InvalidInput(f"labelers: {entry!r} is not a labeler's DID ({exc}); pass DIDs, each optionally "
                               "followed by ';redact'") from None
        if any(flag != "redact" for flag in flags):
            raise InvalidInput(f"labelers: {entry!r}: the only flag a labeler takes is ';redact' (its "
                               "takedown-style labels then remove the content instead of marking it)")
        normalized.append(f"{did};redact" if flags else did)
    return tuple(normalized)


ENVIRONMENT: dict[str, str] = {
    "timeout": "PYSKY_TIMEOUT",
    "deadline": "PYSKY_DEADLINE",
    "attempt_deadline": "PYSKY_ATTEMPT_DEADLINE",
    "max_response_bytes": "PYSKY_MAX_RESPONSE_BYTES",
    "call_log_max_pending": "PYSKY_CALL_LOG_MAX_PENDING",
    "plc_directory": "PYSKY_PLC_DIRECTORY",
    "video_host": "PYSKY_VIDEO_HOST",
    "video_service_did": "PYSKY_VIDEO_SERVICE_DID",
    "image_max_bytes": "PYSKY_IMAGE_MAX_BYTES",
    "labelers": "PYSKY_LABELERS",
    "allow_private_did_web": "PYSKY_ALLOW_PRIVATE_DID_WEB",
}
"""Options (besides the account, hosts and database) that a deployment sets in the environment."""

_NONE_IS_DEFAULT = frozenset({"plc_directory", "video_host", "image_max_bytes", "deadline", "max_response_bytes",
                              "call_log_max_pending", "labelers", "allow_private_did_web"})
"""Options whose None means "the default" (for the others None means "off" or "automatic")."""


_SECONDS = frozenset({"timeout", "deadline", "attempt_deadline"})
_COUNTS = frozenset({"image_max_bytes", "max_response_bytes", "call_log_max_pending"})
_FLAGS = frozenset({"allow_private_did_web"})
_YES, _NO = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})


def _from_env(option: str, variable: str, value: str) -> Any:
    if option in _FLAGS:
        if value.strip().lower() not in _YES | _NO:
            raise InvalidInput(f"{variable}={value!r}: use 1 (on) or 0 (off)")
        return value.strip().lower() in _YES
    if option not in _SECONDS | _COUNTS:
        return value
    try:
        number = float(value) if option in _SECONDS else int(value)
    except ValueError:
        raise InvalidInput(f"{variable}={value!r} is not a number") from None
    if number <= 0:
        raise InvalidInput(f"{variable}={value!r} must be positive")
    return number


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
