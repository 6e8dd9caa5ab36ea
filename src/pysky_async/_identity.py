"""Identity: handle → DID, DID → DID document (PLC directory or did:web), with a bounded, single-flight TTL cache.

Every lookup is a call through the client's pipeline (and so in the call log); DID documents
are fetched with a non-XRPC ``path`` and skip the session, cursor and write budget.

A ``did:web`` host is whatever the DID's author chose, so by default it must be a public address
(``_public_address``): the name is resolved once, checked, and the request goes to that address.
Redirects are not followed and a document is read up to ``MAX_DID_DOCUMENT_BYTES``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._config import DEFAULT_PLC_DIRECTORY
from ._context import CallContext
from ._exceptions import BadRequest, IdentityNotFound, InvalidInput, ResponseTooLarge
from ._lenient import handle_from_text
from ._middleware import NO_ACCOUNT
from ._public_address import NotPublic, public_address, url_host
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

MAX_DID_DOCUMENT_BYTES = 64 * 1024
"""The largest DID document read (an atproto one is about 1 kB)."""

_ALLOW_HINT = ("to resolve did:web DIDs on your own network (a local dev setup), create the client with "
               "allow_private_did_web=True (PYSKY_ALLOW_PRIVATE_DID_WEB=1)")


class IdentityResolver:
    """Resolves handles and DIDs and caches the answers (``bsky.identity``).

    Handles resolve through ``com.atproto.identity.resolveHandle`` on the client's server;
    ``did:plc`` through the PLC directory; ``did:web`` through ``/.well-known/did.json``.

    Args:
        ttl: seconds an answer is kept.
        max_entries: answers kept at most (handles and DID documents together; the least
            recently used go first).
        clock: the time source of the TTL (``time.monotonic``).
        allow_private_did_web: fetch ``did:web`` documents from loopback, private and other
            non-public addresses too (off: such a DID raises ``IdentityNotFound`` with reason
            ``"not_public"``; turn on only where every DID resolved is trusted, e.g. a dev setup).

    Concurrent lookups of the same handle or DID make one request and share its answer.
    """

    def __init__(self, xrpc: Xrpc, *, plc_directory: str = DEFAULT_PLC_DIRECTORY, ttl: float = 300.0,
                 max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic,
                 allow_private_did_web: bool = False) -> None:
        self._xrpc = xrpc
        self.allow_private_did_web = allow_private_did_web
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
            request = XrpcRequest("GET", RESOLVE_DID, self.plc_directory, path=f"/{did}", skip=NO_ACCOUNT)
        elif did.method == "web":
            request = await self._did_web_request(did)
        else:
            raise InvalidInput(f"{did}: only did:plc and did:web can be resolved")
        request.context.max_response_bytes = MAX_DID_DOCUMENT_BYTES
        url = _shown_url(did, request)
        try:
            response = await self._xrpc.send_unchecked(request)
        except ResponseTooLarge as exc:
            raise IdentityNotFound(f"{url} answered more than {MAX_DID_DOCUMENT_BYTES} bytes, which is no DID "
                                   f"document for {did} (one is about 1 kB)", identifier=did,
                                   reason="bad_document") from exc
        if 300 <= response.status_code < 400:
            raise IdentityNotFound(
                f"{url} redirected (HTTP {response.status_code}) instead of serving the DID document of {did}; "
                "redirects are not followed when resolving a DID: its document must be served at that URL",
                identifier=did, reason="not_found", status_code=response.status_code)
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

    async def _did_web_request(self, did: Did) -> XrpcRequest:
        """The request for a did:web document: to the public address its host resolves to, with
        the host name in the ``Host`` header and for TLS; to the name itself when private
        addresses are allowed."""
        bare = did.split(":", 2)[2]
        if ":" in bare:
            raise IdentityNotFound(f"{did}: a did:web with a path is not an atproto DID (only a host name, and "
                                   "a port as %3A, may follow did:web:)", identifier=did, reason="not_found")
        authority = bare.replace("%3A", ":").replace("%3a", ":")
        host, _, port_text = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
        if self.allow_private_did_web:
            scheme = "http" if host in ("localhost", "127.0.0.1") else "https"
            return XrpcRequest("GET", RESOLVE_DID, f"{scheme}://{authority}", path="/.well-known/did.json",
                               skip=NO_ACCOUNT)
        port = int(port_text) if port_text.isdigit() else 443
        try:
            address = await public_address(host, port)
        except NotPublic as exc:
            raise IdentityNotFound(
                f"{did} was not resolved: {exc} (not a public address), and fetching it could reach your own "
                f"network (SSRF); {_ALLOW_HINT}", identifier=did, reason="not_public") from None
        except (socket.gaierror, UnicodeError) as exc:
            raise IdentityNotFound(f"{did} did not resolve: its host {host} has no address ({exc})",
                                   identifier=did, reason="not_found") from None
        return XrpcRequest("GET", RESOLVE_DID, f"https://{url_host(address)}:{port}", path="/.well-known/did.json",
                           headers={"Host": authority}, skip=NO_ACCOUNT,
                           context=CallContext(sni_hostname=host))

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


def _shown_url(did: Did, request: XrpcRequest) -> str:
    """The document's URL as the DID names it (not the pinned address) for messages."""
    if request.context.sni_hostname is not None:
        return f"https://{did.split(':', 2)[2].replace('%3A', ':')}/.well-known/did.json"
    return request.url
