"""The pysky_async error tree.

    PyskyError
    ├── NotAuthenticated            no session and no credentials to make one
    ├── LoginFailed                 the server refused the username/password
    ├── NetworkError                the request never got an HTTP answer
    │   └── RequestTimeout
    ├── StorageError                the database failed (wraps SQLAlchemy errors)
    ├── InvalidInput (ValueError)   bad input caught before any request
    └── APIError                    the server answered with an error status
        ├── BadRequest              400 without a more specific XRPC error name
        │   ├── InvalidRequest
        │   ├── RecordNotFound
        │   └── InvalidSwap
        ├── ExpiredToken / InvalidToken / AuthenticationRequired / AuthMissing
        ├── Forbidden / NotFound / PayloadTooLarge / IdentityNotFound
        ├── RateLimitExceeded       429
        ├── UpstreamFailure         502 from a proxied service
        └── ServerError             other 5xx

Every error that came from a call carries ``log_id``, the id of its row in
``bsky_api_call_log``.
"""

from __future__ import annotations

from typing import Any


class PyskyError(Exception):
    """Base class of every error pysky_async raises."""

    log_id: int | None = None


class NotAuthenticated(PyskyError):
    """An authenticated call was made with no session and no credentials."""


class LoginFailed(PyskyError):
    """createSession refused the credentials."""


class NetworkError(PyskyError):
    """The request did not get an HTTP response (connection refused, reset, DNS...)."""


class RequestTimeout(NetworkError):
    """The request timed out."""


class StorageError(PyskyError):
    """The database behind the client failed."""


class InvalidInput(PyskyError, ValueError):
    """An argument was rejected before any request was made."""


class APIError(PyskyError):
    """The server answered with an HTTP error status.

    Attributes:
        status_code: the HTTP status.
        error: the XRPC error name (``"ExpiredToken"``...), or None.
        message: the server's message, or None.
        response: the decoded error body (a dict) or the raw text.
        endpoint: the NSID that was called.
        log_id: the id of the call's row in ``bsky_api_call_log``.
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        message: str | None,
        *,
        endpoint: str = "",
        response: Any = None,
        log_id: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.message = message
        self.endpoint = endpoint
        self.response = response
        self.log_id = log_id
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.endpoint or 'XRPC call'} failed with HTTP {self.status_code}"
        if self.error:
            text += f" {self.error}"
        if self.message:
            text += f": {self.message}"
        if self.log_id is not None:
            text += f" (call log id {self.log_id})"
        return text

    def __str__(self) -> str:
        return self._describe()


class BadRequest(APIError):
    """HTTP 400."""


class InvalidRequest(BadRequest):
    """XRPC InvalidRequest: the server rejected the parameters or body."""


class RecordNotFound(BadRequest):
    """XRPC RecordNotFound."""


class InvalidSwap(BadRequest):
    """The record or repo changed since the swap CID was read: re-read it and try again."""


class ExpiredToken(APIError):
    """The access or refresh token has expired or was revoked."""


class InvalidToken(APIError):
    """The token is malformed or not valid for this server."""


class AuthenticationRequired(APIError):
    """401: the call needs (valid) credentials."""


class AuthMissing(AuthenticationRequired):
    """401 AuthMissing: no Authorization header was sent."""


class Forbidden(APIError):
    """HTTP 403."""


class NotFound(APIError):
    """HTTP 404 (often: the server does not implement the method)."""


class PayloadTooLarge(APIError):
    """HTTP 413: the body is larger than the server accepts."""


class RateLimitExceeded(APIError):
    """HTTP 429: wait until ``retry_after`` seconds have passed."""


class UpstreamFailure(APIError):
    """502 UpstreamFailure: the PDS could not reach the service it proxies to."""


class IdentityNotFound(APIError):
    """A handle or DID does not resolve (or its DID document names no PDS)."""


class ServerError(APIError):
    """HTTP 5xx."""


_BY_ERROR_NAME: dict[str, type[APIError]] = {
    cls.__name__: cls
    for cls in (
        InvalidRequest,
        RecordNotFound,
        InvalidSwap,
        ExpiredToken,
        InvalidToken,
        AuthenticationRequired,
        AuthMissing,
        RateLimitExceeded,
        UpstreamFailure,
        PayloadTooLarge,
    )
}

_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: AuthenticationRequired,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    429: RateLimitExceeded,
    502: UpstreamFailure,
}


def api_error_class(status_code: int, error: str | None) -> type[APIError]:
    """Pick the most specific APIError subclass for an XRPC error name and status."""
    if error and error in _BY_ERROR_NAME:
        return _BY_ERROR_NAME[error]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return ServerError
    return APIError
