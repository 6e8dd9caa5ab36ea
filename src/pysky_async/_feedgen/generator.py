"""A feed generator's XRPC methods, framework-neutral: the web glue (``fastapi_feedgen``,
``aiohttp_feedgen``) only turns requests into ``handle_*`` calls and ``XrpcReply`` into responses.

``app.bsky.feed.describeFeedGenerator`` lists the feeds; ``app.bsky.feed.getFeedSkeleton``
checks ``feed`` (one of ours, else 400 ``UnknownFeed``), ``limit`` (1..100, default 50) and the
service-auth token, then calls the feed's algorithm; ``/.well-known/did.json`` is the DID
document of a ``did:web`` generator (its ``#bsky_fg`` service).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from .._exceptions import InvalidIdentifier, InvalidInput, PyskyError, ServiceAuthError, UsageError
from .._syntax import AtUri, Did
from .service_auth import GET_FEED_SKELETON, DidDocuments, ServiceAuthVerifier

log = logging.getLogger("pysky_async.feedgen")

SkeletonItem = str | Mapping[str, Any]
"""A post's AT-URI, or a whole ``skeletonFeedPost`` (``{"post": uri, "reason": ..., "feedContext": ...}``)."""
FeedAlgorithm = Callable[[str, int, str | None, str | None], Awaitable[tuple[Sequence[SkeletonItem], str | None]]]
"""``async def algorithm(feed_uri, limit, cursor, requester_did) -> (items, next_cursor)``;
``requester_did`` is None for a request without a token. Raise ``InvalidInput`` for a cursor it
cannot read (the caller gets 400 with its message)."""
AuthMode = Literal["none", "optional", "required"]
DEFAULT_LIMIT, MAX_LIMIT = 50, 100


@dataclass(frozen=True)
class XrpcReply:
    """What to answer: an HTTP status and a JSON body (an XRPC error body for 4xx/5xx)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, error: str, message: str) -> XrpcReply:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return XrpcReply(status, {"error": error, "message": message}, headers)


class FeedGenerator:
    """The feeds one service (``did``) serves, their algorithms and how requests authenticate.

    Args:
        did: the generator's service DID (``did:web:feeds.example.com`` or a ``did:plc`` whose
            document has a ``#bsky_fg`` service); tokens must be addressed to it.
        identity: resolves the requesters' DID documents for token checks (``bsky.identity``).
        auth: ``"optional"`` (default: no token → ``requester_did`` None; a bad token → 401),
            ``"required"`` (no token → 401: personalised feeds), ``"none"`` (tokens ignored).
        verifier: a configured ``ServiceAuthVerifier`` instead of the default one.
        endpoint: the public URL of this service, for the ``did:web`` document (default: from the DID).
        links: ``privacyPolicy`` / ``termsOfService`` URLs for ``describeFeedGenerator``.
    """

    def __init__(self, did: str, *, identity: DidDocuments | None = None, auth: AuthMode = "optional",
                 verifier: ServiceAuthVerifier | None = None, endpoint: str | None = None,
                 links: Mapping[str, str] | None = None) -> None:
        self.did = str(Did(did))
        if auth not in ("none", "optional", "required"):
            raise UsageError(f"auth={auth!r}: use 'none', 'optional' or 'required'")
        if verifier is None and identity is not None:
            verifier = ServiceAuthVerifier(identity, service_did=self.did, lxm=GET_FEED_SKELETON)
        if verifier is None and auth != "none":
            raise UsageError("FeedGenerator needs identity=bsky.identity (or verifier=) to check tokens; "
                             "auth='none' serves without checking them")
        if verifier is not None and verifier.service_did != self.did:
            raise UsageError(f"the verifier checks tokens for {verifier.service_did}, not for this generator "
                             f"{self.did}")
        self.auth: AuthMode = auth
        self.verifier = verifier
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.links = dict(links or {})
        self._feeds: dict[str, FeedAlgorithm] = {}

    def __repr__(self) -> str:
        return f"FeedGenerator(did={self.did!r}, feeds={list(self._feeds)!r}, auth={self.auth!r})"

    @property
    def feeds(self) -> list[str]:
        """The AT-URIs of the feeds served."""
        return list(self._feeds)

    def add_feed(self, uri: str, algorithm: FeedAlgorithm) -> None:
        """Serve ``algorithm`` for the feed record ``at://<publisher did>/app.bsky.feed.generator/<rkey>``."""
        try:
            parsed = AtUri.parse(uri)
        except InvalidIdentifier as exc:
            raise InvalidInput(f"feed {uri!r}: {exc}") from None
        if not parsed.has_did or parsed.collection != "app.bsky.feed.generator" or parsed.rkey is None:
            raise InvalidInput(f"feed {uri!r}: expected at://<publisher DID>/app.bsky.feed.generator/<rkey> "
                               "(feed_uri(did, rkey) builds it)")
        self._feeds[str(parsed)] = algorithm

    def feed(self, uri: str) -> Callable[[FeedAlgorithm], FeedAlgorithm]:
        """Decorator form of ``add_feed``."""
        def register(algorithm: FeedAlgorithm) -> FeedAlgorithm:
            self.add_feed(uri, algorithm)
            return algorithm
        return register

    def describe(self) -> dict[str, Any]:
        """The ``describeFeedGenerator`` answer."""
        body: dict[str, Any] = {"did": self.did, "feeds": [{"uri": uri} for uri in self._feeds]}
        if self.links:
            body["links"] = dict(self.links)
        return body

    def did_document(self) -> dict[str, Any] | None:
        """The DID document of a ``did:web`` generator (None for other DID methods)."""
        if not self.did.startswith("did:web:"):
            return None
        host = unquote(self.did[len("did:web:"):])
        endpoint = self.endpoint or (("http://" if host.split(":")[0] == "localhost" else "https://") + host)
        return {"@context": ["https://www.w3.org/ns/did/v1"], "id": self.did,
                "service": [{"id": "#bsky_fg", "type": "BskyFeedGenerator", "serviceEndpoint": endpoint}]}

    async def handle_skeleton(self, params: Mapping[str, str], authorization: str | None) -> XrpcReply:
        """Answer ``getFeedSkeleton`` (query ``params``, the ``Authorization`` header); never raises."""
        requester: str | None = None
        if self.auth != "none" and (authorization or self.auth == "required"):
            assert self.verifier is not None
            try:
                requester = await self.verifier.verify(authorization, lxm=GET_FEED_SKELETON)
            except ServiceAuthError as exc:
                return _error(401, exc.error, exc.message)
            except PyskyError as exc:  # the issuer's DID document could not be fetched (network...)
                log.warning("feed generator: could not check a token: %s", exc)
                return _error(502, "UpstreamFailure", "could not resolve the token issuer's DID document")
        feed = params.get("feed")
        if not feed:
            return _error(400, "InvalidRequest", 'Params must have the property "feed"')
        algorithm = self._feeds.get(feed)
        if algorithm is None:
            return _error(400, "UnknownFeed", f"this generator ({self.did}) does not serve the feed {feed}")
        raw_limit = params.get("limit")
        try:
            limit = DEFAULT_LIMIT if raw_limit in (None, "") else int(str(raw_limit))
        except ValueError:
            return _error(400, "InvalidRequest", f"limit must be an integer, not {raw_limit!r}")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, "InvalidRequest", f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        cursor = params.get("cursor") or None
        try:
            items, next_cursor = await algorithm(feed, limit, cursor, requester)
        except InvalidInput as exc:
            return _error(400, "InvalidRequest", str(exc))
        except Exception:
            log.exception("feed generator: the algorithm of %s failed", feed)
            return _error(500, "InternalServerError", "the feed algorithm failed")
        try:
            body = _skeleton_body(items, next_cursor)
        except InvalidInput as exc:
            log.error("feed generator: the algorithm of %s returned an invalid page: %s", feed, exc)
            return _error(500, "InternalServerError", "the feed algorithm returned an invalid page")
        return XrpcReply(200, body)


def _skeleton_body(items: Sequence[SkeletonItem], cursor: str | None) -> dict[str, Any]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidInput(f"items must be a list of post AT-URIs, not {type(items).__name__}")
    feed: list[dict[str, Any]] = []
    for item in items:
        entry = {"post": item} if isinstance(item, str) else dict(item) if isinstance(item, Mapping) else None
        if entry is None or not isinstance(entry.get("post"), str):
            raise InvalidInput(f"{item!r} is neither a post AT-URI nor a {{'post': uri, ...}} mapping")
        try:
            AtUri.parse(entry["post"])
        except InvalidIdentifier as exc:
            raise InvalidInput(str(exc)) from None
        feed.append(entry)
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidInput(f"the cursor must be a string or None, not {type(cursor).__name__}")
    body: dict[str, Any] = {"feed": feed}
    if cursor is not None:
        body["cursor"] = cursor
    return body


def feed_uri(publisher_did: str, rkey: str) -> str:
    """``at://<publisher_did>/app.bsky.feed.generator/<rkey>``: the URI of a feed record."""
    return str(AtUri(str(Did(publisher_did)), "app.bsky.feed.generator", rkey))
