"""Responses: attribute access to the JSON body, plus the HTTP facts under ``.http``."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ._request import XrpcRequest


def wrap(value: Any) -> Any:
    """Wrap dicts (also inside lists) so their keys read as attributes."""
    if isinstance(value, dict):
        return JsonObject(value)
    if isinstance(value, list):
        return [wrap(item) for item in value]
    return value


class JsonObject(Mapping[str, Any]):
    """A read-only view of a JSON object: ``obj.thread.post.author.handle`` or ``obj["thread"]``.

    ``.raw`` is the underlying dict. Keys that are not Python identifiers (``$type``) or
    that clash with a method name are reached with item access.
    """

    __slots__ = ("_raw",)
    _raw: dict[str, Any]

    def __init__(self, raw: dict[str, Any]) -> None:
        object.__setattr__(self, "_raw", raw)

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object as a plain dict."""
        return self._raw

    def __getattr__(self, name: str) -> Any:
        try:
            return wrap(self._raw[name])
        except KeyError:
            raise AttributeError(
                f"the response has no field {name!r}; it has: {', '.join(self._raw) or 'none'}"
            ) from None

    def __getitem__(self, key: str) -> Any:
        return wrap(self._raw[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._raw!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonObject):
            return self._raw == other._raw
        return self._raw == other

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class HttpInfo:
    """The HTTP side of a response."""

    status_code: int
    headers: httpx.Headers
    elapsed: dt.timedelta
    url: str


class XrpcResponse(JsonObject):
    """What ``get``/``post`` return: the JSON body as attributes, HTTP facts in ``.http``.

    Non-JSON bodies (blobs) are in ``.content``; their ``.raw`` is an empty dict.
    """

    __slots__ = ("content", "http", "log_id")
    http: HttpInfo
    content: bytes
    log_id: int | None

    def __init__(self, raw: dict[str, Any], http: HttpInfo, content: bytes = b"") -> None:
        super().__init__(raw)
        object.__setattr__(self, "http", http)
        object.__setattr__(self, "content", content)
        object.__setattr__(self, "log_id", None)

    @property
    def status_code(self) -> int:
        """Shortcut for ``.http.status_code``."""
        return self.http.status_code

    @property
    def is_error(self) -> bool:
        """True for anything but HTTP 2xx: 4xx/5xx, and 3xx (redirects are not followed)."""
        return not 200 <= self.http.status_code < 300

    def require(self, *names: str) -> list[Any]:
        """The values of these top-level fields of a successful answer; ``InvalidResponse`` naming
        the call when the body is not the JSON it should be (HTML, empty, truncated, a field missing)."""
        raw = self.raw
        missing = [name for name in names if name not in raw]
        if missing:
            from ._exceptions import InvalidResponse
            from ._redact import redact_text

            endpoint = self.http.url.split("?", 1)[0].rsplit("/", 1)[-1]
            preview = redact_text(self.content[:200].decode("utf-8", "replace")) if self.content else "an empty body"
            raise InvalidResponse(
                f"{endpoint} answered HTTP {self.http.status_code} without {', '.join(map(repr, missing))} "
                f"(got {preview!r}): the server did not answer as an XRPC service; check the host")
        return [raw[name] for name in names]


BINARY_OUTPUT = frozenset({"com.atproto.sync.getBlob", "com.atproto.sync.getRepo", "com.atproto.sync.getRecord",
                           "com.atproto.sync.getBlocks", "com.atproto.sync.getCheckout"})
"""Queries whose lexicon declares a binary answer (CAR files, blobs): never decoded as JSON when they succeed."""


def decode_body(content: bytes, headers: httpx.Headers, status: int = 200,
                request: XrpcRequest | None = None) -> dict[str, Any]:
    """A JSON body as a dict (a non-object value as ``{"value": ...}``); {} for other bodies.

    With the ``request``, a 2xx answer to an XRPC call that is not the JSON due raises
    ``InvalidResponse`` naming the call and the content type: a JSON content type whose body does
    not decode (invalid, truncated, empty, too deeply nested, not UTF-8), HTML or text, or an
    empty answer to a query. A binary answer (a blob, a CAR file) passes through in ``content``.
    """
    ctype = headers.get("content-type", "")
    if request is None or not 200 <= status < 300 or request.path is not None:
        if not content or "json" not in ctype:
            return {}
        try:
            raw = json.loads(content)
        except (ValueError, RecursionError):  # an error page; raise_for_status shows its start
            return {}
        return raw if isinstance(raw, dict) else {"value": raw}
    if request.nsid in BINARY_OUTPUT:
        return {}
    if "json" in ctype:
        try:
            raw = json.loads(content)
        except (ValueError, RecursionError) as exc:  # not JSON, or nested deeper than Python can decode
            raise not_json(request, status, ctype, content, _reason(exc)) from None
        return raw if isinstance(raw, dict) else {"value": raw}
    if content and ctype.startswith("text/"):
        raise not_json(request, status, ctype, content, "text, not JSON")
    if not content and request.method == "GET":
        raise not_json(request, status, ctype, content, "an empty body")
    return {}


def not_json(request: XrpcRequest, status: int, ctype: str, content: bytes, reason: str) -> Exception:
    """The ``InvalidResponse`` for a 2xx answer that is not the JSON the call is due."""
    from ._exceptions import InvalidResponse
    from ._redact import redact_text

    preview = redact_text(content[:200].decode("utf-8", "replace")) if content else ""
    return InvalidResponse(
        f"{request.nsid} answered HTTP {status} from {request.host} with {reason} (content type "
        f"{ctype or 'none'!r}{f'; the body starts {preview!r}' if preview else ''}): the server did not answer as "
        "an XRPC service; check the host (a proxy or captive portal in between?)")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested deeper than can be decoded"
    if isinstance(exc, UnicodeDecodeError):
        return "a body that is not valid UTF-8"
    return f"a body that does not decode as JSON ({exc})"


def raise_for_status(response: XrpcResponse, endpoint: str) -> XrpcResponse:
    """Return ``response`` if it succeeded, else raise the matching APIError subclass."""
    if not response.is_error:
        return response
    from ._exceptions import api_error_class
    from ._redact import redact, redact_text

    raw = response.raw
    error = raw.get("error") if isinstance(raw.get("error"), str) else None
    message = raw.get("message") if isinstance(raw.get("message"), str) else None
    if not raw and response.content:
        message = redact_text(response.content[:500].decode("utf-8", "replace"))
    status = response.http.status_code
    if status < 400:  # a redirect: never followed, so it is an answer we cannot use
        location = response.http.headers.get("location", "nowhere")
        error = error or "Redirect"
        message = (f"the server redirected to {location}; redirects are not followed (credentials would "
                   "go along): call that host directly with hostname=")
    wait = retry_after(response.http.headers) if status == 429 else None
    if wait is not None:
        import datetime as dt

        reset = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=wait)
        message = f"{message or 'rate limited'}; the limit resets at {reset:%H:%M:%S} UTC (in {wait:.0f} s)"
    raise api_error_class(status, error)(
        status,
        error,
        message,
        endpoint=endpoint,
        response=redact(raw) if raw else message,
        log_id=response.log_id,
        retry_after=wait,
    )


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or an HTTP date) or ``RateLimit-Reset``
    (epoch seconds)."""
    import time

    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
    reset = headers.get("ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return None
