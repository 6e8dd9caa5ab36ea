"""AsyncBskyClient: the one way in. It owns the shared parts (HTTP pool, store, call log,
sessions), builds the pipeline once from its frozen ``ClientConfig``, and hands each feature
object (records, posts, media, video, identity, profiles) what it needs."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import httpx

from ._account import Account, Session
from ._aiohttp_transport import AiohttpXrpcTransport, SharedAiohttpSession
from ._call_log import CallLogMiddleware, CallLogWriter
from ._chat import Chat
from ._config import (
    DEFAULT_RETRY,
    DEFAULT_WRITE_BUDGET,
    ClientConfig,
)
from ._context import CallContext
from ._cursor import ZERO_CURSOR, CursorMiddleware, CursorStore
from ._exceptions import InvalidInput, NotAuthenticated, PyskyError
from ._graph import GraphReport, export_follow_graph
from ._identity import IdentityResolver
from ._media import Media
from ._middleware import Middleware, Pipeline
from ._moderation import Moderation, Report
from ._notifications import Notifications
from ._pagination import Paginator, TypedPaginator, default_cursor_key
from ._posts import Post, Posts
from ._profiles import Profiles
from ._rate_limits import RateLimit, RateLimitTracker, RequestLimiter
from ._records import BLOB_MAX_BYTES, Create, Delete, Record, RecordRef, Records, TypedRecord, Update, WriteResult
from ._request import XrpcRequest
from ._response import JsonObject, XrpcResponse
from ._retry import RetryMiddleware, RetryPolicy
from ._session import SessionManager, SessionMiddleware
from ._sync.api import Sync
from ._syntax import AtUri, Nsid
from ._transport import Bounds, HttpxTransport
from ._version import __version__
from ._video import UploadedVideo, Video, Videos
from ._write_budget import WriteBudget, WriteBudgetMiddleware
from ._xrpc import Xrpc

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ParamSpec, TypeAlias, TypeVar

    from sqlalchemy.ext.asyncio import AsyncEngine
    from typing_extensions import Unpack

    from ._oauth import OAuth
    from ._oauth._middleware import DpopMiddleware, OAuthAccount
    from ._posts import PostOptions
    from ._storage.store import Store
    from ._streams.factory import Streams
    from .lex._base import LexObject
    from .lex._call import Query, XrpcCall

    _P = ParamSpec("_P")
    _T = TypeVar("_T")
    _M = TypeVar("_M", bound=LexObject)
    _I = TypeVar("_I")

    ParamValue: TypeAlias = "str | int | float | bool | Sequence[str] | Sequence[int] | None"
    """A query parameter given as a keyword: a scalar or a list (None: left out)."""
    JsonValue: TypeAlias = "str | int | float | bool | Sequence[Any] | Mapping[str, Any] | None"
    """A JSON body field given as a keyword."""

DEFAULT_TIMEOUT = 30.0
USER_AGENT = f"pysky_async/{__version__}"


def default_http_client(timeout: float, session: SharedAiohttpSession | None = None) -> httpx.AsyncClient:
    """The httpx client the library makes for itself: on aiohttp's transport, which costs about
    half the CPU per call of httpx's own pool here, and a third at 32 concurrent calls
    (benchmarks/bench_client.py). With ``session``, its aiohttp session is that one."""
    from httpx_aiohttp import AiohttpTransport

    return httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT},
                             transport=AiohttpTransport(client=session))


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class _Shared:
    """What a client and the clients made from it by ``with_options`` share."""

    http: httpx.AsyncClient
    owns_http: bool
    store: Store
    call_log: CallLogWriter
    sessions: Account
    cursors: CursorStore
    rate_limit_tracker: RateLimitTracker
    limiters: dict[tuple[int, float], RequestLimiter]
    aiohttp_session: SharedAiohttpSession | None = None
    state: _State = _State.OPEN
    guard: asyncio.Task[None] | None = None
    """Closes the client (flushing its call log) when its event loop shuts down unclosed."""
    oauth: OAuth | None = None
    session_middleware: Middleware | None = None
    """In place of ``SessionMiddleware`` (an OAuth user's ``DpopMiddleware``)."""

    def transport(self, config: ClientConfig) -> HttpxTransport | AiohttpXrpcTransport:
        """The innermost handler: straight onto aiohttp when the client owns its httpx client."""
        bounds = Bounds(config.timeout, config.attempt_deadline, config.max_response_bytes)
        if self.aiohttp_session is not None:
            return AiohttpXrpcTransport(self.aiohttp_session, self.http, bounds)
        return HttpxTransport(self.http, bounds)

    async def aclose(self) -> None:
        """Flush the call log, then close the HTTP pool and the database (what the owner made)."""
        self.state = _State.CLOSED
        if self.guard is not None and self.guard is not asyncio.current_task():
            self.guard.cancel()
        try:
            await self.call_log.aclose()
        finally:
            try:
                if self.owns_http:
                    await self.http.aclose()
                if self.aiohttp_session is not None:
                    await self.aiohttp_session.aclose()
            finally:
                await self.store.aclose()

    def limiter(self, limit: tuple[int, float] | None) -> RequestLimiter | None:
        """One request limiter per limit, shared by every client with that limit."""
        if limit is None:
            return None
        if limit not in self.limiters:
            self.limiters[limit] = RequestLimiter(*limit)
        return self.limiters[limit]


class ClientOptions(TypedDict, total=False):
    """What ``with_options`` can change (see ``AsyncBskyClient`` for each one)."""

    public_host: str | None
    middleware: Sequence[Middleware]
    timeout: float | None
    deadline: float
    attempt_deadline: float | None
    max_response_bytes: int
    plc_directory: str
    write_budget: WriteBudget | None
    retry: RetryPolicy | None
    request_limit: tuple[int, float] | None
    image_max_bytes: int
    video_host: str
    video_service_did: str | None
    labelers: Sequence[str] | str | None
    allow_private_did_web: bool


_FIXED_OPTIONS = frozenset({"username", "password", "auth_host", "database_url", "engine", "http_client",
                            "auto_migrate", "call_log_max_pending"})


class AsyncBskyClient:
    """An asyncio client for Bluesky and other AT Protocol services.

    ``async with AsyncBskyClient() as bsky: r = await bsky.get("app.bsky.actor.getProfile", actor=...)``

    Features are namespaces — ``bsky.records``, ``bsky.posts``, ``bsky.media``, ``bsky.video``,
    ``bsky.identity``, ``bsky.profiles``, ``bsky.moderation`` — and also flat methods (``bsky.create_record``...).
    Every option is keyword-only, falls back to the environment, and ends up in ``bsky.config``:

    Args:
        username, password: the account (``BSKY_AUTH_USERNAME``/``BSKY_AUTH_PASSWORD``); not
            needed for public reads. Use an app password.
        database_url: any SQLAlchemy async URL; else ``PYSKY_DATABASE_URL``, the ``PG*``
            variables, ``BSKY_SQLITE_FILENAME``, or an SQLite file in the user data directory.
        engine: an AsyncEngine to use instead of ``database_url`` (left open on close).
        auth_host: where to log in (``PYSKY_AUTH_HOST``, default ``https://bsky.social``); calls then go to the
            account's own PDS from its DID document.
        public_host: the unauthenticated AppView (``PYSKY_PUBLIC_HOST``, default
            ``https://public.api.bsky.app``).
        http_client: an ``httpx.AsyncClient`` to share (left open on close; a slower path than
            the client's own, see the README's performance figures).
        middleware: your own middleware, run inside the call log and outside the session;
            fixed at construction (``bsky.middleware`` is a read-only tuple).
        timeout: seconds to connect, and to wait for each piece of an answer (``PYSKY_TIMEOUT``, default 30;
            an injected ``http_client`` keeps its own timeout unless this is given).
        deadline: seconds for a whole call: every attempt, back-off sleep and token refresh, not the
            waits asked for (``request_limit``, the write budget's "wait") (``PYSKY_DEADLINE``, default 120;
            a request body adds a second per 100 kB; ``float("inf")``: none).
        attempt_deadline: seconds for one attempt: connect, send and read every byte
            (``PYSKY_ATTEMPT_DEADLINE``, default none: only ``deadline`` bounds it); a trickling
            server then costs one attempt, and the call is retried within its ``deadline``.
        max_response_bytes: the largest answer read, after decompression (``PYSKY_MAX_RESPONSE_BYTES``,
            default 16 MiB; ``get_blob`` has its own ``max_bytes``); a larger one raises ``ResponseTooLarge``.
        auto_migrate: create/upgrade the schema on first use (default: SQLite only).
        plc_directory: where did:plc documents are resolved (``PYSKY_PLC_DIRECTORY``, default
            https://plc.directory).
        write_budget: the per-account write limits to stay under (None: no budget).
        retry: how reads and idempotent writes are retried (None: never).
        request_limit: (requests, seconds) this process stays under (None: no client-side limit).
        image_max_bytes: images are re-encoded to fit this blob size (``PYSKY_IMAGE_MAX_BYTES``,
            default 1,000,000; Bluesky's PDS takes up to
            2,000,000; other PDSes 1,000,000).
        video_host / video_service_did: Bluesky's video service (``PYSKY_VIDEO_HOST`` /
            ``PYSKY_VIDEO_SERVICE_DID``, default https://video.bsky.app, ``did:web:video.bsky.app``).
        call_log_max_pending: call-log rows kept in memory while the database cannot take them
            (``PYSKY_CALL_LOG_MAX_PENDING``, default 100,000); past it the oldest are dropped and counted.
        labelers: the labelers whose labels the AppView applies, sent as ``atproto-accept-labelers`` on
            ``app.bsky.*`` calls: DIDs, each optionally ``"did;redact"`` (``PYSKY_LABELERS``,
            comma-separated; default: none sent, so the AppView applies its own defaults).
        allow_private_did_web: resolve ``did:web`` DIDs whose host is loopback, private or otherwise
            not public (``PYSKY_ALLOW_PRIVATE_DID_WEB=1``; default off, as a DID's author picks its
            host: a safeguard against requests into your own network). For local dev setups.
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
        timeout: float | None = None,
        deadline: float | None = None,
        attempt_deadline: float | None = None,
        max_response_bytes: int | None = None,
        auto_migrate: bool | None = None,
        plc_directory: str | None = None,
        write_budget: WriteBudget | None = DEFAULT_WRITE_BUDGET,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        request_limit: tuple[int, float] | None = (3000, 300.0),
        image_max_bytes: int | None = None,
        video_host: str | None = None,
        video_service_did: str | None = None,
        call_log_max_pending: int | None = None,
        labelers: Sequence[str] | str | None = None,
        allow_private_did_web: bool | None = None,
    ) -> None:
        config = ClientConfig.from_options(
            username=username, password=password, auth_host=auth_host, public_host=public_host,
            database_url=database_url, engine=engine, http_client=http_client, middleware=middleware,
            timeout=timeout, deadline=deadline, attempt_deadline=attempt_deadline,
            max_response_bytes=max_response_bytes, auto_migrate=auto_migrate,
            plc_directory=plc_directory, write_budget=write_budget,
            retry=retry, request_limit=request_limit, image_max_bytes=image_max_bytes, video_host=video_host,
            video_service_did=video_service_did, call_log_max_pending=call_log_max_pending, labelers=labelers,
            allow_private_did_web=allow_private_did_web,
        )
        aiohttp_session = SharedAiohttpSession() if http_client is None else None
        http = http_client or default_http_client(config.timeout or DEFAULT_TIMEOUT, aiohttp_session)
        from ._storage.store import Store  # SQLAlchemy loads with the first client, not at import

        store = Store(database_url, engine=engine, auto_migrate=auto_migrate)
        sessions = SessionManager(store, self._send_unchecked, auth_host=config.auth_host,
                                  identifier=config.username, password=config.password)
        call_log = CallLogWriter(store, max_pending=config.call_log_max_pending)
        shared = _Shared(http=http, owns_http=http_client is None, store=store, call_log=call_log,
                         sessions=sessions, cursors=CursorStore(store), rate_limit_tracker=RateLimitTracker(),
                         limiters={}, aiohttp_session=aiohttp_session)
        self._setup(shared, config, owner=True)

    def _setup(self, shared: _Shared, config: ClientConfig, *, owner: bool) -> None:
        self.config = config
        self._shared = shared
        self._owner = owner
        self._state = _State.OPEN
        self.http = shared.http
        self.store = shared.store
        self.call_log = shared.call_log
        self.sessions = shared.sessions
        self.cursors = shared.cursors
        self.rate_limit_tracker = shared.rate_limit_tracker
        limiter = shared.limiter(config.request_limit)
        self._pipeline = Pipeline([
            *([RetryMiddleware(config.retry)] if config.retry else []),
            CallLogMiddleware(shared.call_log),
            *config.middleware,
            shared.session_middleware or SessionMiddleware(shared.sessions),
            CursorMiddleware(shared.cursors),
            *([WriteBudgetMiddleware(shared.store, config.write_budget)] if config.write_budget else []),
            *([limiter] if limiter else []),
            shared.rate_limit_tracker,
        ], shared.transport(config))
        self._xrpc = Xrpc(config, shared.sessions, self._pipeline, self._check_open)
        self.identity = IdentityResolver(self._xrpc, plc_directory=config.plc_directory,
                                         allow_private_did_web=config.allow_private_did_web)
        self.records = Records(self._xrpc, self.identity)
        self.profiles = Profiles(self._xrpc, shared.store)
        self.media = Media(self.records, image_max_bytes=config.image_max_bytes)
        self.video = Videos(self._xrpc, shared.sessions, self.records, video_host=config.video_host,
                            video_service_did=config.video_service_did)
        self.posts = Posts(shared.store, shared.sessions, self.records, self.identity, self.media, self.video)
        self.notifications = Notifications(self._xrpc, shared.sessions, shared.store)
        self.chat = Chat(self._xrpc, shared.sessions, shared.cursors)
        self.moderation = Moderation(self._xrpc, self.records, self.identity)
        self.sync = Sync(self._xrpc, self.identity, shared.store)

    def with_options(self, **changes: Unpack[ClientOptions]) -> AsyncBskyClient:
        """A client with some options changed (``timeout=``, ``retry=``, ``write_budget=``,
        ``request_limit=``, ``middleware=``, ``public_host=``...) that shares this one's HTTP
        pool, store, call log and sessions. Closing it closes nothing it shares.

        The account, the database and the HTTP client cannot change: make a new client.
        """
        fixed = _FIXED_OPTIONS & changes.keys()
        if fixed:
            raise InvalidInput(f"{', '.join(sorted(fixed))} cannot change in a client that shares this one's "
                               "sessions, store and HTTP pool: make a new AsyncBskyClient")
        self._check_open()
        try:
            config = self.config.replace(**dict(changes))
        except TypeError as exc:
            raise InvalidInput(f"with_options: {exc}") from exc
        client = object.__new__(type(self))
        client._setup(self._shared, config, owner=False)
        return client

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> AsyncBskyClient:
        self._check_open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Flush the call log and close what the client created. Safe to call twice.

        A client made by ``with_options`` only flushes the call log: what it shares stays open.
        """
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        shared = self._shared
        if not self._owner:
            if shared.state is _State.OPEN:
                await shared.call_log.flush()
            return
        await shared.aclose()

    def _check_open(self) -> None:
        shared = self._shared
        if self._state is _State.CLOSED or shared.state is _State.CLOSED:
            raise PyskyError("this AsyncBskyClient is closed; create a new one")
        if shared.guard is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            shared.guard = loop.create_task(_close_at_loop_end(repr(self), shared), name="pysky_async guard")

    def __repr__(self) -> str:
        account = self.sessions.identifier or "no account"
        state = "closed" if self._state is _State.CLOSED or self._shared.state is _State.CLOSED else "open"
        return f"<AsyncBskyClient {account} via {self.config.auth_host} ({state})>"

    @property
    def middleware(self) -> tuple[Middleware, ...]:
        """The pipeline, outermost first; fixed at construction (pass ``middleware=``)."""
        return self._pipeline.middlewares

    @property
    def oauth(self) -> OAuth:
        """OAuth for the users of your service: ``bsky.oauth.configure(OAuthApp(...))``, then
        ``start``, ``callback``, ``client_for(did)``, ``logout`` (see ``OAuth``)."""
        if self._shared.oauth is None:
            from ._oauth import OAuth  # JOSE and crypto load only for services that use OAuth

            self._shared.oauth = OAuth(self.store, self._send_unchecked, self.identity, self._oauth_client)
        return self._shared.oauth

    @property
    def streams(self) -> Streams:
        """Stream consumers on this client's database: ``bsky.streams.firehose(handler, name=...)``,
        ``bsky.streams.jetstream(...)``, ``bsky.streams.labels(...)`` (see ``Streams``)."""
        self._check_open()
        from ._streams.factory import Streams  # libipld, aiohttp and zstandard load only for stream users

        return Streams(self.store, self.identity.resolve_did)

    def _oauth_client(self, account: OAuthAccount, middleware: DpopMiddleware) -> AsyncBskyClient:
        """A client acting as an OAuth user, sharing this one's HTTP pool, store and call log."""
        sessions: Account = account  # an OAuth user is an Account like a password login, not a kind of one
        shared = dataclasses.replace(self._shared, sessions=sessions, session_middleware=middleware, owns_http=False)
        client = object.__new__(type(self))
        client._setup(shared, self.config, owner=False)
        return client

    # -- the account -----------------------------------------------------------------

    @property
    def did(self) -> str:
        """The logged-in account's DID. Before the first login it is not known and this raises
        ``NotAuthenticated`` (never None, which would go to the server as ``null``):
        ``await bsky.login()`` first, or use ``await bsky.get_did()``."""
        return self._known_session("did").did

    @property
    def handle(self) -> str:
        """The logged-in account's handle; raises ``NotAuthenticated`` before the first login, as ``did``."""
        return self._known_session("handle").handle

    @property
    def logged_in(self) -> bool:
        """Whether the account's session is known here (``did`` and ``handle`` can be read)."""
        return self.sessions.session is not None

    async def get_did(self) -> str:
        """The account's DID, logging in (or loading the stored session) when it is not known yet."""
        self._check_open()
        return (await self.sessions.current()).did

    def _known_session(self, name: str) -> Session:
        session = self.sessions.session
        if session is not None:
            return session
        if not self.sessions.can_authenticate:
            raise NotAuthenticated(f"bsky.{name}: this client has no account; pass username= and password= "
                                   "(or BSKY_AUTH_USERNAME/BSKY_AUTH_PASSWORD), then `await bsky.login()`")
        raise NotAuthenticated(f"bsky.{name} is not known before the first login: call `await bsky.login()` "
                               f"first (or use `await bsky.get_did()`, which logs in when needed)")

    @property
    def rate_limits(self) -> dict[str, dict[str, RateLimit]]:
        """The latest RateLimit-* state each server reported: ``{host: {policy: RateLimit}}``."""
        return self.rate_limit_tracker.latest

    async def login(self) -> Session:
        """Log in now (or load the stored session) instead of on the first call. After the server
        refused the password, calls fail at once (no login storm) until this is called again."""
        self._check_open()
        return await self.sessions.login()

    async def logout(self) -> None:
        """End the session on the server (``deleteSession``) and forget the stored one. The next
        authenticated call logs in again (with the password, if the client has one)."""
        self._check_open()
        await self.sessions.logout()

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
                  params: Mapping[str, Any] | None = None, **kwargs: ParamValue) -> XrpcResponse:
        """Call an XRPC query (GET). Params come as a dict, as keyword arguments, or both.

        ``hostname`` None means the account's PDS when there are credentials, else the public
        AppView; pass a host (``"bsky.social"``, ``"https://..."``) to choose.
        """
        return await self._xrpc.get(endpoint, hostname=hostname, params=params, **kwargs)

    async def post(self, endpoint: str, *, hostname: str | None = None,
                   params: Mapping[str, Any] | None = None, data: Any = None,
                   headers: Mapping[str, str] | None = None, **kwargs: JsonValue) -> XrpcResponse:
        """Call an XRPC procedure (POST).

        ``data`` is the body: a dict (sent as JSON) or bytes (sent as is; set Content-Type in
        ``headers``). Keyword arguments are added to a JSON body. ``params`` is the query string.
        A top-level None in the body raises ``InvalidInput`` before any request (it would be ``null``).
        """
        _refuse_null_fields(endpoint, {**data, **kwargs} if isinstance(data, Mapping) else kwargs)
        return await self._xrpc.post(endpoint, hostname=hostname, params=params, data=data, headers=headers,
                                     **kwargs)

    async def call(self, method: Callable[_P, XrpcCall[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Call a query or procedure of ``pysky_async.lex`` with typed parameters; get its typed output.

        ``await bsky.call(lex.app.bsky.actor.get_profile, actor="alice.test")`` returns a
        ``ProfileViewDetailed``. It is sent with ``get``/``post`` (the same pipeline); an answer
        that does not fit the model raises ``InvalidResponse`` (an unknown ``$type`` does not).
        """
        return await method(*args, **kwargs).send(self)

    async def send(self, request: XrpcRequest) -> XrpcResponse:
        """Run a request through the pipeline; raise an APIError subclass on an error status."""
        return await self._xrpc.send(request)

    async def _send_unchecked(self, request: XrpcRequest) -> XrpcResponse:
        return await self._xrpc.run(request)

    def paginate(self, endpoint: str, *, hostname: str | None = None, items: str | None = None,
                 cursor: str | None = None, cursor_key: str | None = None, resume: bool = False,
                 restart: bool = False, max_items: int | None = None, first_cursor: str | None = None,
                 **params: ParamValue) -> Paginator:
        """Iterate a cursor-based list endpoint: ``async for item in bsky.paginate(nsid, **params)``.

        Args:
            items: the response's list field, when it is not one of the standard names.
            cursor: start at this cursor (ignores any saved one).
            resume: start from the cursor saved for (account, endpoint, cursor_key) and save
                the cursor of every page the caller has finished. A listing that reached its
                end (``Paginator.finished``) stays there: the next run yields only what is new.
            restart: with ``resume``, forget the saved cursor and list from the start again.
            cursor_key: names the saved cursor; by default the parameters (without ``cursor``
                and ``limit``), so different parameters never share a cursor.
            max_items: stop after this many items.
            first_cursor: the cursor of a resumed run's first page when none is saved.
        """
        base = self._xrpc.request("GET", endpoint, hostname, params)
        if cursor_key is None and resume:
            cursor_key = default_cursor_key(base.params)

        async def make_request(page_cursor: str | None) -> XrpcRequest:
            return _page_request(base, page_cursor, cursor_key, first_cursor)

        return Paginator(self._xrpc, self.cursors, make_request, items=items, cursor=cursor, resume=resume,
                         restart=restart, max_items=max_items)

    def paginate_call(self, query: Query[_T], items: Callable[[_T], Sequence[_I]], *, hostname: str | None = None,
                      cursor: str | None = None, cursor_key: str | None = None, resume: bool = False,
                      restart: bool = False, max_items: int | None = None) -> TypedPaginator[_I]:
        """Iterate a typed listing: ``async for post in bsky.paginate_call(feed.get_author_feed(actor=...),
        lambda page: page.feed)`` yields ``FeedViewPost`` models.

        ``query`` is a query of ``pysky_async.lex`` called with its parameters (a ``cursor`` among
        them is where the listing starts); ``items`` picks the items out of a decoded page. The
        other arguments are ``paginate``'s. A page that does not fit the model raises ``InvalidResponse``.
        """
        from .lex._call import Query, read

        if not isinstance(query, Query):
            raise InvalidInput(f"paginate_call takes a query of pysky_async.lex called with its parameters, e.g. "
                               f"lex.app.bsky.feed.get_author_feed(actor='alice.test'), not {query!r}")
        params = dict(query.params)
        start = params.pop("cursor", None)
        base = self._xrpc.request("GET", query.nsid, hostname, params)
        if cursor_key is None and resume:
            cursor_key = default_cursor_key(base.params)

        async def make_request(page_cursor: str | None) -> XrpcRequest:
            return _page_request(base, page_cursor, cursor_key, None)

        return TypedPaginator(self._xrpc, self.cursors, make_request, read=lambda page: read(page, query.output,
                              query.nsid), items=items, cursor=cursor or start, resume=resume, restart=restart,
                              max_items=max_items)

    def list_records(self, collection: str, repo: str | None = None, *, limit: int = 100, reverse: bool = False,
                     cursor: str | None = None, resume: bool = False, restart: bool = False,
                     max_items: int | None = None) -> Paginator:
        """Records of one collection (the logged-in account's unless ``repo`` is given).

        For ``resume`` use ``reverse=True`` (oldest first): a resumed run then yields the
        records created since the last run (``restart=True``: all of them again). Saved
        cursors are kept per repo, collection and order.
        """
        params: dict[str, Any] = {"collection": Nsid(collection), "limit": limit}
        if reverse:
            params["reverse"] = True
        base = self._xrpc.request("GET", "com.atproto.repo.listRecords", None, params)

        async def make_request(page_cursor: str | None) -> XrpcRequest:
            owner = await self._xrpc.repo(repo)
            request = base.replace(params={**base.params, "repo": owner})
            key = f"{owner}/{collection}" if reverse else f"{owner}/{collection}?newest-first"
            return _page_request(request, page_cursor, key, None)

        return Paginator(self._xrpc, self.cursors, make_request, cursor=cursor, resume=resume, restart=restart,
                         max_items=max_items)

    def search_posts(self, q: str, *, sort: Literal["top", "latest"] | None = None,
                     since: dt.datetime | str | None = None, until: dt.datetime | str | None = None,
                     mentions: str | None = None, author: str | None = None, lang: str | None = None,
                     domain: str | None = None, url: str | None = None, tag: Sequence[str] | None = None,
                     limit: int = 100, max_items: int | None = None, cursor: str | None = None,
                     resume: bool = False, restart: bool = False) -> Paginator:
        """Posts matching ``q`` (``app.bsky.feed.searchPosts``): ``async for post in bsky.search_posts("#python")``
        yields ``PostView`` objects, page after page.

        Needs a logged-in account on Bluesky (its public host refuses search). ``sort`` is
        ``"top"`` or ``"latest"``; ``since``/``until`` are datetimes (or ``YYYY-MM-DD``);
        ``author``/``mentions`` handles or DIDs; ``tag`` a list of tags without ``#``; ``limit``
        the page size (1..100); ``max_items``, ``cursor``, ``resume``, ``restart`` as in ``paginate``.
        Bluesky's search pages at most 10,000 results deep: narrow the query to see more. A refusal
        raises the AppView's error with what to do.
        """
        from ._search import SEARCH_POSTS, SearchPaginator, refuse_anonymous, search_params

        params = search_params(q, sort=sort, since=since, until=until, mentions=mentions, author=author, lang=lang,
                               domain=domain, url=url, tag=tag, limit=limit)
        refuse_anonymous(self.sessions.can_authenticate, self.config.public_host)
        base = self._xrpc.request("GET", SEARCH_POSTS, None, params)
        cursor_key = default_cursor_key(base.params) if resume else None

        async def make_request(page_cursor: str | None) -> XrpcRequest:
            return _page_request(base, page_cursor, cursor_key, None)

        return SearchPaginator(self._xrpc, self.cursors, make_request, items="posts", cursor=cursor, resume=resume,
                               restart=restart, max_items=max_items)

    def get_convo_logs(self, *, resume: bool = True, restart: bool = False, cursor: str | None = None) -> Paginator:
        """Chat events (``chat.bsky.convo.getLog``); a first resumed run (or ``restart=True``)
        replays from the start."""
        return self.paginate("chat.bsky.convo.getLog", items="logs", cursor=cursor, resume=resume, restart=restart,
                             first_cursor=ZERO_CURSOR)

    # -- flat methods: thin delegations to the feature objects ---------------------------

    @overload
    async def create_record(self, collection: str, record: Mapping[str, Any], *, rkey: str | None = None,
                            validate: bool | None = None, repo: str | None = None) -> RecordRef: ...

    @overload
    async def create_record(self, collection: LexObject, /, *, rkey: str | None = None,
                            validate: bool | None = None, repo: str | None = None) -> RecordRef: ...

    async def create_record(self, collection: str | LexObject, record: Mapping[str, Any] | None = None, *,
                            rkey: str | None = None, validate: bool | None = None,
                            repo: str | None = None) -> RecordRef:
        """``bsky.records.create``: create a record from (collection, dict) or a model alone
        (``create_record(lex.app.bsky.feed.Post(...))``; ``validate=True`` checks it locally first)."""
        args: tuple[Any, ...] = (collection,) if record is None else (collection, record)
        return await self.records.create(*args, rkey=rkey, validate=validate, repo=repo)

    @overload
    async def put_record(self, collection: str, rkey: str, record: Mapping[str, Any], *,
                         swap_record: str | None = None, swap_commit: str | None = None,
                         validate: bool | None = None, repo: str | None = None) -> RecordRef: ...

    @overload
    async def put_record(self, collection: LexObject, rkey: str, /, *, swap_record: str | None = None,
                         swap_commit: str | None = None, validate: bool | None = None,
                         repo: str | None = None) -> RecordRef: ...

    async def put_record(self, collection: str | LexObject, rkey: str, record: Mapping[str, Any] | None = None, *,
                         swap_record: str | None = None, swap_commit: str | None = None,
                         validate: bool | None = None, repo: str | None = None) -> RecordRef:
        """``bsky.records.put``: create or replace a record, from (collection, rkey, dict) or
        (model, rkey) (``swap_record=``, ``swap_commit=``, ``validate=``, ``repo=``)."""
        args: tuple[Any, ...] = (collection, rkey) if record is None else (collection, rkey, record)
        return await self.records.put(*args, swap_record=swap_record, swap_commit=swap_commit, validate=validate,
                                      repo=repo)

    @overload
    async def get_record(self, uri: str | AtUri, *, cid: str | None = None, model: None = None) -> Record: ...

    @overload
    async def get_record(self, uri: str | AtUri, *, cid: str | None = None, model: type[_M]) -> TypedRecord[_M]: ...

    async def get_record(self, uri: str | AtUri, *, cid: str | None = None,
                         model: type[_M] | None = None) -> Record | TypedRecord[_M]:
        """``bsky.records.get``: read one record by AT-URI (or bsky.app link); with ``model=``
        (e.g. ``lex.app.bsky.feed.Post``) its ``value`` is that model."""
        if model is None:
            return await self.records.get(uri, cid=cid)
        return await self.records.get(uri, cid=cid, model=model)

    async def delete_record(self, uri: str | AtUri, *, swap_record: str | None = None,
                            swap_commit: str | None = None) -> None:
        """``bsky.records.delete``: delete a record by AT-URI (``swap_record=``, ``swap_commit=``)."""
        await self.records.delete(uri, swap_record=swap_record, swap_commit=swap_commit)

    async def apply_writes(self, writes: Sequence[Create | Update | Delete], *, validate: bool | None = None,
                           swap_commit: str | None = None, repo: str | None = None) -> WriteResult:
        """``bsky.records.apply_writes``: up to 200 creates, updates and deletes in one commit."""
        return await self.records.apply_writes(writes, validate=validate, swap_commit=swap_commit, repo=repo)

    async def upload_blob(self, data: bytes, mimetype: str) -> dict[str, Any]:
        """``bsky.records.upload_blob``: upload bytes; returns the blob ref for a record."""
        return await self.records.upload_blob(data, mimetype)

    async def get_blob_url(self, did: str, cid: str) -> str:
        """``bsky.records.blob_url``: the URL of a blob on its owner's PDS."""
        return await self.records.blob_url(did, cid)

    async def get_blob(self, did: str, cid: str, *, max_bytes: int = BLOB_MAX_BYTES) -> bytes:
        """``bsky.records.get_blob``: download a blob from its owner's PDS (at most ``max_bytes``)."""
        return await self.records.get_blob(did, cid, max_bytes=max_bytes)

    async def create_post(self, text: str | None = None, *, post: Post | None = None,
                          **options: Unpack[PostOptions]) -> RecordRef:
        """``bsky.posts.create``: make a post; returns its ``uri`` and ``cid``."""
        return await self.posts.create(text, post=post, **options)

    async def create_report(self, subject: str | AtUri | RecordRef, *, reason_type: str, labeler: str | None,
                            reason: str | None = None) -> Report:
        """``bsky.moderation.create_report``: report a record or an account to the labeler ``labeler``
        (its DID, sent as ``atproto-proxy``; None: the PDS's default moderation service, silently)."""
        return await self.moderation.create_report(subject, reason_type=reason_type, labeler=labeler, reason=reason)

    async def get_user_profile(self, actor: str, *, force_remote_call: bool = False) -> JsonObject:
        """``bsky.profiles.get``: an actor's profile, from the cache when it has it."""
        return await self.profiles.get(actor, force_remote_call=force_remote_call)

    async def get_service_auth(self, aud: str, lxm: str | None = None, exp: int | None = None) -> str:
        """A token from the account's PDS that ``aud`` accepts as the account (for ``lxm`` only)."""
        return await self._xrpc.service_auth(aud, lxm, exp)

    async def upload_video(self, video: Video, *, progress: Callable[[int], object] | None = None,
                           timeout: float = 600,
                           poll_interval: float = 1.0, video_host: str | None = None,
                           video_service_did: str | None = None) -> UploadedVideo:
        """``bsky.video.upload``: check, upload and wait for a video to be processed."""
        return await self.video.upload(video, progress=progress, timeout=timeout, poll_interval=poll_interval,
                                       video_host=video_host, video_service_did=video_service_did)

    async def get_video_job(self, job_id: str, *, video_host: str | None = None) -> dict[str, Any]:
        """``bsky.video.get_job``: the video service's ``jobStatus`` of a job."""
        return await self.video.get_job(job_id, video_host=video_host)

    async def resolve_handle(self, handle: str) -> str:
        """``bsky.identity.resolve_handle``: the DID of a handle (cached for a few minutes)."""
        return await self.identity.resolve_handle(handle)

    async def resolve_did(self, did: str) -> dict[str, Any]:
        """``bsky.identity.resolve_did``: the DID document of a did:plc or did:web DID."""
        return await self.identity.resolve_did(did)

    async def export_follow_graph(self, query: str, out: str | Path, *, concurrency: int = 8,
                                  include_outsiders: bool = False, progress: bool = True,
                                  on_author: Callable[[str], object] | None = None) -> GraphReport:
        """``pysky_async.export_follow_graph(bsky, ...)``: the follow graph of the authors of posts
        matching ``query``, written to a CSV (an application of the library, in ``_graph``)."""
        return await export_follow_graph(self, query, out, concurrency=concurrency,
                                         include_outsiders=include_outsiders, progress=progress, on_author=on_author)


async def _close_at_loop_end(client: str, shared: _Shared) -> None:
    """Wait for the loop's shutdown (``asyncio.run`` cancels what is left); a client still open
    then is closed here — its call log written — and named in a ResourceWarning, as aiohttp does."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        if shared.state is _State.CLOSED:
            return
        await shared.aclose()
        warnings.warn(f"unclosed {client}: its call log was written when the event loop shut down; "
                      "use `async with AsyncBskyClient() as bsky:` or `await bsky.aclose()`",
                      ResourceWarning, stacklevel=1)


def _refuse_null_fields(endpoint: str, body: Mapping[str, Any]) -> None:
    """A None field would go out as JSON ``null``, which no lexicon field takes (``repo=bsky.did``
    before a login was the usual way to get one): say so before any request."""
    nulls = [name for name, value in body.items() if value is None]
    if nulls:
        raise InvalidInput(f"{endpoint}: {', '.join(nulls)} is None, which would be sent as null: "
                           "give it a value or leave it out")


def _page_request(base: XrpcRequest, cursor: str | None, cursor_key: str | None,
                  first_cursor: str | None) -> XrpcRequest:
    """One page's request: a fresh copy of ``base`` (its own context) with the cursor set."""
    return base.replace(params={**base.params, "cursor": cursor},
                        context=CallContext(cursor_key=cursor_key, first_cursor=first_cursor))
