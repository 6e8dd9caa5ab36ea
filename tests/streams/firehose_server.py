"""A loopback ``subscribeRepos`` server that follows the wire format, for cases a PDS rarely produces.

Frames are DAG-CBOR header + body; an error frame is ``{op: -1}`` + ``{error, message}``, after
which the server closes with 1008 and the error name as reason, as ``@atproto/xrpc-server`` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import libipld
from aiohttp import WSCloseCode, web

from .loopback import start_app

encode = libipld.encode_dag_cbor


def identity_frame(seq: int, padding: int = 0) -> bytes:
    """A valid ``#identity`` frame (``padding``: that many extra bytes in an unknown field)."""
    body: dict[str, object] = {"seq": seq, "did": f"did:plc:s{seq:023d}", "time": "2026-12-01T00:00:00.000Z",
                               "handle": f"s{seq}.test"}
    if padding:
        body["padding"] = b"x" * padding
    return bytes(encode({"op": 1, "t": "#identity"}) + encode(body))


def error_frame(error: str, message: str | None) -> bytes:
    body = {"error": error} if message is None else {"error": error, "message": message}
    return bytes(encode({"op": -1}) + encode(body))


@dataclass
class FakeFirehose:
    """Serves seqs ``1..len(frames)``; ``cursor=N`` replays those after N, then stays open.

    ``cursor`` above the last seq gets ``FutureCursor``; ``interrupt`` maps a connection number
    (0-based) to ``(after_frames, error, message)``: that connection sends an error frame after
    that many frames and closes. ``silent``: after the replay the server neither sends nor reads
    (a hung server: it never answers a close frame either).
    """

    frames: list[bytes]
    interrupt: dict[int, tuple[int, str, str | None]] = field(default_factory=dict)
    silent: bool = False
    gate: asyncio.Event | None = None
    """If given, no frame is sent before it is set."""
    cursors: list[str | None] = field(default_factory=list)
    connected_at: list[float] = field(default_factory=list)
    """The event loop's time at each connection."""
    port: int = 0
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.sync.subscribeRepos", self._subscribe)
        self._runner, self.port = await start_app(app)

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _error(self, ws: web.WebSocketResponse, error: str, message: str | None) -> web.WebSocketResponse:
        await ws.send_bytes(error_frame(error, message))
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=error.encode())
        return ws

    async def _subscribe(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = len(self.cursors)
        cursor = request.query.get("cursor")
        self.cursors.append(cursor)
        self.connected_at.append(asyncio.get_running_loop().time())
        start = 0 if cursor is None else int(cursor)
        if start > len(self.frames):
            return await self._error(ws, "FutureCursor", "Cursor in the future.")
        cut = self.interrupt.get(connection)
        if self.gate is not None:
            await self.gate.wait()
        for sent, frame in enumerate(self.frames[start:]):
            if cut is not None and sent == cut[0]:
                return await self._error(ws, cut[1], cut[2])
            await ws.send_bytes(frame)
        if self.silent:
            await self._release.wait()
        else:
            await ws.receive()  # stay open, as a live tail does, until the client leaves
        return ws
