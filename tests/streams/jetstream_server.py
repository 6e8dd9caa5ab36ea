"""A Jetstream v1-compatible server for tests, fed from the real PDS's firehose.

Jetstream itself cannot be installed here, so this translates ``subscribeRepos`` frames into
Jetstream v1 JSON (wire format: bluesky-social/jetstream, internal/subscribe: one event per
record operation; ``time_us`` cursors; ``wantedCollections`` with ``prefix.*``; ``wantedDids``;
``compress=true`` -> one zstd frame per message with a dictionary, here trained at test time;
``requireHello`` and ``options_update`` messages that swap a connection's filters).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import Any

import aiohttp
import libipld
import zstandard
from aiohttp import web

from pysky_async._json_body import atproto_json

from .loopback import start_app


class _Filter:
    def __init__(self, collections: list[str], dids: list[str]) -> None:
        self.exact = {c for c in collections if not c.endswith(".*")}
        self.prefixes = tuple(c[:-1] for c in collections if c.endswith(".*"))
        self.any = not collections
        self.dids = set(dids) or None

    def match(self, did: str, collection: str | None) -> bool:
        if self.dids is not None and did not in self.dids:
            return False
        return self.any or collection is None or collection in self.exact or collection.startswith(self.prefixes)


class JetstreamServer:
    def __init__(self, pds_url: str) -> None:
        self.firehose = f"{pds_url.replace('http', 'ws', 1)}/xrpc/com.atproto.sync.subscribeRepos?cursor=0"
        self.log: list[tuple[int, str, str | None, str]] = []
        """(time_us, did, collection or None, JSON text) in stream order."""
        self.dictionary: bytes | None = None
        self.compressed_sent = 0
        self.options_updates = 0
        self.queries: list[str] = []
        self.port = 0
        self._time_us = 0
        self._grown = asyncio.Event()
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._ingest: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._ingest = asyncio.create_task(self._ingest_firehose())
        app = web.Application()
        app.router.add_get("/subscribe", self._subscribe)
        self._runner, self.port = await start_app(app, self.port)

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._ingest is not None:
            self._ingest.cancel()
            await asyncio.gather(self._ingest, return_exceptions=True)

    async def caught_up(self, seconds: float = 1.0) -> None:
        """Wait until the firehose has been quiet for ``seconds``."""
        while True:
            size = len(self.log)
            await asyncio.sleep(seconds)
            if len(self.log) == size:
                return

    def train_dictionary(self, size: int = 16_384) -> bytes:
        samples: list[bytes | bytearray | memoryview] = [text.encode() for *_, text in self.log]
        self.dictionary = zstandard.train_dictionary(size, samples).as_bytes()
        return self.dictionary

    # ---------------------------------------------------------------- ingest
    def _append(self, did: str, time: str, collection: str | None, event: dict[str, Any]) -> None:
        at = int(dt.datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp() * 1_000_000)
        self._time_us = max(self._time_us + 1, at)
        text = json.dumps({"did": did, "time_us": self._time_us, **event}, separators=(",", ":"))
        self.log.append((self._time_us, did, collection, text))

    async def _ingest_firehose(self) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(self.firehose, max_msg_size=0) as ws:
            async for message in ws:
                header, body = libipld.decode_dag_cbor_multi(message.data)
                kind = header.get("t")
                if kind == "#commit":
                    _, blocks = libipld.decode_car(body["blocks"])
                    for op in body["ops"]:
                        collection, _, rkey = op["path"].partition("/")
                        commit = {"rev": body["rev"], "operation": op["action"], "collection": collection,
                                  "rkey": rkey}
                        if op["action"] != "delete":
                            commit["record"] = atproto_json(blocks[op["cid"]])
                            commit["cid"] = libipld.encode_cid(op["cid"])
                        self._append(body["repo"], body["time"], collection, {"kind": "commit", "commit": commit})
                elif kind == "#identity":
                    identity = {k: body[k] for k in ("did", "handle", "seq", "time") if k in body}
                    self._append(body["did"], body["time"], None, {"kind": "identity", "identity": identity})
                elif kind == "#account":
                    account = {k: body[k] for k in ("active", "did", "seq", "status", "time") if k in body}
                    self._append(body["did"], body["time"], None, {"kind": "account", "account": account})
                self._grown.set()

    # ---------------------------------------------------------------- subscribers
    async def _subscribe(self, request: web.Request) -> web.WebSocketResponse:
        query = request.query
        self.queries.append(request.query_string)
        state = {"filter": _Filter(query.getall("wantedCollections", []), query.getall("wantedDids", []))}
        hello = asyncio.Event()
        if query.get("requireHello") != "true":
            hello.set()
        compressor = None
        if query.get("compress") == "true":
            assert self.dictionary is not None, "train_dictionary() first"
            compressor = zstandard.ZstdCompressor(dict_data=zstandard.ZstdCompressionDict(self.dictionary))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)

        async def read_options() -> None:
            async for message in ws:
                data = json.loads(message.data)
                if data.get("type") == "options_update":
                    payload = data["payload"]
                    state["filter"] = _Filter(payload.get("wantedCollections") or [], payload.get("wantedDids") or [])
                    self.options_updates += 1
                    hello.set()

        reader = asyncio.create_task(read_options())
        try:
            await hello.wait()
            cursor = query.get("cursor")
            position = len(self.log)
            if cursor is not None:
                position = next((i for i, entry in enumerate(self.log) if entry[0] >= int(cursor)), len(self.log))
            while not ws.closed:
                while position < len(self.log):
                    _, did, collection, text = self.log[position]
                    position += 1
                    if state["filter"].match(did, collection):
                        if compressor is not None:
                            await ws.send_bytes(compressor.compress(text.encode()))
                            self.compressed_sent += 1
                        else:
                            await ws.send_str(text)
                self._grown.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._grown.wait(), 0.2)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self._sockets.discard(ws)
        return ws
