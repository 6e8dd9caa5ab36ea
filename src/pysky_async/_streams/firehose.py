"""The firehose (``com.atproto.sync.subscribeRepos``): frame decoding and the source.

Each binary frame is two concatenated DAG-CBOR objects, a header ``{op, t}`` and a body;
record values travel in the commit's CAR slice, found by CID (API-NOTES, "Streams").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import libipld

from .._exceptions import FrameDecodeError
from .car import car_blocks
from .events import AccountEvent, CommitEvent, IdentityEvent, InfoEvent, RepoOp, StreamEvent, SyncEvent

SUBSCRIBE_REPOS = "/xrpc/com.atproto.sync.subscribeRepos"
_ACTIONS = frozenset({"create", "update", "delete"})


def _cid(value: Any) -> str | None:
    return libipld.encode_cid(value) if isinstance(value, bytes) else None


def _ops(body: dict[str, Any]) -> tuple[RepoOp, ...]:
    raw_ops = body["ops"]
    blocks: dict[bytes, Any] = {}
    raw_blocks = body.get("blocks")
    if raw_blocks and not body.get("tooBig"):
        blocks = car_blocks(raw_blocks, {op["cid"] for op in raw_ops if isinstance(op.get("cid"), bytes)})
    ops = []
    for op in raw_ops:
        action = op["action"]
        if action not in _ACTIONS:
            raise FrameDecodeError(f"unknown op action {action!r}")
        collection, _, rkey = op["path"].partition("/")
        raw_cid = op.get("cid")
        record = blocks.get(raw_cid) if isinstance(raw_cid, bytes) else None
        ops.append(RepoOp(action, collection, rkey, _cid(raw_cid), record))
    return tuple(ops)


def decode_frame(frame: bytes) -> StreamEvent:
    """Decode one firehose frame into a typed event.

    Raises:
        FrameDecodeError: the frame is not a valid header + body, is an error frame, or has an
            unknown type (its reason is in the message).
    """
    try:
        parts = libipld.decode_dag_cbor_multi(frame)
    except (ValueError, TypeError) as exc:
        raise FrameDecodeError(f"not DAG-CBOR: {exc}") from exc
    if len(parts) != 2 or not isinstance(parts[0], dict) or not isinstance(parts[1], dict):
        raise FrameDecodeError(f"expected a header and a body, got {len(parts)} object(s)")
    header, body = parts
    if header.get("op") == -1:
        raise FrameDecodeError(f"error frame from the server: {body.get('error')}: {body.get('message')}")
    if header.get("op") != 1:
        raise FrameDecodeError(f"unknown frame op {header.get('op')!r}")
    try:
        return _event(header.get("t"), body)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise FrameDecodeError(f"malformed {header.get('t')} body: {exc!r}") from exc


def _event(kind: Any, body: dict[str, Any]) -> StreamEvent:
    if kind == "#commit":
        return CommitEvent(int(body["seq"]), body["repo"], body["time"], rev=body["rev"], since=body.get("since"),
                           commit=_cid(body.get("commit")), ops=_ops(body), too_big=bool(body.get("tooBig")))
    if kind == "#identity":
        return IdentityEvent(int(body["seq"]), body["did"], body["time"], handle=body.get("handle"))
    if kind == "#account":
        return AccountEvent(int(body["seq"]), body["did"], body["time"], active=bool(body["active"]),
                            status=body.get("status"))
    if kind == "#sync":
        return SyncEvent(int(body["seq"]), body["did"], body["time"], rev=body["rev"])
    if kind == "#info":
        extra = {k: v for k, v in body.items() if k not in ("name", "message")}
        return InfoEvent(None, "", "", name=str(body["name"]), message=body.get("message"), extra=extra)
    raise FrameDecodeError(f"unknown frame type {kind!r}")


class FirehoseSource:
    """``subscribeRepos`` of one relay or PDS.

    Args:
        service: the relay or PDS, ``https://bsky.network`` or ``http://localhost:2583``
            (http(s) is turned into ws(s)).
    """

    monotonic = True
    """Cursors (seqs) only grow on one source: a repeated one after a reconnect is skipped."""

    def __init__(self, service: str) -> None:
        parts = urlsplit(service if "://" in service else f"https://{service}")
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        self._base = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.key = f"firehose:{self._base}"
        """The cursor's scope in the database: seqs are local to one relay or PDS."""

    def urls(self, cursor: int | None) -> list[str]:
        """Where to connect, resuming after ``cursor`` (None: the live tail)."""
        query = f"?{urlencode({'cursor': cursor})}" if cursor is not None else ""
        return [f"{self._base}{SUBSCRIBE_REPOS}{query}"]

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Nothing to send: the firehose needs no hello."""

    async def update_filters(self, ws: aiohttp.ClientWebSocketResponse | None, *,
                             collections: Iterable[str] | None, dids: Iterable[str] | None) -> None:
        """The firehose filters nothing on the server: the consumer's own filters do it all."""

    def decode(self, message: bytes | str) -> StreamEvent:
        if not isinstance(message, bytes):
            raise FrameDecodeError("a text frame on the firehose (frames are binary DAG-CBOR)")
        return decode_frame(message)

    def __repr__(self) -> str:
        return f"FirehoseSource({self._base!r})"
