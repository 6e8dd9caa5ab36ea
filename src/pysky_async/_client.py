"""AsyncBskyClient: the one way in."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ._call_log import CallLogMiddleware, CallLogWriter
from ._config import (
    PROXIED_NAMESPACES,
    PROXIED_SERVICES,
    ClientConfig,
    normalize_endpoint,
    normalize_host,
)
from ._context import CallContext
from ._cursor import ZERO_CURSOR, CursorMiddleware, CursorStore
from ._exceptions import NotAuthenticated, PyskyError
from ._graph import GraphReport, export_follow_graph
from ._identity import DEFAULT_PLC_DIRECTORY, IdentityResolver
from ._middleware import Middleware, Pipeline
from ._pagination import Paginator
from ._posts import PostsMixin
from ._profiles import ProfilesMixin
from ._rate_limits import RateLimit, RateLimitTracker, RequestLimiter
from ._request import AUTH, XrpcRequest
from ._response import XrpcResponse, raise_for_status
from ._retry import RetryMiddleware, RetryPolicy
from ._session import Session, SessionManager, SessionMiddleware
from ._storage.store import Store
from ._syntax import Nsid
from ._transport import HttpxTransport
from ._video import DEFAULT_VIDEO_HOST, VideoMixin
from ._write_budget import WriteBudget, WriteBudgetMiddleware


def default_http_client(timeout: float) -> httpx.AsyncClient:
    """The httpx client the library makes for itself: on aiohttp's transport, which costs about
    half the CPU per call of httpx's own pool here, and a third at 32 concurrent calls
    (benchmarks/bench_client.py)."""
    from httpx_aiohttp import AiohttpTransport

    return httpx.AsyncClient(timeout=timeout, headers={"User-Agent": "pysky_async/0.1"},
                             transport=AiohttpTransport())


DEFAULT_WRITE_BUDGET = WriteBudget()
DEFAULT_RETRY = RetryPolicy()


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class AsyncBskyClient(PostsMixin, ProfilesMixin, VideoMixin):
    """An asyncio client for Bluesky and other AT Protocol services.

    ``async with AsyncBskyClient() as bsky: r = await bsky.get("app.bsky.actor.getProfile", actor=...)``

    Every option is keyword-only and falls back to the environment:

    Args:
        username, password: the account (``BSKY_AUTH_USERNAME``/``BSKY_AUTH_PASSWORD``); not
            needed for public reads. Use an app password.
        database_url: any SQLAlchemy async URL; else ``PYSKY_DATABASE_URL``, the ``PG*``
            variables, ``BSKY_SQLITE_FILENAME``, or an SQLite file in the user data directory.
        engine: an AsyncEngine to use instead of ``database_url`` (left open on close).
        auth_host: where to log in (default ``https://bsky.social``); calls then go to the
            account's own PDS from its DID document.
        public_host: the unauthenticated AppView (default ``https://public.api.bsky.app``).
        http_client: an ``httpx.AsyncClient`` to share (left open on close).
        middleware: your own middleware, run inside the call log and outside the session.
        timeout: seconds per request when the client creates its own httpx client.
        auto_migrate: create/upgrade the schema on first use (default: SQLite only).
        plc_directory: where did:plc documents are resolved (default https://plc.directory).
        write_budget: the per-account write limits to stay under (None: no budget).
        retry: how reads and idempotent writes are retried (None: never).
        request_limit: (requests, seconds) this process stays under (None: no client-side limit).
        image_max_bytes: images are re-encoded to fit this blob size (Bluesky's PDS takes up to
            2,000,000; other PDSes 1,000,000).
        video_host / video_service_did: Bluesky's video service (default https://video.bsky.app,
            ``did:web:video.bsky.app``).
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        database_url: str | None = None,
        engine: AsyncEngine | None = None,
        auth_host: str | None = None,
        public_host: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        middleware: Sequence[Middleware] = (),
        timeout: float = 30.0,
        auto_migrate: bool | None = None,
        plc_directory: str = DEFAULT_PLC_DIRECTORY,
        write_budget: WriteBudget | None = DEFAULT_WRITE_BUDGET,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        request_limit: tuple[int, float] | None = (3000, 300.0),
        image_max_bytes: int = 1_000_000,
        video_host: str = DEFAULT_VIDEO_HOST,
        video_service_did: str | None = None,
    ) -> None:
        self.image_max_bytes = image_max_bytes
        self.video_host = normalize_host(video_host)
        self.video_service_did = video_service_did
        self.config = ClientConfig.from_options(
            username=username, password=password, auth_host=auth_host,
            public_host=public_host, database_url=database_url, timeout=timeout,
        )
        self._owns_http = http_client is None
        self.http = http_client or default_http_client(timeout)
        self.store = Store(database_url, engine=engine, auto_migrate=auto_migrate)
        self.call_log = CallLogWriter(self.store)
        transport = HttpxTransport(self.http)
        self.sessions = SessionManager(
            self.store,
            self._send_unchecked,
            auth_host=self.config.auth_host,
            identifier=self.config.username,
            password=self.config.password,
        )
        self.cursors = CursorStore(self.store)
        self.identity = IdentityResolver(self, plc_directory=plc_directory)
        self.rate_limit_tracker = RateLimitTracker()
        self._pipeline = Pipeline([
            *([RetryMiddleware(retry)] if retry else []),
            CallLogMiddleware(self.call_log),
            *middleware,
            SessionMiddleware(self.sessions),
            CursorMiddleware(self.cursors),
            *([WriteBudgetMiddleware(self.store, write_budget)] if write_budget else []),
            *([RequestLimiter(*request_limit)] if request_limit else []),
            self.rate_limit_tracker,
        ], transport)
        self._state = _State.OPEN

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> AsyncBskyClient:
        self._check_open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Flush the call log and close what the client created. Safe to call twice."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            await self.call_log.aclose()
        finally:
            if self._owns_http:
                await self.http.aclose()
            await self.store.aclose()

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise PyskyError("this AsyncBskyClient is closed; create a new one")

    # -- the account -----------------------------------------------------------------

    @property
    def did(self) -> str | None:
        """The logged-in account's DID (None before the first authenticated call)."""
        return self.sessions.session.did if self.sessions.session else None

    @property
    def handle(self) -> str | None:
        """The logged-in account's handle (None before the first authenticated call)."""
        return self.sessions.session.handle if self.sessions.session else None

    @property
    def rate_limits(self) -> dict[str, dict[str, RateLimit]]:
        """The latest RateLimit-* state each server reported: ``{host: {policy: RateLimit}}``."""
        return self.rate_limit_tracker.latest

    async def login(self) -> Session:
        """Log in now (or load the stored session) instead of on the first call."""
        self._check_open()
        return await self.sessions.current()

    def export_session(self) -> dict[str, str]:
        """The current session as a dict (contains tokens: keep it secret)."""
        if self.sessions.session is None:
            raise NotAuthenticated("there is no session to export yet: call login() first")
        return self.sessions.session.to_dict()

    async def login_with_session(self, session: Mapping[str, str] | Session) -> None:
        """Use a session exported from another client (tokens are refreshed as needed)."""
        self._check_open()
        if not isinstance(session, Session):
            session = Session(**{key: session[key] for key in Session.__dataclass_fields__})
        await self.sessions.adopt(session)

    async def flush_call_log(self) -> None:
        """Write the queued call-log rows now (they are also written in the background)."""
        await self.call_log.flush()

    # -- raw XRPC --------------------------------------------------------------------

    async def get(self, endpoint: str, *, hostname: str | None = None,
                  params: Mapping[str, Any] | None = None, **kwargs: Any) -> XrpcResponse:
        """Call an XRPC query (GET). Params come as a dict, as keyword arguments, or both.

        ``hostname`` None means the account's PDS when there are credentials, else the public
        AppView; pass a host (``"bsky.social"``, ``"https://..."``) to choose.
        """
        request = self._request("GET", endpoint, hostname, {**(params or {}), **kwargs})
        return await self.send(request)

    async def post(self, endpoint: str, *, hostname: str | None = None,
                   params: Mapping[str, Any] | None = None, data: Any = None,
                   headers: Mapping[str, str] | None = None, **kwargs: Any) -> XrpcResponse:
        """Call an XRPC procedure (POST).

        ``data`` is the body: a dict (sent as JSON) or bytes (sent as is; set Content-Type in
        ``headers``). Keyword arguments are added to a JSON body. ``params`` is the query string.
        """
        if kwargs:
            if data is not None and not isinstance(data, Mapping):
                raise TypeError("keyword body fields need data= to be a dict or None")
            data = {**(data or {}), **kwargs}
        request = self._request("POST", endpoint, hostname, dict(params or {}), default_auth=True)
        if isinstance(data, (bytes, bytearray, memoryview)):
            request = request.replace(content=bytes(data))
        elif data is not None:
            request = request.replace(json=data)
        if headers:
            request = request.with_headers(**headers)
        return await self.send(request)

    async def send(self, request: XrpcRequest) -> XrpcResponse:
        """Run a request through the pipeline; raise an APIError subclass on an error status."""
        self._check_open()
        return raise_for_status(await self._pipeline(request), request.nsid)

    async def _send_unchecked(self, request: XrpcRequest) -> XrpcResponse:
        """Run a request through the pipeline; error statuses come back as values."""
        return await self._pipeline(request)

    @property
    def middleware(self) -> tuple[Middleware, ...]:
        """The pipeline, outermost first; fixed at construction (pass ``middleware=``)."""
        return self._pipeline.middlewares

    def paginate(self, endpoint: str, *, hostname: str | None = None, items: str | None = None,
                 cursor: str | None = None, cursor_key: str | None = None, resume: bool = False,
                 max_items: int | None = None, first_cursor: str | None = None, **params: Any) -> Paginator:
        """Iterate a cursor-based list endpoint: ``async for item in bsky.paginate(nsid, **params)``.

        Args:
            items: the response's list field, when it is not one of the standard names.
            cursor: start at this cursor (ignores any saved one).
            resume: start from the cursor saved for (account, endpoint, cursor_key) and save
                the cursor of every page the caller has finished.
            cursor_key: separates saved cursors that share an endpoint (e.g. per collection).
            max_items: stop after this many items.
            first_cursor: the cursor of a resumed run's first page when none is saved.
        """
        base = self._request("GET", endpoint, hostname, params)

        async def make_request(page_cursor: str | None) -> XrpcRequest:
            return _page_request(base, page_cursor, cursor_key, first_cursor)

        return Paginator(self, make_request, items=items, cursor=cursor, resume=resume, max_items=max_items)

    def list_records(self, collection: str, repo: str | None = None, *, limit: int = 100, reverse: bool = False,
                     cursor: str | None = None, resume: bool = False, max_items: int | None = None) -> Paginator:
        """Records of one collection (the logged-in account's unless ``repo`` is given).

        For ``resume`` use ``reverse=True`` (oldest first): a resumed run then yields the
        records created since the last run. Saved cursors are kept per repo and collection.
        """
        params: dict[str, Any] = {"collection": Nsid(collection), "limit": limit}
        if reverse:
            params["reverse"] = True
        base = self._request("GET", "com.atproto.repo.listRecords", None, params)

        async def make_request(page_cursor: str | None) -> XrpcRequest:
            owner = await self._repo(repo)
            request = base.replace(params={**base.params, "repo": owner})
            return _page_request(request, page_cursor, f"{owner}/{collection}", None)

        return Paginator(self, make_request, cursor=cursor, resume=resume, max_items=max_items)

    def get_convo_logs(self, *, resume: bool = True, cursor: str | None = None) -> Paginator:
        """Chat events (``chat.bsky.convo.getLog``); a first resumed run replays from the start."""
        return self.paginate("chat.bsky.convo.getLog", items="logs", cursor=cursor, resume=resume,
                             first_cursor=ZERO_CURSOR)

    async def export_follow_graph(self, query: str, out: str, **options: Any) -> GraphReport:
        """Write the follow graph of the authors of posts matching ``query`` to a CSV (see ``_graph``)."""
        return await export_follow_graph(self, query, out, **options)

    async def resolve_handle(self, handle: str) -> str:
        """The DID of a handle (cached for a few minutes)."""
        return await self.identity.resolve_handle(handle)

    async def resolve_did(self, did: str) -> dict[str, Any]:
        """The DID document of a did:plc or did:web DID (cached for a few minutes)."""
        return await self.identity.resolve_did(did)

    def _request(self, method: str, endpoint: str, hostname: str | None,
                 params: dict[str, Any], *, default_auth: bool = False) -> XrpcRequest:
        nsid = normalize_endpoint(endpoint)
        proxy = next((did for prefix, did in PROXIED_NAMESPACES.items() if nsid.startswith(prefix)), None)
        if hostname is None:
            authenticated = default_auth or proxy is not None or self.sessions.can_authenticate
            host = AUTH if authenticated else self.config.public_host
        else:
            host = normalize_host(hostname)
            bare = host.split("://", 1)[1]
            if bare in PROXIED_SERVICES:
                proxy, host = PROXIED_SERVICES[bare], AUTH
            elif host == self.config.auth_host:
                host = AUTH
        headers = {"atproto-proxy": proxy} if proxy and host == AUTH else {}
        return XrpcRequest(method, nsid, host, params=params, headers=headers)



def _page_request(base: XrpcRequest, cursor: str | None, cursor_key: str | None,
                  first_cursor: str | None) -> XrpcRequest:
    """One page's request: a fresh copy of ``base`` (its own context) with the cursor set."""
    return base.replace(params={**base.params, "cursor": cursor},
                        context=CallContext(cursor_key=cursor_key, first_cursor=first_cursor))
