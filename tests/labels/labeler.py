"""A labeler for tests: signs labels as ozone does and serves them on ``subscribeLabels``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import libipld
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from ..streams.loopback import start_app
from ..streams.repo_builder import sign

LABELER = "did:plc:labelerlabelerlabeler00"


def label_document(did: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """A labeler's DID document: ``#atproto_label`` is ``key``'s public half (a Multikey)."""
    from cryptography.hazmat.primitives import serialization

    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    prefix = b"\xe7\x01" if key.curve.name == "secp256k1" else b"\x80\x24"
    return {"id": did, "verificationMethod": [{"id": f"{did}#atproto_label", "type": "Multikey", "controller": did,
                                               "publicKeyMultibase": libipld.encode_multibase("z", prefix + point)}]}


def signed_label(key: ec.EllipticCurvePrivateKey, uri: str, val: str, *, src: str = LABELER, neg: bool = False,
                 cid: str | None = None, high_s: bool = False, exp: str | None = None) -> dict[str, Any]:
    """A label signed like @atproto/ozone's ``signLabel``: DAG-CBOR of the label without ``sig``."""
    label: dict[str, Any] = {"ver": 1, "src": src, "uri": uri, "val": val,
                             "cts": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")}
    if cid is not None:
        label["cid"] = cid
    if neg:
        label["neg"] = True
    if exp is not None:
        label["exp"] = exp
    label["sig"] = sign(key, libipld.encode_dag_cbor(label), high_s=high_s)
    return label


def labels_frame(seq: int, labels: list[dict[str, Any]]) -> bytes:
    return libipld.encode_dag_cbor({"op": 1, "t": "#labels"}) + libipld.encode_dag_cbor({"seq": seq, "labels": labels})


class FakeLabeler:
    """Serves ``frames`` (seq -> labels) after the cursor asked for, then stays open; records cursors."""

    def __init__(self) -> None:
        self.frames: dict[int, list[dict[str, Any]]] = {}
        self.cursors: list[int | None] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    async def __aenter__(self) -> FakeLabeler:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.label.subscribeLabels", self._subscribe)
        self._runner, port = await start_app(app)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _subscribe(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        raw = request.query.get("cursor")
        cursor = int(raw) if raw is not None else None
        self.cursors.append(cursor)
        try:
            for seq in sorted(self.frames):
                if cursor is not None and seq > cursor:
                    await ws.send_bytes(labels_frame(seq, self.frames[seq]))
            async for _message in ws:  # until the client closes (it sends nothing)
                pass
        finally:
            self._sockets.discard(ws)
        return ws
