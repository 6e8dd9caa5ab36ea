"""Identity: handle → DID, DID → DID document (PLC directory or did:web), with a bounded, single-flight TTL cache.

Every lookup is a call through the client's pipeline (and so in the call log); DID documents
are fetched with a non-XRPC ``path`` and skip the session, cursor and write budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._config import DEFAULT_PLC_DIRECTORY
from ._exceptions import BadRequest, IdentityNotFound, InvalidInput
from ._lenient import handle_from_text
from ._middleware import NO_ACCOUNT
from ._request import XrpcRequest
from ._syntax import Did
from ._ttl_cache import TtlCache

if TYPE_CHECKING:
    from ._xrpc import Xrpc


def pds_endpoint_from_did_doc(did_doc: Any) -> str | None:
    """The ``#atproto_pds`` service endpoint of a DID document, if it has one."""
    if not isinstance(did_doc, dict):
        return None
    for service in did_doc.get("service") or []:
        if (
            isinstance(service, dict)
            and str(service.get("id", "")).endswith("#atproto_pds")
            and service.get("type") == "AtprotoPersonalDataServer"
            and isinstance(service.get("serviceEndpoint"), str)
        ):
            return str(service["serviceEndpoint"]).rstrip("/")
    return None


RESOLVE_DID = "resolve_did"
"""The ``endpoint`` of DID document fetches in the call log (they are not XRPC calls)."""


class IdentityResolver:
    """Resolves handles and DIDs and caches the answers (``bsky.identity``).

    Handles resolve through ``com.atproto.identity.resolveHandle`` on the client's server;
    ``did:plc`` through the PLC directory; ``did:web`` through ``/.well-known/did.json``.

    Args:
        ttl: seconds an answer is kept.
        max_entries: answers kept at most (handles and DID documents together; the least
            recently used go first).
        clock: the time source of the TTL (``time.monotonic``).

    Concurrent lookups of the same handle or DID make one request and share its answer.
    """

    def __init__(self, xrpc: Xrpc, *, plc_directory: str = DEFAULT_PLC_DIRECTORY, ttl: float = 300.0,
                 max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._xrpc = xrpc
        self.plc_directory = plc_directory.rstrip("/")
        self._cache: TtlCache[str, Any] = TtlCache(ttl=ttl, max_entries=max_entries, clock=clock)

    @property
    def ttl(self) -> float:
        """Seconds an answer is kept."""
        return self._cache.ttl

    @property
    def max_entries(self) -> int:
        """Answers kept at most."""
        return self._cache.max_entries

    async def resolve_handle(self, handle: str) -> str:
        """The DID a handle points to."""
        handle = handle_from_text(handle)  # people type "@alice.bsky.social"
        return str(await self._cache.get_or_load("handle:" + handle, lambda: self._fetch_handle(handle)))

    async def _fetch_handle(self, handle: str) -> str:
        try:
            response = await self._xrpc.get("com.atproto.identity.resolveHandle", handle=handle)
        except BadRequest as exc:  # HandleNotFound, or the reference PDS's "Unable to resolve handle"
            raise IdentityNotFound(f"the handle {handle} does not resolve to a DID ({exc.message or exc.error})",
                                   identifier=handle, reason="not_found", status_code=exc.status_code) from exc
        [did] = response.require("did")
        return Did(did)

    async def resolve_did(self, did: str, *, fresh: bool = False) -> dict[str, Any]:
        """The DID document of a ``did:plc`` or ``did:web`` DID (``fresh=True``: fetched again, not
        from the cache, e.g. after a signature failed because the key may have rotated)."""
        did = Did(did)
        if fresh:
            document = await self._fetch_did(did)
            self._cache.put("did:" + did, document)
            return dict(document)
        return dict(await self._cache.get_or_load("did:" + did, lambda: self._fetch_did(did)))

    async def _fetch_did(self, did: Did) -> dict[str, Any]:
        own = await self._own_did_document(did)
        if own is not None:
            return own
        if did.method == "plc":
            host, path = self.plc_directory, f"/{did}"
        elif did.method == "web":
            bare = did.split(":", 2)[2].replace("%3A", ":")
            scheme = "http" if bare.split(":")[0] in ("localhost", "127.0.0.1") else "https"
            host, path = f"{scheme}://{bare}", "/.well-known/did.json"
        else:
            raise InvalidInput(f"{did}: only did:plc and did:web can be resolved")
        request = XrpcRequest("GET", RESOLVE_DID, host, path=path, skip=NO_ACCOUNT)
        response = await self._xrpc.send_unchecked(request)
        url = host + path
        if response.status_code != 200:
            raise IdentityNotFound(f"{did} did not resolve at {url} (HTTP {response.status_code})",
                                   identifier=did, reason="not_found", status_code=response.status_code)
        try:
            document = json.loads(response.content)
        except ValueError:
            document = None
        if not isinstance(document, dict) or document.get("id") != did:
            raise IdentityNotFound(f"{url} returned no DID document for {did}", identifier=did,
                                   reason="bad_document")
        return document

    async def _own_did_document(self, did: str) -> dict[str, Any] | None:
        """The logged-in account's DID document as its PDS hands it out (``getSession``), so the
        account's own identity never depends on the PLC directory being configured."""
        session = self._xrpc.sessions.session
        if session is None or session.did != did:
            return None
        document = (await self._xrpc.get("com.atproto.server.getSession")).raw.get("didDoc")
        return document if isinstance(document, dict) and document.get("id") == did else None

    async def pds_endpoint(self, did: str) -> str:
        """The PDS URL in a DID's document (the logged-in account's: the session's PDS)."""
        session = self._xrpc.sessions.session
        if session is not None and session.did == did:
            return session.pds_endpoint
        endpoint = pds_endpoint_from_did_doc(await self.resolve_did(did))
        if endpoint is None:
            raise IdentityNotFound(f"the DID document of {did} names no PDS", identifier=did, reason="no_pds")
        return endpoint

    async def handle_of(self, did: str) -> str | None:
        """The handle claimed in a DID document (``alsoKnownAs: at://<handle>``), unverified."""
        for aka in (await self.resolve_did(did)).get("alsoKnownAs") or []:
            if isinstance(aka, str) and aka.startswith("at://"):
                return aka[len("at://"):]
        return None
