"""A man in the middle of a label stream: relays a labeler's ``subscribeLabels`` frames, changing
each label's ``val`` and keeping its ``sig`` (what a compromised proxy or fake server would do)."""

from __future__ import annotations

from typing import Any

import aiohttp
import libipld
from aiohttp import web

from ..streams.loopback import start_app


def tamper(frame: bytes, val: str) -> bytes:
    header, body = libipld.decode_dag_cbor_multi(frame)
    if header.get("t") == "#labels":
        body = {**body, "labels": [{**label, "val": val} for label in body["labels"]]}
    return bytes(libipld.encode_dag_cbor(header)) + bytes(libipld.encode_dag_cbor(body))


class TamperingProxy:
    """``url`` serves ``upstream``'s label stream with every label's ``val`` replaced by ``val``."""

    def __init__(self, upstream: str, val: str = "porn") -> None:
        self.upstream = upstream.replace("http://", "ws://").replace("https://", "wss://")
        self.val = val
        self.relayed = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._upstreams: set[aiohttp.ClientWebSocketResponse] = set()

    async def __aenter__(self) -> TamperingProxy:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.label.subscribeLabels", self._relay)
        self._session = aiohttp.ClientSession()
        self._runner, port = await start_app(app)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        for upstream in list(self._upstreams):
            await upstream.close()  # ends the relays, so the server stops at once
        await self._runner.cleanup()
        await self._session.close()

    async def _relay(self, request: web.Request) -> web.WebSocketResponse:
        assert self._session is not None
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        query: dict[str, Any] = dict(request.query)
        async with self._session.ws_connect(f"{self.upstream}/xrpc/com.atproto.label.subscribeLabels",
                                            params=query) as upstream:
            self._upstreams.add(upstream)
            async for message in upstream:
                if message.type != aiohttp.WSMsgType.BINARY or ws.closed:
                    break
                await ws.send_bytes(tamper(message.data, self.val))
                self.relayed += 1
            self._upstreams.discard(upstream)
        await ws.close()
        return ws
