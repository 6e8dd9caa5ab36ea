"""Records in any collection, and blobs: create, put, get, delete, applyWrites, upload."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ._exceptions import (
    BadRequest,
    InvalidInput,
    InvalidResponse,
    InvalidSwap,
    NotAuthenticated,
    RecordNotFound,
    ServerError,
)
from ._json_body import json_body
from ._lenient import at_uri_from_text
from ._response import JsonObject, XrpcResponse
from ._syntax import AtUri, Nsid, RecordKey, Tid

if TYPE_CHECKING:
    from ._identity import IdentityResolver
    from ._xrpc import Xrpc
    from .lex._base import LexObject

M = TypeVar("M", bound="LexObject")


BLOB_MAX_BYTES = 128 * 1024 * 1024
"""``get_blob``'s default bound: above Bluesky's 100 MB video limit."""


@dataclass(frozen=True)
class RecordRef:
    """A strong reference to a record: its ``uri`` and ``cid``."""

    uri: str
    cid: str

    @property
    def rkey(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, str]:
        """The ``com.atproto.repo.strongRef`` form."""
        return {"uri": self.uri, "cid": self.cid}


@dataclass(frozen=True)
class Record:
    """A record as read back: ``uri``, ``cid`` and its ``value`` (attribute access)."""

    uri: str
    cid: str | None
    value: JsonObject

    @property
    def ref(self) -> RecordRef:
        if self.cid is None:
            raise InvalidInput(f"{self.uri} was read without a CID")
        return RecordRef(self.uri, self.cid)


@dataclass(frozen=True)
class TypedRecord(Generic[M]):
    """A record read back as a model (``get_record(uri, model=Post)``): ``uri``, ``cid``, ``value``."""

    uri: str
    cid: str | None
    value: M

    @property
    def ref(self) -> RecordRef:
        if self.cid is None:
            raise InvalidInput(f"{self.uri} was read without a CID")
        return RecordRef(self.uri, self.cid)


@dataclass(frozen=True)
class Create:
    """A create operation for ``apply_writes`` (the record key is chosen here when omitted)."""

    collection: str
    value: Mapping[str, Any]
    rkey: str | None = None

    @classmethod
    def of(cls, record: LexObject, rkey: str | None = None, *, validate: bool = False) -> Create:
        """A create of a record model (its collection is its ``$type``; ``validate=True`` checks it
        against its lexicon now, ``InvalidInput`` naming the field path and the rule)."""
        collection, value = record_body("Create.of", record, None, validate)
        return cls(collection, value, rkey)


@dataclass(frozen=True)
class Update:
    """An update (put) operation for ``apply_writes``."""

    collection: str
    rkey: str
    value: Mapping[str, Any]

    @classmethod
    def of(cls, record: LexObject, rkey: str, *, validate: bool = False) -> Update:
        """An update of the record at ``rkey`` to a record model (as ``Create.of``)."""
        collection, value = record_body("Update.of", record, None, validate)
        return cls(collection, rkey, value)


@dataclass(frozen=True)
class Delete:
    """A delete operation for ``apply_writes``."""

    collection: str
    rkey: str


@dataclass(frozen=True)
class WriteResult:
    """What ``apply_writes`` returns: the commit and one result per operation."""

    commit: Mapping[str, Any] | None
    results: list[Mapping[str, Any]] = field(default_factory=list)


def with_type(collection: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with ``$type`` set to its collection when it has none."""
    if not isinstance(record, Mapping):
        raise InvalidInput(f"a record must be a dict, not {type(record).__name__}")
    return {"$type": collection, **record}


class Records:
    """Records in any collection, and blobs (``bsky.records``).

    Args:
        xrpc: how calls are made.
        identity: resolves a blob owner's PDS.
    """

    def __init__(self, xrpc: Xrpc, identity: IdentityResolver) -> None:
        self._xrpc = xrpc
        self._identity = identity

    @overload
    async def create(self, collection: str, record: Mapping[str, Any], *, rkey: str | None = None,
                     validate: bool | None = None, repo: str | None = None) -> RecordRef: ...

    @overload
    async def create(self, collection: LexObject, /, *, rkey: str | None = None, validate: bool | None = None,
                     repo: str | None = None) -> RecordRef: ...

    async def create(self, collection: str | LexObject, record: Mapping[str, Any] | None = None, *,
                     rkey: str | None = None, validate: bool | None = None,
                     repo: str | None = None) -> RecordRef:
        """Create a record; the record key (a TID unless given) is chosen on the client.

        Give a collection and a dict, or a model alone (``create(lex.app.bsky.feed.Post(...))``:
        the collection is its ``$type``; with ``validate=True`` it is checked against its lexicon
        before any request). Custom collections need ``validate=False`` on servers that do not
        know their lexicon.
        """
        collection, value = record_body("create_record", collection, record, validate)
        rkey = RecordKey(rkey) if rkey is not None else Tid.next()
        body: dict[str, Any] = {"repo": await self._xrpc.repo(repo), "collection": collection, "rkey": rkey,
                                "record": value}
        if validate is not None:
            body["validate"] = validate
        try:
            response = await self._xrpc.write("com.atproto.repo.createRecord", body, idempotent=True)
        except (ServerError, BadRequest):
            # a retried create whose first attempt was processed finds its record already there
            existing = await self._find_created(body)
            if existing is None:
                raise
            return existing
        return RecordRef(*response.require("uri", "cid"))

    async def _find_created(self, body: dict[str, Any]) -> RecordRef | None:
        uri = f"at://{body['repo']}/{body['collection']}/{body['rkey']}"
        try:
            record = await self.get(uri)
        except RecordNotFound:
            return None
        if record.cid is None or record.value.raw != json_body(body["record"]):
            return None
        return RecordRef(record.uri, record.cid)

    @overload
    async def put(self, collection: str, rkey: str, record: Mapping[str, Any], *, swap_record: str | None = None,
                  swap_commit: str | None = None, validate: bool | None = None,
                  repo: str | None = None) -> RecordRef: ...

    @overload
    async def put(self, collection: LexObject, rkey: str, /, *, swap_record: str | None = None,
                  swap_commit: str | None = None, validate: bool | None = None,
                  repo: str | None = None) -> RecordRef: ...

    async def put(self, collection: str | LexObject, rkey: str, record: Mapping[str, Any] | None = None, *,
                  swap_record: str | None = None, swap_commit: str | None = None,
                  validate: bool | None = None, repo: str | None = None) -> RecordRef:
        """Create or replace the record at ``collection/rkey`` (or a model's ``$type``/``rkey``, as
        ``create``).

        ``swap_record``: the CID the record must still have (None: no check). A stale swap
        raises ``InvalidSwap``.
        """
        collection, value = record_body("put_record", collection, record, validate)
        body: dict[str, Any] = {"repo": await self._xrpc.repo(repo), "collection": collection,
                                "rkey": RecordKey(rkey), "record": value}
        _add_optional(body, swapRecord=swap_record, swapCommit=swap_commit, validate=validate)
        response = await _swapping(self._xrpc.write("com.atproto.repo.putRecord", body, idempotent=True))
        return RecordRef(*response.require("uri", "cid"))

    @overload
    async def get(self, uri: str | AtUri, *, cid: str | None = None, model: None = None) -> Record: ...

    @overload
    async def get(self, uri: str | AtUri, *, cid: str | None = None, model: type[M]) -> TypedRecord[M]: ...

    async def get(self, uri: str | AtUri, *, cid: str | None = None,
                  model: type[M] | None = None) -> Record | TypedRecord[M]:
        """Read one record by AT-URI (or bsky.app link); with ``model=`` (a record model such as
        ``lex.app.bsky.feed.Post``) its value comes as that model."""
        at = _record_uri(uri)
        tag = None if model is None else _record_type("get_record(model=...)", model)
        if tag is not None and at.collection != tag:
            raise InvalidInput(f"get_record: {uri} is in {at.collection}, not {tag}: pass the model of that "
                               "collection, or no model")
        response = await self._xrpc.get("com.atproto.repo.getRecord", repo=at.authority, collection=at.collection,
                                  rkey=at.rkey, cid=cid)
        record_uri, value = response.require("uri", "value")
        if model is None:
            return Record(record_uri, response.raw.get("cid"), JsonObject(value))
        return TypedRecord(record_uri, response.raw.get("cid"), _as_model(value, model, record_uri))

    async def delete(self, uri: str | AtUri, *, swap_record: str | None = None,
                            swap_commit: str | None = None) -> None:
        """Delete a record by AT-URI (deleting a missing record is not an error on the PDS)."""
        at = _record_uri(uri)
        body: dict[str, Any] = {"repo": at.authority, "collection": at.collection, "rkey": at.rkey}
        _add_optional(body, swapRecord=swap_record, swapCommit=swap_commit)
        await _swapping(self._xrpc.write("com.atproto.repo.deleteRecord", body, idempotent=True))

    async def apply_writes(self, writes: Sequence[Create | Update | Delete], *,
                           validate: bool | None = None, swap_commit: str | None = None,
                           repo: str | None = None) -> WriteResult:
        """Apply up to 200 creates, updates and deletes in one atomic commit."""
        if not writes:
            raise InvalidInput("apply_writes needs at least one operation")
        if len(writes) > 200:
            raise InvalidInput(f"apply_writes takes at most 200 operations, got {len(writes)}: split them")
        body: dict[str, Any] = {"repo": await self._xrpc.repo(repo), "writes": [_write(w) for w in writes]}
        _add_optional(body, validate=validate, swapCommit=swap_commit)
        # not retried: a repeated create or delete inside applyWrites fails the whole batch
        response = await _swapping(self._xrpc.write("com.atproto.repo.applyWrites", body, idempotent=False))
        return WriteResult(response.raw.get("commit"), list(response.raw.get("results") or []))

    async def upload_blob(self, data: bytes, mimetype: str) -> dict[str, Any]:
        """Upload bytes; returns the blob ref to put in a record (``{"$type": "blob", ...}``)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"upload_blob takes bytes, not {type(data).__name__}")
        if not data:
            raise InvalidInput("upload_blob got no data")
        response = await self._xrpc.post("com.atproto.repo.uploadBlob", data=bytes(data),
                                   headers={"Content-Type": mimetype})
        [blob] = response.require("blob")
        return dict(blob)

    async def blob_url(self, did: str, cid: str) -> str:
        """The URL of a blob on its owner's PDS (resolved from the DID document)."""
        pds = await self._identity.pds_endpoint(did)
        from urllib.parse import urlencode

        return f"{pds}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"

    async def get_blob(self, did: str, cid: str, *, max_bytes: int = BLOB_MAX_BYTES) -> bytes:
        """Download a blob from its owner's PDS; a blob larger than ``max_bytes`` (default 128 MiB,
        above Bluesky's 100 MB video limit) raises ``ResponseTooLarge``."""
        pds = await self._identity.pds_endpoint(did)
        request = self._xrpc.request("GET", "com.atproto.sync.getBlob", pds, {"did": did, "cid": cid})
        request.context.max_response_bytes = max_bytes
        return (await self._xrpc.send(request)).content


def _record_type(method: str, model: Any) -> str:
    """The collection a record model is stored in (its ``$type``); InvalidInput for anything else."""
    config = getattr(model, "__struct_config__", None)
    tag = getattr(config, "tag", None)
    if not isinstance(tag, str) or "#" in tag or _known_type(tag) not in ("record", None):
        name = getattr(model, "__name__", type(model).__name__)
        raise InvalidInput(f"{method} takes a record model of pysky_async.lex (e.g. lex.app.bsky.feed.Post), "
                           f"not {name}")
    return tag


def _known_type(nsid: str) -> str | None:
    """The pinned lexicon's type of ``nsid``'s main def (``record``, ``object``...); None if unknown."""
    from .lex._validate import pinned_schemas

    kind = pinned_schemas().get(nsid, {}).get("main", {}).get("type")
    return kind if isinstance(kind, str) else None


def record_body(method: str, collection: Any, record: Mapping[str, Any] | None,
                validate: bool | None) -> tuple[str, dict[str, Any]]:
    """The collection and JSON value of a record given as (collection, dict) or as a model alone;
    a model is checked against its lexicon first when ``validate`` is True."""
    if isinstance(collection, str):
        if record is None:
            raise InvalidInput(f"{method}({collection!r}, ...) needs the record: a dict, or pass a model alone")
        if hasattr(type(record), "__struct_config__"):
            raise InvalidInput(f"{method}: pass the model alone ({method}({type(record).__name__}(...))): its $type "
                               "names the collection")
        return Nsid(collection), with_type(collection, record)
    tag = _record_type(method, type(collection))
    if record is not None:
        raise InvalidInput(f"{method}: pass the model alone (its $type, {tag}, names the collection), "
                           "not a second record")
    import json

    from .lex import _base, _validate

    if validate:
        _validate.validate(collection)  # InvalidInput naming the field path and the rule
    value: dict[str, Any] = json.loads(_base.encode(collection))
    return Nsid(tag), value


def _as_model(value: Any, model: type[M], uri: str) -> M:
    """A record's value as ``model``; InvalidResponse when it is another type or does not fit."""
    import msgspec

    from .lex import _base

    tag = model.__struct_config__.tag
    found = value.get("$type") if isinstance(value, Mapping) else None
    if found != tag:
        raise InvalidResponse(f"{uri} holds a {found or 'value without $type'}, not a {tag}")
    try:
        return _base.convert(value, model)
    except msgspec.ValidationError as exc:
        raise InvalidResponse(f"{uri} does not fit {model.__name__} ({exc}); read it without model= for "
                              "the raw value") from exc


def _record_uri(uri: str | AtUri) -> AtUri:
    at = at_uri_from_text(uri)
    if at.collection is None or at.rkey is None:
        raise InvalidInput(f"{uri} does not name a record: expected at://<repo>/<collection>/<rkey>")
    if not at.has_did and not at.authority:
        raise NotAuthenticated("a record URI needs a repo")
    return at


def _add_optional(body: dict[str, Any], **fields: Any) -> None:
    body.update({key: value for key, value in fields.items() if value is not None})


def _write(op: Create | Update | Delete) -> dict[str, Any]:
    if isinstance(op, Create):
        return {"$type": "com.atproto.repo.applyWrites#create", "collection": Nsid(op.collection),
                "rkey": RecordKey(op.rkey) if op.rkey else Tid.next(), "value": with_type(op.collection, op.value)}
    if isinstance(op, Update):
        return {"$type": "com.atproto.repo.applyWrites#update", "collection": Nsid(op.collection),
                "rkey": RecordKey(op.rkey), "value": with_type(op.collection, op.value)}
    if isinstance(op, Delete):
        return {"$type": "com.atproto.repo.applyWrites#delete", "collection": Nsid(op.collection),
                "rkey": RecordKey(op.rkey)}
    raise InvalidInput(f"apply_writes takes Create, Update and Delete operations, not {type(op).__name__}")


async def _swapping(call: Any) -> XrpcResponse:
    """Await a write; make a stale-swap error say what to do."""
    try:
        response: XrpcResponse = await call
    except InvalidSwap as exc:
        exc.message = (exc.message or "swap failed") + \
            " — the record changed since you read its CID: read it again and retry with the new CID"
        raise
    return response
