"""The firehose (``com.atproto.sync.subscribeRepos``): frame decoding and the source.

Each binary frame is two concatenated DAG-CBOR objects, a header ``{op, t}`` and a body;
record values travel in the commit's CAR slice, found by CID (API-NOTES, "Streams").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import libipld

from .._exceptions import FrameDecodeError, StreamServerError
from .car import car_blocks
from .connection import websocket_base
from .events import AccountEvent, CommitEvent, IdentityEvent, InfoEvent, RepoOp, StreamEvent, SyncEvent

SUBSCRIBE_REPOS = "/xrpc/com.atproto.sync.subscribeRepos"
_ACTIONS = frozenset({"create", "update", "delete"})


def _cid(value: Any) -> str | None:
    return libipld.encode_cid(value) if isinstance(value, bytes) else None


def _blocks(body: dict[str, Any], keep_commit: bool) -> dict[bytes, Any]:
    raw_blocks = body.get("blocks")
    if not raw_blocks:
        return {}
    wanted = {op["cid"] for op in body["ops"] if isinstance(op.get("cid"), bytes)} if not body.get("tooBig") else set()
    if keep_commit and isinstance(body.get("commit"), bytes):
        wanted.add(body["commit"])
    return car_blocks(raw_blocks, wanted, check_hashes=not keep_commit)  # keep_commit: the verifier hashes


def _ops(body: dict[str, Any], blocks: dict[bytes, Any]) -> tuple[RepoOp, ...]:
    raw_ops = body["ops"]
    ops = []
    for op in raw_ops:
        action = op["action"]
        if action not in _ACTIONS:
            raise FrameDecodeError(f"unknown op action {action!r}")
        collection, _, rkey = op["path"].partition("/")
        raw_cid = op.get("cid")
        record = blocks.get(raw_cid) if isinstance(raw_cid, bytes) else None
        ops.append(RepoOp(action, collection, rkey, _cid(raw_cid), record, _cid(op.get("prev"))))
    return tuple(ops)


def decode_frame(frame: bytes, *, keep_commit: bool = False) -> StreamEvent:
    """Decode one firehose frame into a typed event (``keep_commit``: with ``signed_commit``).

    Raises:
        StreamServerError: an error frame (header ``{op: -1}``, body ``{error, message}``): the
            server refuses to go on (``FutureCursor``, ``ConsumerTooSlow``, ...) and closes.
        FrameDecodeError: the frame is not a valid header + body or has an unknown op or type
            (its reason is in the message).
    """
    try:
        parts = libipld.decode_dag_cbor_multi(frame)
    except (ValueError, TypeError) as exc:
        raise FrameDecodeError(f"not DAG-CBOR: {exc}") from exc
    if len(parts) != 2 or not isinstance(parts[0], dict) or not isinstance(parts[1], dict):
        raise FrameDecodeError(f"expected a header and a body, got {len(parts)} object(s)")
    header, body = parts
    if header.get("op") == -1:
        error, message = body.get("error"), body.get("message")
        if not isinstance(error, str) or not isinstance(message, (str, type(None))):
            raise FrameDecodeError(f"an error frame whose body is not {{error, message}}: {body!r:.200}")
        raise StreamServerError(f"the server sent error {error}" + (f": {message}" if message else ""),
                                error=error, server_message=message)
    if header.get("op") != 1:
        raise FrameDecodeError(f"unknown frame op {header.get('op')!r}")
    try:
        return _event(header.get("t"), body, keep_commit)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise FrameDecodeError(f"malformed {header.get('t')} body: {exc!r}") from exc


def _event(kind: Any, body: dict[str, Any], keep_commit: bool) -> StreamEvent:
    if kind == "#commit":
        blocks = _blocks(body, keep_commit)
        signed = blocks.get(body["commit"]) if keep_commit else None
        return CommitEvent(int(body["seq"]), body["repo"], body["time"], rev=body["rev"], since=body.get("since"),
                           commit=_cid(body.get("commit")), ops=_ops(body, blocks), too_big=bool(body.get("tooBig")),
                           signed_commit=signed, prev_data=_cid(body.get("prevData")),
                           frame=body if keep_commit else None)
    if kind == "#identity":
        return IdentityEvent(int(body["seq"]), body["did"], body["time"], handle=body.get("handle"))
    if kind == "#account":
        return AccountEvent(int(body["seq"]), body["did"], body["time"], active=bool(body["active"]),
                            status=body.get("status"))
    if kind == "#sync":
        return SyncEvent(int(body["seq"]), body["did"], body["time"], rev=body["rev"],
                         frame=body if keep_commit else None)
    if kind == "#info":
        extra = {k: v for k, v in body.items() if k not in ("name", "message")}
        return InfoEvent(None, "", "", name=str(body["name"]), message=body.get("message"), extra=extra)
    raise FrameDecodeError(f"unknown frame type {kind!r}")


class FirehoseSource:
    """``subscribeRepos`` of one relay or PDS.

    Args:
        service: the relay or PDS, ``https://bsky.network`` or ``http://localhost:2583``
            (http(s) is turned into ws(s)).
        keep_commit: keep each commit's signed commit block (``CommitEvent.signed_commit``) and
            decoded frame (``frame``: blocks and binary CIDs), which verification needs; the
            block hash checks are then left to the verifier (``CommitVerifier`` sets this).
    """

    monotonic = True
    """Cursors (seqs) only grow on one source: a repeated one after a reconnect is skipped."""

    def __init__(self, service: str, *, keep_commit: bool = False) -> None:
        self.keep_commit = keep_commit
        self._base = websocket_base(service)
        self.key = f"firehose:{self._base}"
        """The cursor's scope in the database: seqs are local to one relay or PDS."""

    def urls(self, cursor: int | None) -> list[str]:
        """Where to connect, resuming after ``cursor`` (None: the live tail)."""
        query = f"?{urlencode({'cursor': cursor})}" if cursor is not None else ""
        return [f"{self._base}{SUBSCRIBE_REPOS}{query}"]

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        """Nothing to send: the firehose needs no hello."""

    async def update_filters(self, ws: aiohttp.ClientWebSocketResponse[bool] | None, *,
                             collections: Iterable[str] | None, dids: Iterable[str] | None) -> None:
        """The firehose filters nothing on the server: the consumer's own filters do it all."""

    def decode(self, message: bytes | str) -> StreamEvent:
        if not isinstance(message, bytes):
            raise FrameDecodeError("a text frame on the firehose (frames are binary DAG-CBOR)")
        return decode_frame(message, keep_commit=self.keep_commit)

    def __repr__(self) -> str:
        return f"FirehoseSource({self._base!r})"
