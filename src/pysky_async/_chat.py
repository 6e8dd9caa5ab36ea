"""Direct messages (``bsky.chat``): ``chat.bsky.convo`` calls, typed, through the account's PDS.

Bluesky's chat service is never called directly: the account's PDS forwards each call with a
service token when the request carries ``atproto-proxy: did:web:api.bsky.chat#bsky_chat`` (so
accounts on any PDS can chat), for app-password and OAuth (DPoP) sessions alike. ``bsky.chat.via
(service)`` addresses another chat service the same way.

The set a bot needs: list conversations, find or start the one with a user, read and send
messages, mark them read, and follow everything that happens through ``getLog`` with a cursor
kept in the database (``bsky.chat.log()``: a restart goes on where the last run stopped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._config import CHAT_PROXY
from ._context import CallContext
from ._cursor import ZERO_CURSOR
from ._exceptions import APIError, InvalidInput
from ._pagination import TypedPaginator

if TYPE_CHECKING:
    from typing import TypeAlias

    from ._account import Account
    from ._cursor import CursorStore
    from ._request import XrpcRequest
    from ._response import JsonObject, XrpcResponse
    from ._xrpc import Xrpc
    from .lex._base import LexObject
    from .lex.chat.bsky.convo import ConvoView, DeletedMessageView, GetLogOutput, MessageView, SystemMessageView

    Message: TypeAlias = "MessageView | DeletedMessageView | SystemMessageView | JsonObject"
    """A message of a conversation (one of an unknown ``$type`` as a JsonObject)."""
    LogEvent: TypeAlias = "LexObject | JsonObject"
    """A getLog event: ``LogBeginConvo``, ``LogCreateMessage``... (an unknown ``$type`` as a JsonObject)."""

MAX_TEXT_GRAPHEMES = 1000
MAX_TEXT_BYTES = 10_000
"""chat.bsky.convo.defs#messageInput's text limits."""

NOT_ALLOWED = ("direct messages need a session allowed to use them: an app password created with \"Allow access "
               "to your direct messages\" (privileged), the account's own password, or an OAuth login whose scope "
               "includes transition:chat.bsky")


def explain(exc: APIError) -> APIError:
    """A refusal of the PDS to forward a chat call, with what to do (the same class)."""
    text = f"{exc.error or ''} {exc.message or ''}".lower()
    if "bad token method" not in text and "scope" not in text:
        return exc
    message = f"{exc.message}. {NOT_ALLOWED}" if exc.message else NOT_ALLOWED
    return type(exc)(exc.status_code, exc.error, message, endpoint=exc.endpoint, response=exc.response,
                     log_id=exc.log_id, retry_after=exc.retry_after)


async def _send(xrpc: Xrpc, request: XrpcRequest) -> XrpcResponse:
    try:
        return await xrpc.send(request)
    except APIError as exc:
        explained = explain(exc)
        if explained is exc:
            raise
        raise explained from exc


class _ChatPaginator(TypedPaginator[Any]):
    """A chat listing whose refusals say what to do."""

    async def _fetch(self, cursor: str | None, first: bool) -> tuple[XrpcRequest, XrpcResponse]:
        try:
            return await super()._fetch(cursor, first)
        except APIError as exc:
            explained = explain(exc)
            if explained is exc:
                raise
            raise explained from exc


class Chat:
    """Conversations and messages of the logged-in account (``bsky.chat``).

    Args:
        xrpc: how calls are made. sessions: the account. cursors: where ``log()`` keeps its cursor.
        service: the ``atproto-proxy`` target (``did#service_id``) the PDS forwards calls to.
    """

    def __init__(self, xrpc: Xrpc, sessions: Account, cursors: CursorStore, *, service: str = CHAT_PROXY) -> None:
        if "#" not in service or service.startswith("#") or service.endswith("#"):
            raise InvalidInput(f"the chat service is a DID and a service id, e.g. {CHAT_PROXY!r}; got {service!r}")
        self._xrpc = xrpc
        self._sessions = sessions
        self._cursors = cursors
        self.service = service

    def via(self, service: str) -> Chat:
        """The same account's chat on another service (``did:web:chat.example.com#bsky_chat``)."""
        return Chat(self._xrpc, self._sessions, self._cursors, service=service)

    def _request(self, method: str, nsid: str, params: dict[str, Any] | None = None) -> XrpcRequest:
        request = self._xrpc.request(method, nsid, None, {k: v for k, v in (params or {}).items() if v is not None},
                                     default_auth=True)
        return request.with_headers(**{"atproto-proxy": self.service})

    async def _post(self, nsid: str, body: dict[str, Any]) -> Any:
        return (await _send(self._xrpc, self._request("POST", nsid).replace(json=body))).raw

    def _paginate(self, nsid: str, output: type[Any], items: str, params: dict[str, Any], *, cursor: str | None,
                  resume: bool = False, restart: bool = False, max_items: int | None = None,
                  cursor_key: str | None = None, first_cursor: str | None = None) -> TypedPaginator[Any]:
        from .lex._call import read

        base = self._request("GET", nsid, params)

        async def make_request(page_cursor: str | None) -> XrpcRequest:
            return base.replace(params={**base.params, "cursor": page_cursor},
                                context=CallContext(cursor_key=cursor_key, first_cursor=first_cursor))

        return _ChatPaginator(self._xrpc, self._cursors, make_request, read=lambda page: read(page, output, nsid),
                              items=lambda page: getattr(page, items), cursor=cursor, resume=resume, restart=restart,
                              max_items=max_items)

    def list_convos(self, *, read_state: str | None = None, status: str | None = None, limit: int = 100,
                    max_items: int | None = None) -> TypedPaginator[ConvoView]:
        """The account's conversations, most recent first (``ConvoView``: ``id``, ``members``,
        ``last_message``, ``unread_count``...). ``read_state="unread"``, ``status="request"``
        or ``"accepted"`` filter them."""
        from .lex.chat.bsky.convo import ListConvosOutput

        return self._paginate("chat.bsky.convo.listConvos", ListConvosOutput, "convos",
                              {"readState": read_state, "status": status, "limit": limit}, cursor=None,
                              max_items=max_items)

    async def convo_with(self, *actors: str) -> ConvoView:
        """The conversation with these users (DIDs or handles; the account is added), created if
        there is none yet (``getConvoForMembers``)."""
        from .lex._call import read
        from .lex.chat.bsky.convo import GetConvoForMembersOutput

        if not actors:
            raise InvalidInput("convo_with needs at least one other member: bsky.chat.convo_with('alice.bsky.social')")
        me = (await self._sessions.current()).did
        members = [me]
        for actor in actors:
            did = actor if actor.startswith("did:") else await self._resolve(actor)
            if did not in members:
                members.append(did)
        response = await _send(self._xrpc, self._request("GET", "chat.bsky.convo.getConvoForMembers",
                                                         {"members": members}))
        return read(response, GetConvoForMembersOutput, "chat.bsky.convo.getConvoForMembers").convo

    async def _resolve(self, handle: str) -> str:
        response = await self._xrpc.get("com.atproto.identity.resolveHandle", params={"handle": handle.lstrip("@")})
        return str(response.require("did")[0])

    def messages(self, convo_id: str, *, limit: int = 100,
                 max_items: int | None = None) -> TypedPaginator[Message]:
        """A conversation's messages, newest first (``MessageView``, or ``DeletedMessageView``...)."""
        from .lex.chat.bsky.convo import GetMessagesOutput

        return self._paginate("chat.bsky.convo.getMessages", GetMessagesOutput, "messages",
                              {"convoId": convo_id, "limit": limit}, cursor=None, max_items=max_items)

    async def send(self, convo_id: str, text: str, *, facets: Sequence[dict[str, Any]] | None = None) -> MessageView:
        """Send ``text`` to a conversation; returns the ``MessageView`` the service stored."""
        from ._graphemes import grapheme_count
        from .lex._call import read
        from .lex.chat.bsky.convo import MessageView

        if not text.strip():
            raise InvalidInput("a chat message needs some text")
        if len(text.encode()) > MAX_TEXT_BYTES or grapheme_count(text) > MAX_TEXT_GRAPHEMES:
            raise InvalidInput(f"a chat message holds at most {MAX_TEXT_GRAPHEMES} graphemes ({MAX_TEXT_BYTES} "
                               "bytes): split it")
        message: dict[str, Any] = {"text": text}
        if facets:
            message["facets"] = list(facets)
        request = self._request("POST", "chat.bsky.convo.sendMessage").replace(
            json={"convoId": convo_id, "message": message})
        return read(await _send(self._xrpc, request), MessageView, "chat.bsky.convo.sendMessage")

    async def send_to(self, actor: str, text: str) -> MessageView:
        """Send ``text`` to one user (DID or handle) in your direct conversation with them."""
        convo = await self.convo_with(actor)
        return await self.send(convo.id, text)

    async def mark_read(self, convo_id: str, message_id: str | None = None) -> None:
        """Mark a conversation read (up to ``message_id``, else all of it)."""
        body = {"convoId": convo_id, **({"messageId": message_id} if message_id else {})}
        await self._post("chat.bsky.convo.updateRead", body)

    def log(self, *, name: str = "default", restart: bool = False,
            cursor: str | None = None) -> TypedPaginator[LogEvent]:
        """Everything that happened in the account's conversations (``getLog``: ``LogBeginConvo``,
        ``LogCreateMessage``...), oldest first, with a cursor kept under ``name`` in the database:
        each run yields only what came after the last one. A first run (or ``restart=True``)
        replays the log from its start; ``cursor=`` starts elsewhere without saving."""
        from .lex.chat.bsky.convo import GetLogOutput

        output: type[GetLogOutput] = GetLogOutput
        return self._paginate("chat.bsky.convo.getLog", output, "logs", {}, cursor=cursor,
                              resume=cursor is None, restart=restart, cursor_key=f"chat:{self.service}:{name}",
                              first_cursor=ZERO_CURSOR)
