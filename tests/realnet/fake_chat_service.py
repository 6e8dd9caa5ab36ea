"""An in-process stand-in for Bluesky's chat service (api.bsky.chat), which is not open source,
reached the way clients reach the real one: through the account's PDS, which forwards a call
carrying ``atproto-proxy: <service DID>#bsky_chat`` with a service token it signs for the user.

The service's DID is ``did:web:localhost%3A<port>``: the reference PDS resolves it (dev mode
fetches ``http://localhost:<port>/.well-known/did.json``) and finds the ``#bsky_chat`` service
endpoint there. Every call's token is really verified (the user's ``#atproto`` key from the PLC
directory; ``aud`` = the service DID; ``lxm`` = the method), as the real service does.

It speaks the ``chat.bsky.convo`` wire format (lexicons in pysky_async.lex.chat.bsky), nothing more:
``getConvoForMembers``, ``getConvo``, ``listConvos``, ``getMessages``, ``sendMessage``,
``updateRead``, ``getLog`` (revs are TIDs; no cursor means "from now", ``2222222222222`` replays
from the start; the answer's cursor is the last rev returned, or the one given).

    async with FakeChatService(plc_url=pds.plc_url) as chat:
        await bsky.chat.via(chat.proxy).send_to("bob.test", "hi")
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import httpx

from .fake_video_service import TokenRejected, _body, _claims, _next_event, verify_service_token
from .pds import _free_port

S32 = "234567abcdefghijklmnopqrstuvwxyz"


def tid(micros: int) -> str:
    """A 13-character base32-sortable TID of ``micros`` (clock id 0)."""
    value = micros << 10
    return "".join(S32[(value >> (5 * i)) & 31] for i in reversed(range(13)))


@dataclass
class Convo:
    id: str
    members: list[str]
    rev: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    read_up_to: dict[str, str] = field(default_factory=dict)


class FakeChatService:
    """The fake; ``requests`` lists (nsid, issuer DID) of every authenticated call."""

    def __init__(self, *, plc_url: str) -> None:
        self.plc_url = plc_url.rstrip("/")
        self.convos: dict[str, Convo] = {}
        self.log: list[tuple[str, list[str], dict[str, Any]]] = []  # (rev, member DIDs, log view)
        self.requests: list[tuple[str, str]] = []
        self.rejected_tokens: list[str] = []
        self.handles: dict[str, str] = {}
        self.url = ""
        self.did = ""
        self._server: asyncio.Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._clock = itertools.count(int(time.time() * 1_000_000))
        self._did_docs: dict[str, dict[str, Any]] = {}

    @property
    def proxy(self) -> str:
        """The ``atproto-proxy`` value that reaches this service."""
        return f"{self.did}#bsky_chat"

    def _rev(self) -> str:
        return tid(next(self._clock))

    async def start(self) -> FakeChatService:
        self._http = httpx.AsyncClient(timeout=30)
        port = _free_port()
        try:  # "localhost" may resolve to either address family in the PDS
            self._server = await asyncio.start_server(self._connection, ["127.0.0.1", "::1"], port)
        except OSError:
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", port)
        self.url = f"http://localhost:{port}"
        self.did = f"did:web:localhost%3A{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> FakeChatService:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await _next_event(conn, reader)
                if not isinstance(event, h11.Request):
                    break
                chunks = [chunk async for chunk in _body(conn, reader)]
                try:
                    status, payload = await self._dispatch(event, b"".join(chunks))
                except TokenRejected as exc:
                    self.rejected_tokens.append(str(exc))
                    status, payload = 401, {"error": "AuthenticationRequired", "message": str(exc)}
                data = json.dumps(payload).encode()
                headers = [("content-type", "application/json; charset=utf-8"), ("content-length", str(len(data)))]
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                writer.write(conn.send(h11.Data(data=data)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        target = urlsplit(request.target.decode())
        query = parse_qs(target.query)
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        if target.path == "/.well-known/did.json":
            return 200, {"@context": ["https://www.w3.org/ns/did/v1"], "id": self.did, "service": [
                {"id": "#bsky_chat", "type": "BskyChatService", "serviceEndpoint": self.url}]}
        nsid = target.path.removeprefix("/xrpc/")
        me = await self._verify(headers, nsid)
        self.requests.append((nsid, me))
        data = json.loads(body) if body else {}
        one = {k: v[0] for k, v in query.items()}
        if nsid == "chat.bsky.convo.getConvoForMembers":
            members = sorted(set(query.get("members", [])))
            if me not in members:
                return 400, {"error": "InvalidRequest", "message": "the caller must be a member"}
            return 200, {"convo": await self._view(self._convo_for(members), me)}
        if nsid == "chat.bsky.convo.getConvo":
            convo = self._member_convo(one.get("convoId", ""), me)
            return (404, _not_found()) if convo is None else (200, {"convo": await self._view(convo, me)})
        if nsid == "chat.bsky.convo.listConvos":
            mine = sorted((c for c in self.convos.values() if me in c.members), key=lambda c: c.rev, reverse=True)
            return 200, await self._page(mine, one, lambda c: c.rev, "convos", lambda c: self._view(c, me))
        if nsid == "chat.bsky.convo.getMessages":
            convo = self._member_convo(one.get("convoId", ""), me)
            if convo is None:
                return 404, _not_found()
            newest_first = list(reversed(convo.messages))

            async def same(m: dict[str, Any]) -> dict[str, Any]:
                return m

            return 200, await self._page(newest_first, one, lambda m: m["rev"], "messages", same)
        if nsid == "chat.bsky.convo.sendMessage":
            convo = self._member_convo(str(data.get("convoId", "")), me)
            if convo is None:
                return 404, _not_found()
            text = data.get("message", {}).get("text")
            if not isinstance(text, str) or not text:
                return 400, {"error": "InvalidRequest", "message": "message.text is required"}
            rev = self._rev()
            view = {"$type": "chat.bsky.convo.defs#messageView", "id": rev, "rev": rev, "text": text,
                    "sender": {"did": me}, "sentAt": _now()}
            if data["message"].get("facets"):
                view["facets"] = data["message"]["facets"]
            convo.messages.append(view)
            convo.rev = rev
            convo.read_up_to[me] = rev
            self.log.append((rev, convo.members, {"$type": "chat.bsky.convo.defs#logCreateMessage", "rev": rev,
                                                  "convoId": convo.id, "message": view}))
            return 200, view
        if nsid == "chat.bsky.convo.updateRead":
            convo = self._member_convo(str(data.get("convoId", "")), me)
            if convo is None:
                return 404, _not_found()
            convo.read_up_to[me] = str(data.get("messageId") or convo.rev)
            return 200, {"convo": await self._view(convo, me)}
        if nsid == "chat.bsky.convo.getLog":
            cursor = one.get("cursor")
            visible = [view for _, members, view in self.log if me in members]
            if cursor is None:  # from now on
                return 200, {"logs": [], "cursor": visible[-1]["rev"] if visible else self._rev()}
            after = [view for view in visible if view["rev"] > cursor][:100]
            return 200, {"logs": after, "cursor": after[-1]["rev"] if after else cursor}
        return 501, {"error": "MethodNotImplemented", "message": f"{nsid} is not implemented"}

    def _convo_for(self, members: list[str]) -> Convo:
        for convo in self.convos.values():
            if convo.members == members:
                return convo
        rev = self._rev()
        convo = Convo(id=f"convo{len(self.convos) + 1}", members=members, rev=rev)
        self.convos[convo.id] = convo
        self.log.append((rev, members, {"$type": "chat.bsky.convo.defs#logBeginConvo", "rev": rev,
                                        "convoId": convo.id}))
        return convo

    def _member_convo(self, convo_id: str, me: str) -> Convo | None:
        convo = self.convos.get(convo_id)
        return convo if convo is not None and me in convo.members else None

    async def _view(self, convo: Convo, me: str) -> dict[str, Any]:
        seen = convo.read_up_to.get(me, "")
        view: dict[str, Any] = {
            "id": convo.id, "rev": convo.rev, "muted": False, "status": "accepted",
            "members": [{"did": did, "handle": await self._handle(did)} for did in convo.members],
            "unreadCount": sum(1 for m in convo.messages if m["rev"] > seen and m["sender"]["did"] != me)}
        if convo.messages:
            view["lastMessage"] = convo.messages[-1]
        return view

    async def _page(self, items: list[Any], params: dict[str, str], key: Any, name: str,
                    render: Any) -> dict[str, Any]:
        limit = int(params.get("limit", "50"))
        if not 1 <= limit <= 100:
            raise TokenRejected("limit must be 1..100")  # pragma: no cover - the client checks
        cursor = params.get("cursor")
        rest = [item for item in items if cursor is None or key(item) < cursor]
        page = rest[:limit]
        out: dict[str, Any] = {name: [await render(item) for item in page]}
        if len(rest) > limit:
            out["cursor"] = key(page[-1])
        return out

    async def _handle(self, did: str) -> str:
        if did not in self.handles:
            doc = await self._did_doc(did)
            aka = [a for a in doc.get("alsoKnownAs", []) if a.startswith("at://")]
            self.handles[did] = aka[0].removeprefix("at://") if aka else "handle.invalid"
        return self.handles[did]

    async def _verify(self, headers: dict[str, str], nsid: str) -> str:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise TokenRejected("a service token (Authorization: Bearer) is required")
        token = auth.removeprefix("Bearer ")
        issuer = str(_claims(token).get("iss", "")).split("#")[0]
        await verify_service_token(token, await self._did_doc(issuer), aud=self.did, lxm=nsid)
        return issuer

    async def _did_doc(self, did: str) -> dict[str, Any]:
        if did not in self._did_docs:
            if not did.startswith("did:plc:"):
                raise TokenRejected(f"cannot resolve {did!r}")
            assert self._http is not None
            response = await self._http.get(f"{self.plc_url}/{did}")
            if response.status_code != 200:
                raise TokenRejected(f"{did} does not resolve (PLC answered {response.status_code})")
            self._did_docs[did] = response.json()
        return self._did_docs[did]


def _not_found() -> dict[str, Any]:
    return {"error": "InvalidConvo", "message": "Convo not found"}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
