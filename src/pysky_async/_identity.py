"""Identity: handle → DID, DID → DID document (PLC directory or did:web), with a TTL cache."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from ._exceptions import IdentityNotFound, InvalidInput, NetworkError
from ._lenient import handle_from_text
from ._session import pds_endpoint_from_did_doc
from ._syntax import Did

if TYPE_CHECKING:
    from ._client import AsyncBskyClient

DEFAULT_PLC_DIRECTORY = "https://plc.directory"


class IdentityResolver:
    """Resolves handles and DIDs and caches the answers for ``ttl`` seconds.

    Handles resolve through ``com.atproto.identity.resolveHandle`` on the client's server;
    ``did:plc`` through the PLC directory; ``did:web`` through ``/.well-known/did.json``.
    """

    def __init__(self, client: AsyncBskyClient, *, plc_directory: str = DEFAULT_PLC_DIRECTORY,
                 ttl: float = 300.0) -> None:
        self.client = client
        self.plc_directory = plc_directory.rstrip("/")
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Any]] = {}

    def _cached(self, key: str) -> Any:
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def _store(self, key: str, value: Any) -> Any:
        self._cache[key] = (time.monotonic() + self.ttl, value)
        return value

    async def resolve_handle(self, handle: str) -> str:
        """The DID a handle points to."""
        handle = handle_from_text(handle)  # people type "@alice.bsky.social"
        cached = self._cached("handle:" + handle)
        if cached is not None:
            return str(cached)
        response = await self.client.get("com.atproto.identity.resolveHandle", handle=handle)
        return str(self._store("handle:" + handle, Did(response.raw["did"])))

    async def resolve_did(self, did: str) -> dict[str, Any]:
        """The DID document of a ``did:plc`` or ``did:web`` DID."""
        did = Did(did)
        cached = self._cached("did:" + did)
        if cached is not None:
            return dict(cached)
        if did.method == "plc":
            url = f"{self.plc_directory}/{did}"
        elif did.method == "web":
            host = did.split(":", 2)[2].replace("%3A", ":")
            scheme = "http" if host.split(":")[0] in ("localhost", "127.0.0.1") else "https"
            url = f"{scheme}://{host}/.well-known/did.json"
        else:
            raise InvalidInput(f"{did}: only did:plc and did:web can be resolved")
        try:
            response = await self.client.http.get(url)
        except httpx.TransportError as exc:
            raise NetworkError(f"could not reach {url} to resolve {did}: {exc!r}") from exc
        if response.status_code != 200:
            raise IdentityNotFound(response.status_code, "DidNotFound",
                                   f"{did} did not resolve at {url}", endpoint="resolve_did")
        document = response.json()
        if not isinstance(document, dict) or document.get("id") != did:
            raise IdentityNotFound(502, "BadDidDocument", f"{url} returned no DID document for {did}",
                                   endpoint="resolve_did")
        return dict(self._store("did:" + did, document))

    async def pds_endpoint(self, did: str) -> str:
        """The PDS URL in a DID's document."""
        endpoint = pds_endpoint_from_did_doc(await self.resolve_did(did))
        if endpoint is None:
            raise IdentityNotFound(404, "NoPds", f"the DID document of {did} names no PDS",
                                   endpoint="resolve_did")
        return endpoint

    async def handle_of(self, did: str) -> str | None:
        """The handle claimed in a DID document (``alsoKnownAs: at://<handle>``), unverified."""
        for aka in (await self.resolve_did(did)).get("alsoKnownAs") or []:
            if isinstance(aka, str) and aka.startswith("at://"):
                return aka[len("at://"):]
        return None
