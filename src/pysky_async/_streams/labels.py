"""A labeler's label stream (``com.atproto.label.subscribeLabels``): frames, signature checks, the source.

Each binary frame is a DAG-CBOR header ``{op, t}`` and a body: ``#labels`` ``{seq, labels: [label]}``
or ``#info`` ``{name, message}``. A label (``com.atproto.label.defs#label``) is signed by its
labeler (``src``): ``sig`` is a compact low-S ECDSA signature of the DAG-CBOR of the label without
``sig``, by the ``#atproto_label`` key of the labeler's DID document (@atproto/ozone ``signLabel``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
import libipld

from .._exceptions import FrameDecodeError, PyskyError, StreamError, VerificationError
from .._storage.store import Store
from .._sync.crypto import CheckSignature, parse_verification_method, signature_checker
from .connection import websocket_base
from .consumer import EventContext, StreamConsumer
from .events import InfoEvent, StreamEvent

logger = logging.getLogger("pysky_async.streams")

SUBSCRIBE_LABELS = "/xrpc/com.atproto.label.subscribeLabels"
ResolveDid = Callable[[str], Awaitable[dict[str, Any]]]
LabelPolicy = Literal["drop", "flag"]


@dataclass(frozen=True, slots=True)
class LabelEvent(StreamEvent):
    """One label (``com.atproto.label.defs#label``): ``src`` put ``val`` on ``uri``.

    ``cursor`` is the seq of the frame it came in, ``did`` the DID of the labelled account or
    record, ``time`` its ``cts``. ``neg`` True takes the label back; ``exp`` is when it expires.
    """

    src: str = ""
    uri: str = ""
    cid: str | None = None
    val: str = ""
    neg: bool = False
    cts: str = ""
    exp: str | None = None
    sig: bytes | None = field(default=None, repr=False)
    ver: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The label as received: what the signature covers (without ``sig``)."""
    invalid: str | None = field(default=None, compare=False)
    """Why the signature check failed, on a label a ``LabelVerifier(policy="flag")`` passed on."""

    def expired(self, now: dt.datetime | None = None) -> bool:
        """Whether ``exp`` has passed (a label without ``exp``, or with an unreadable one, never expires)."""
        if self.exp is None:
            return False
        try:
            expires = dt.datetime.fromisoformat(self.exp.replace("Z", "+00:00"))
        except ValueError:
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.timezone.utc)
        return expires <= (now or dt.datetime.now(dt.timezone.utc))

    def unsigned_bytes(self) -> bytes:
        """The DAG-CBOR bytes the labeler signed: the label as received, without ``sig``."""
        return bytes(libipld.encode_dag_cbor({k: v for k, v in self.raw.items() if k != "sig"}))


@dataclass(frozen=True, slots=True)
class LabelsFrame(StreamEvent):
    """One ``#labels`` frame: its ``labels`` share the frame's seq (``cursor``)."""

    labels: tuple[LabelEvent, ...] = ()


def subject_did(uri: str) -> str:
    """The DID a label's subject belongs to: ``did:...`` itself, or the authority of ``at://did/...``."""
    if uri.startswith("at://"):
        return uri[5:].split("/", 1)[0]
    return uri


def _text(body: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise FrameDecodeError(f"a label's {key!r} must be a string, got {type(value).__name__}")
    return value


def _label(seq: int, raw: Any) -> LabelEvent:
    if not isinstance(raw, dict):
        raise FrameDecodeError(f"a label must be a map, got {type(raw).__name__}")
    uri, src, val, cts = (_text(raw, key) or "" for key in ("uri", "src", "val", "cts"))
    sig = raw.get("sig")
    ver = raw.get("ver")
    return LabelEvent(seq, subject_did(uri), cts, src=src, uri=uri, cid=_text(raw, "cid", False) or None,
                      val=val, neg=raw.get("neg") is True, cts=cts, exp=_text(raw, "exp", False),
                      sig=sig if isinstance(sig, bytes) else None, ver=ver if isinstance(ver, int) else None, raw=raw)


def decode_label_frame(frame: bytes) -> StreamEvent:
    """Decode one ``subscribeLabels`` frame into a ``LabelsFrame`` (or an ``InfoEvent``).

    Raises:
        FrameDecodeError: not a header and a body, an error frame (e.g. ``FutureCursor``), an
            unknown type or a malformed label (the reason is in the message).
    """
    try:
        parts = libipld.decode_dag_cbor_multi(frame)
    except (ValueError, TypeError) as exc:
        raise FrameDecodeError(f"not DAG-CBOR: {exc}") from exc
    if len(parts) != 2 or not isinstance(parts[0], dict) or not isinstance(parts[1], dict):
        raise FrameDecodeError(f"expected a header and a body, got {len(parts)} object(s)")
    header, body = parts
    if header.get("op") == -1:
        raise FrameDecodeError(f"error frame from the labeler: {body.get('error')}: {body.get('message')}")
    if header.get("op") != 1:
        raise FrameDecodeError(f"unknown frame op {header.get('op')!r}")
    kind = header.get("t")
    if kind == "#info":
        extra = {k: v for k, v in body.items() if k not in ("name", "message")}
        return InfoEvent(None, "", "", name=str(body.get("name")), message=body.get("message"), extra=extra)
    if kind != "#labels":
        raise FrameDecodeError(f"unknown frame type {kind!r} on a label stream")
    seq, raw_labels = body.get("seq"), body.get("labels")
    if not isinstance(seq, int) or not isinstance(raw_labels, list):
        raise FrameDecodeError("a #labels frame needs an integer seq and a list of labels")
    labels = tuple(_label(seq, raw) for raw in raw_labels)
    subjects = {label.did for label in labels}
    # the runner keeps events with one key in order: one subject's labels (a label, then its negation)
    key = subjects.pop() if len(subjects) == 1 else (labels[0].src if labels else "")
    return LabelsFrame(seq, key, labels[0].cts if labels else "", labels=labels)


class LabelSource:
    """``subscribeLabels`` of one labeler (``service``: its URL, e.g. ozone's; http(s) becomes ws(s))."""

    monotonic = True
    """Seqs only grow on one labeler: a repeated one after a reconnect is skipped."""

    def __init__(self, service: str) -> None:
        self._base = websocket_base(service)
        self.key = f"labels:{self._base}"
        """The cursor's scope in the database: seqs are local to one labeler."""

    def urls(self, cursor: int | None) -> list[str]:
        """Where to connect, resuming after ``cursor`` (None: new labels only)."""
        query = f"?{urlencode({'cursor': cursor})}" if cursor is not None else ""
        return [f"{self._base}{SUBSCRIBE_LABELS}{query}"]

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        """Nothing to send: the stream needs no hello."""

    async def update_filters(self, ws: aiohttp.ClientWebSocketResponse[bool] | None, *,
                             collections: Iterable[str] | None, dids: Iterable[str] | None) -> None:
        """A labeler filters nothing on the server: the consumer's ``dids`` filter (subjects) does it."""

    def decode(self, message: bytes | str) -> StreamEvent:
        if not isinstance(message, bytes):
            raise FrameDecodeError("a text frame on a label stream (frames are binary DAG-CBOR)")
        return decode_label_frame(message)

    def __repr__(self) -> str:
        return f"LabelSource({self._base!r})"


def label_signing_key(document: dict[str, Any]) -> CheckSignature:
    """A signature check for the ``#atproto_label`` key of a labeler's DID document."""
    for method in document.get("verificationMethod") or []:
        if str(method.get("id", "")).endswith("#atproto_label") and method.get("publicKeyMultibase"):
            return signature_checker(parse_verification_method(method.get("type"), str(method["publicKeyMultibase"])))
    raise VerificationError(f"{document.get('id')}: the DID document has no #atproto_label key, so it is not a "
                            "labeler (or not one that signs its labels)", reason="no-label-key")


class LabelVerifier:
    """Checks each label's signature against its labeler's ``#atproto_label`` key.

    Keys come from the labeler's DID document through ``resolve_did`` and are cached; a signature
    that does not verify re-resolves the key once (the labeler may have rotated it). A label that
    fails is counted (``failures`` by reason), logged with its labeler and the reason, and then
    dropped (``policy="drop"``) or passed on with ``label.invalid`` set (``"flag"``).

    Args:
        resolve_did: returns a DID document (``bsky.identity.resolve_did``).
        policy: ``"drop"`` or ``"flag"``.
    """

    def __init__(self, resolve_did: ResolveDid, *, policy: LabelPolicy = "drop") -> None:
        if policy not in ("drop", "flag"):
            raise StreamError(f"on_invalid must be 'drop' or 'flag', not {policy!r}")
        self.resolve_did = resolve_did
        self.policy = policy
        self.verified = 0
        self.failed = 0
        self.key_refreshes = 0
        self.failures: Counter[str] = Counter()
        """Failed labels by reason (``signature``, ``unsigned``, ``key-unavailable``, ``no-label-key``)."""
        self._keys: dict[str, CheckSignature] = {}

    def summary(self) -> str:
        """One line: verified, failed by reason."""
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.failures.most_common()) or "none"
        return f"{self.verified} labels verified, {self.failed} failed ({reasons})"

    async def _key(self, did: str, *, fresh: bool = False) -> CheckSignature:
        if fresh or did not in self._keys:
            self._keys[did] = label_signing_key(await self.resolve_did(did))
        return self._keys[did]

    async def check(self, label: LabelEvent) -> bool:
        """True if ``label`` is signed by its labeler; failures are counted, logged and (policy) flagged."""
        try:
            if label.sig is None:
                raise VerificationError("the label carries no signature", reason="unsigned")
            data = label.unsigned_bytes()
            if not (await self._key(label.src))(data, label.sig):
                self.key_refreshes += 1
                if not (await self._key(label.src, fresh=True))(data, label.sig):
                    raise VerificationError(f"not signed by the #atproto_label key of {label.src}",
                                            reason="signature")
        except VerificationError as exc:
            return self._failed(label, exc.reason, str(exc))
        except PyskyError as exc:  # an unresolvable labeler fails its labels, not the stream
            return self._failed(label, "key-unavailable", f"cannot get the labeler's key: {exc}")
        self.verified += 1
        return True

    def _failed(self, label: LabelEvent, reason: str, message: str) -> bool:
        self.failed += 1
        self.failures[reason] += 1
        logger.warning("labels: label %r on %s from labeler %s (seq %s) failed verification [%s]: %s (%s)",
                       label.val, label.uri, label.src, label.cursor, reason, message,
                       "dropped" if self.policy == "drop" else "passed on, flagged")
        if self.policy == "flag":
            object.__setattr__(label, "invalid", reason)  # the one field a verifier sets on a frozen event
        return False


LabelHandler = Callable[[LabelEvent, EventContext], Awaitable[None]]
"""``async def handler(label, ctx)``: one label of a labeler's stream."""


class LabelConsumer(StreamConsumer):
    """A ``StreamConsumer`` of a ``LabelSource`` that hands ``handler`` one ``LabelEvent`` at a time.

    ``bsky.streams.labels(handler, service=..., name=...)`` builds one on a client's database. The
    labels of one frame go to the handler in order (an exception is logged and counted, and the
    next label follows); with a ``verifier`` a label that fails its signature check is counted in
    ``stats.bad_signatures`` and dropped or flagged by the verifier's policy. ``dids``: only labels
    on these accounts and their records (checked per label). ``skip_expired`` (default True): a
    label whose ``exp`` has passed when it arrives (a labeler replays its history, expired labels
    included) is no longer in force and is not handed on, only counted in ``expired_labels``;
    False hands it on (``label.expired()`` tells). The other arguments are ``StreamConsumer``'s.
    """

    def __init__(self, source: LabelSource, handler: LabelHandler, *, verifier: LabelVerifier | None = None,
                 store: Store | None = None, name: str | None = None, dids: Iterable[str] | None = None,
                 start_cursor: int | None = 0, concurrency: int = 32, max_pending: int = 2000,
                 commit_every: int = 500, commit_interval: float = 1.0, log_interval: float = 30.0,
                 silence_timeout: float = 60.0, backoff_max: float = 30.0,
                 max_frame_bytes: int = 5 * 1024 * 1024, skip_expired: bool = True) -> None:
        super().__init__(source, self._each_label, store=store, name=name, start_cursor=start_cursor,
                         concurrency=concurrency, max_pending=max_pending, commit_every=commit_every,
                         commit_interval=commit_interval, log_interval=log_interval,
                         silence_timeout=silence_timeout, backoff_max=backoff_max, max_frame_bytes=max_frame_bytes)
        self.label_handler = handler
        self.label_verifier = verifier
        self.subjects = frozenset(dids) if dids else None
        """Only labels on these accounts (and their records) reach the handler; None: all."""
        self.skip_expired = skip_expired
        self.expired_labels = 0
        """Labels not handed on because their ``exp`` had passed when they arrived."""

    async def _each_label(self, event: StreamEvent, ctx: EventContext) -> None:
        if not isinstance(event, LabelsFrame):
            return  # #info frames are logged by the feed
        verifier = self.label_verifier
        for label in event.labels:
            if self.subjects is not None and label.did not in self.subjects:
                self.stats.filtered += 1
                continue
            if self.skip_expired and label.exp is not None and label.expired():
                self.expired_labels += 1
                continue
            if verifier is not None and not await verifier.check(label):
                self.stats.bad_signatures += 1
                if verifier.policy == "drop":
                    continue
            try:
                await self.label_handler(label, ctx)
            except Exception:
                self.stats.handler_errors += 1
                logger.exception("labels consumer %s: handler failed on label %r from %s on %s (seq %s); "
                                 "counted as handled", self.name, label.val, label.src, label.uri, label.cursor)
