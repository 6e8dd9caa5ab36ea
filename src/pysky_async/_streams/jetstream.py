"""Jetstream v1 (``/subscribe``): JSON events, ``time_us`` cursors, optional zstd with a dictionary.

We speak v1 (the frozen wire every public instance serves) and not v2
(``network.bsky.jetstream.subscribeEvents``): v1's ``time_us`` cursor works on any instance,
which failover needs (v2 seqs are local to one instance), and only v1 changes filters on a
live connection (``options_update``; v2 connections are server-push only).

Record values come as JSON; their links (``{"$link": ...}``) become ``CID`` and their byte strings
(``{"$bytes": ...}``) ``bytes``, the types firehose records carry, so one handler fits both
sources. Only messages that contain either form are decoded with the hook that converts them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import libipld
import zstandard

from .._cid import CID
from .._cid import _check as check_cid
from .._exceptions import FrameDecodeError
from .collection_filter import check_collections
from .events import AccountEvent, CommitEvent, IdentityEvent, RepoOp, StreamEvent

PUBLIC_INSTANCES = (
    "wss://jetstream1.us-east.bsky.network",
    "wss://jetstream2.us-east.bsky.network",
    "wss://jetstream1.us-west.bsky.network",
    "wss://jetstream2.us-west.bsky.network",
)
_MARKS_TEXT = ('"$link"', '"$bytes"')
_MARKS_BYTES = (b'"$link"', b'"$bytes"')
QUERY_DID_LIMIT = 100
"""More wanted DIDs than this go in an ``options_update`` after ``requireHello``, not the URL."""


def v1_dictionary() -> bytes:
    """Jetstream v1's zstd dictionary (id 1612007021), from bluesky-social/jetstream (MIT/Apache-2.0)."""
    return resources.files("pysky_async._streams").joinpath("jetstream_v1.zdict").read_bytes()


def _time(time_us: int) -> str:
    return dt.datetime.fromtimestamp(time_us / 1e6, dt.timezone.utc).isoformat()


def typed_value(obj: dict[str, Any]) -> Any:
    """A JSON object as the record value it stands for: ``{"$link"}`` a ``CID``, ``{"$bytes"}``
    ``bytes``, anything else (a malformed link or byte string too) itself (a ``json.loads`` hook)."""
    if len(obj) == 1:
        link = obj.get("$link")
        if isinstance(link, str):
            try:
                raw = libipld.decode_multibase(link)[1]
                check_cid(raw)  # what CID.decode checks, without its per-call imports (a third of the cost)
            except ValueError:
                return obj
            return CID(raw)
        data = obj.get("$bytes")
        if isinstance(data, str):
            try:
                return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
            except (binascii.Error, ValueError):
                return obj
    return obj


def decode_message(data: dict[str, Any]) -> StreamEvent:
    """A decoded Jetstream v1 JSON object as a typed event (``cursor`` is its ``time_us``); decode
    its text with ``object_hook=typed_value`` for the record's links and bytes as ``CID`` and ``bytes``."""
    try:
        kind, did, time_us = data["kind"], data["did"], int(data["time_us"])
        if kind == "commit":
            c = data["commit"]
            op = RepoOp(c["operation"], c["collection"], c["rkey"], c.get("cid"), c.get("record"))
            return CommitEvent(time_us, did, _time(time_us), rev=c["rev"], ops=(op,))
        if kind == "identity":
            return IdentityEvent(time_us, did, _time(time_us), handle=data["identity"].get("handle"))
        if kind == "account":
            a = data["account"]
            return AccountEvent(time_us, did, _time(time_us), active=bool(a["active"]), status=a.get("status"))
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameDecodeError(f"malformed Jetstream event: {exc!r}") from exc
    raise FrameDecodeError(f"unknown Jetstream event kind {kind!r}")


class JetstreamSource:
    """Jetstream v1 on one or more instances (failover in order).

    Args:
        instances: ``wss://host`` (or http(s)://) of each instance.
        collections / dids: ``wantedCollections`` (NSIDs or ``prefix.*``; others raise
            ``InvalidInput``) and ``wantedDids``.
        compress: ask for zstd-compressed messages (``compress=true``).
        zstd_dictionary: the dictionary the server compresses with (default: Jetstream's own).
        rewind: seconds to go back from the cursor when (re)connecting: ``time_us`` is each
            instance's own clock, so a resumed or failed-over stream repeats a little.
    """

    monotonic = False
    key = "jetstream"
    """The cursor's scope: ``time_us`` works on every instance."""

    def __init__(self, instances: Sequence[str] = PUBLIC_INSTANCES, *, collections: Iterable[str] | None = None,
                 dids: Iterable[str] | None = None, compress: bool = False, zstd_dictionary: bytes | None = None,
                 rewind: float = 3.0) -> None:
        self.instances = [self._ws_base(i) for i in instances]
        self.collections = check_collections(collections)
        self.dids = list(dids or ())
        self.compress = compress
        self.rewind_us = int(rewind * 1_000_000)
        self._decompressor: zstandard.ZstdDecompressor | None = None
        if compress:
            data = zstd_dictionary if zstd_dictionary is not None else v1_dictionary()
            self._decompressor = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(data))

    @staticmethod
    def _ws_base(instance: str) -> str:
        parts = urlsplit(instance if "://" in instance else f"wss://{instance}")
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    def _hello(self) -> bool:
        return len(self.dids) > QUERY_DID_LIMIT

    def urls(self, cursor: int | None) -> list[str]:
        """One URL per instance with the filters and the (rewound) cursor."""
        query: list[tuple[str, str]] = [("wantedCollections", c) for c in self.collections]
        if self._hello():
            query.append(("requireHello", "true"))
        else:
            query += [("wantedDids", d) for d in self.dids]
        if cursor is not None:
            query.append(("cursor", str(max(0, cursor - self.rewind_us))))
        if self.compress:
            query.append(("compress", "true"))
        suffix = f"?{urlencode(query)}" if query else ""
        return [f"{base}/subscribe{suffix}" for base in self.instances]

    def options_update(self) -> dict[str, Any]:
        """The ``options_update`` message carrying the current filters."""
        return {"type": "options_update", "payload": {"wantedCollections": self.collections,
                                                      "wantedDids": self.dids, "maxMessageSizeBytes": 0}}

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        """With ``requireHello`` the server waits for the filters before sending anything."""
        if self._hello():
            await ws.send_json(self.options_update())

    async def update_filters(self, ws: aiohttp.ClientWebSocketResponse[bool] | None, *,
                             collections: Iterable[str] | None, dids: Iterable[str] | None) -> None:
        """New filters: sent on the live connection (if any) and used for every reconnect."""
        self.collections = check_collections(collections)
        self.dids = list(dids or ())
        if ws is not None and not ws.closed:
            await ws.send_json(self.options_update())

    def decode(self, message: bytes | str) -> StreamEvent:
        if isinstance(message, bytes):
            if self._decompressor is None:
                raise FrameDecodeError("a binary message without compress=True")
            try:
                message = self._decompressor.decompressobj().decompress(message)
            except zstandard.ZstdError as exc:
                raise FrameDecodeError(f"not zstd with the configured dictionary: {exc}") from exc
        if isinstance(message, bytes):
            links = _MARKS_BYTES[0] in message or _MARKS_BYTES[1] in message
        else:
            links = _MARKS_TEXT[0] in message or _MARKS_TEXT[1] in message
        try:
            data = json.loads(message, object_hook=typed_value) if links else json.loads(message)
        except ValueError as exc:
            raise FrameDecodeError(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise FrameDecodeError("not a JSON object")
        return decode_message(data)

    def __repr__(self) -> str:
        return f"JetstreamSource({self.instances!r}, compress={self.compress})"
