"""Call descriptors: what a generated query/procedure function returns, and what
``AsyncBskyClient.call`` sends through the client's usual ``get``/``post`` pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from . import _base

if TYPE_CHECKING:
    from .._response import XrpcResponse


class XrpcClient(Protocol):
    """What a call is sent through: ``AsyncBskyClient``'s raw ``get`` and ``post``."""

    async def get(self, endpoint: str, *, params: Mapping[str, Any] | None = None) -> XrpcResponse: ...

    async def post(self, endpoint: str, *, params: Mapping[str, Any] | None = None, data: Any = None,
                   headers: Mapping[str, str] | None = None) -> XrpcResponse: ...


T = TypeVar("T")


def params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The given values without the ones left out (None); sequences as lists."""
    return {key: list(value) if isinstance(value, (tuple, set, frozenset)) else value
            for key, value in values.items() if value is not None}


def read(response: XrpcResponse, output: type[T], nsid: str) -> T:
    """A successful answer as ``output``; ``InvalidResponse`` naming the call when it does not fit."""
    import msgspec

    if output is type(None):
        return None  # pyright: ignore[reportReturnType]  # mypy narrows T to None here, pyright does not
    if output is bytes:
        return response.content  # type: ignore[return-value]
    if output is _base.__getattr__("JsonObject"):
        return response  # type: ignore[return-value]
    try:
        return _base.decode(response.content, output)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        from .._exceptions import InvalidResponse

        raise InvalidResponse(
            f"{nsid} answered with JSON that does not fit {getattr(output, '__name__', output)} ({exc}); "
            f"the raw answer stays reachable with get()/post()") from exc


class XrpcCall(Generic[T]):
    """A query or procedure ready to send: what ``AsyncBskyClient.call`` takes."""

    __slots__ = ()
    nsid: str
    output: type[T]

    async def send(self, client: XrpcClient) -> T:
        """Send it through ``client`` and decode the answer into ``output``."""
        raise NotImplementedError


class Query(XrpcCall[T]):
    """An XRPC query (GET) ready to send: its NSID, query parameters and output type."""

    __slots__ = ("nsid", "output", "params")

    def __init__(self, nsid: str, params: dict[str, Any], output: type[T]) -> None:
        self.nsid = nsid
        self.params = params
        self.output = output

    def __repr__(self) -> str:
        return f"Query({self.nsid!r}, {self.params!r})"

    async def send(self, client: XrpcClient) -> T:
        """Send it with ``client.get`` and decode the answer into ``output``."""
        return read(await client.get(self.nsid, params=self.params), self.output, self.nsid)


class Procedure(XrpcCall[T]):
    """An XRPC procedure (POST) ready to send: NSID, query parameters, body and output type."""

    __slots__ = ("body", "content_type", "nsid", "output", "params")

    def __init__(self, nsid: str, params: dict[str, Any], output: type[T], body: Any = None,
                 content_type: str | None = None) -> None:
        self.nsid = nsid
        self.params = params
        self.output = output
        self.body = body
        self.content_type = content_type

    def encoded_body(self) -> bytes:
        """The JSON body as bytes; ``InvalidInput`` when a value cannot be written as JSON."""
        import msgspec

        try:
            return _base.encode(self.body)
        except (TypeError, NotImplementedError, msgspec.EncodeError) as exc:
            from .._exceptions import InvalidInput

            raise InvalidInput(f"{self.nsid}: the body cannot be written as JSON ({exc}); pass models, "
                               f"dicts, lists, strings, numbers and booleans") from exc

    def __repr__(self) -> str:
        return f"Procedure({self.nsid!r}, {self.params!r})"

    async def send(self, client: XrpcClient) -> T:
        """Send it with ``client.post`` (a model body encoded by msgspec) and decode the answer."""
        if self.body is None:
            response = await client.post(self.nsid, params=self.params or None)
        elif isinstance(self.body, (bytes, bytearray, memoryview)):
            headers = {"Content-Type": self.content_type or "application/octet-stream"}
            response = await client.post(self.nsid, params=self.params or None, data=bytes(self.body),
                                         headers=headers)
        else:
            response = await client.post(self.nsid, params=self.params or None, data=self.encoded_body(),
                                         headers={"Content-Type": "application/json"})
        return read(response, self.output, self.nsid)
