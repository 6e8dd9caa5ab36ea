"""The pysky_async error tree: every error the library raises is a ``PyskyError``.

    PyskyError
    ├── NotAuthenticated            no session and no credentials to make one
    ├── LoginFailed                 the server refused the username/password
    ├── NetworkError                the request never got an HTTP answer
    │   └── RequestTimeout
    ├── StorageError                the database failed (wraps SQLAlchemy errors)
    ├── StreamError                 an event stream (firehose, Jetstream) cannot be consumed
    │   ├── FrameDecodeError        one frame could not be decoded (counted, then skipped)
    │   ├── StreamServerError       the server sent an error frame (``.error``: FutureCursor, ...)
    │   └── VerificationError       a commit, block or proof that does not verify (``.reason``)
    ├── WriteBudgetExhausted        the write budget refused a write; nothing was sent
    ├── IdentityNotFound            a handle or DID does not resolve (or names no PDS)
    ├── ServiceAuthError            an incoming service-auth JWT is refused (``.error``: the XRPC name)
    ├── PostFailed                  a part of a post failed; nothing was posted
    ├── VideoUploadRefused          the video service will not take an upload now
    ├── VideoProcessingFailed       the video service's job failed
    ├── VideoProcessingTimeout (TimeoutError)
    ├── OAuthError                  an OAuth step failed (``.error``: the OAuth error code)
    │   ├── OAuthCallbackError      a callback that is no valid answer to a login we started
    │   └── OAuthSessionExpired     the user's grant is gone (refresh refused, revoked)
    ├── InvalidInput (ValueError)   bad input caught before any request
    │   ├── InvalidImage
    │   │   └── ImageTooLarge
    │   ├── IncompatibleVideo
    │   ├── InvalidPost
    │   └── InvalidIdentifier
    ├── InvalidResponse             a 2xx body that is not the JSON the call needs
    │   └── ResponseTooLarge        an answer past ``max_response_bytes`` (not read further)
    ├── MissingDependency (ImportError)  an optional extra is not installed (e.g. media)
    ├── UsageError (TypeError)      a call made the wrong way (the message says the right one)
    └── APIError                    the server answered with an error status
        ├── BadRequest              400 without a more specific XRPC error name
        │   ├── InvalidRequest
        │   ├── RecordNotFound
        │   └── InvalidSwap
        ├── ExpiredToken / InvalidToken / AuthenticationRequired / AuthMissing
        ├── Forbidden / NotFound / PayloadTooLarge
        ├── RateLimitExceeded       429
        ├── UpstreamFailure         502 from a proxied service
        └── ServerError             other 5xx

Every error that came from a call carries ``log_id``, the id of its row in
``bsky_api_call_log``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
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


class OAuthError(PyskyError):
    """An OAuth step (discovery, PAR, token request, revocation) failed.

    Attributes:
        error: the OAuth error code (``"invalid_grant"``...), or None.
        status_code: the HTTP status of the failed request, or None.
    """

    def __init__(self, message: str, *, error: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.status_code = status_code


class OAuthCallbackError(OAuthError):
    """The callback is no valid answer to a login this app started (unknown or used ``state``,
    an error from the server, a code already used, another issuer); nothing was stored."""


class OAuthSessionExpired(OAuthError):
    """The user's OAuth session can no longer be refreshed: send them through the login again."""
class StreamError(PyskyError):
    """An event stream (firehose, Jetstream) cannot be consumed as configured."""


class FrameDecodeError(StreamError):
    """One stream frame could not be decoded; consumers count it and go on."""


class StreamServerError(StreamError):
    """The stream's server sent an error frame (``{op: -1}``) and closes the connection.

    ``error`` is its name (``FutureCursor``, ``ConsumerTooSlow``, ...), ``server_message`` the
    server's own words (or None). A consumer stops on ``FutureCursor`` and reconnects on others.
    """

    def __init__(self, message: str, *, error: str, server_message: str | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.server_message = server_message


class VerificationError(StreamError):
    """Repo data that does not prove itself: a bad signature, a block not matching its CID, a
    missing or contradicting MST proof. ``reason`` is a short machine-readable tag."""

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class InvalidInput(PyskyError, ValueError):
    """An argument was rejected before any request was made."""


class InvalidPost(InvalidInput):
    """The post cannot be made as given (too long, bad facet, embeds that cannot go together...)."""


class InvalidIdentifier(InvalidInput):
    """A DID, handle, NSID, record key, TID or AT-URI is malformed."""


class InvalidResponse(PyskyError):
    """A successful (2xx) answer whose body is not the JSON the call needs (HTML, empty,
    truncated, a field missing); the message names the call and shows the start of the body."""


class ResponseTooLarge(InvalidResponse):
    """An answer larger than the client's ``max_response_bytes`` (or ``get_blob``'s ``max_bytes``),
    counted after decompression; reading stopped there, so a gzip bomb costs no memory."""


class MissingDependency(PyskyError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class UsageError(PyskyError, TypeError):
    """The library was called the wrong way (e.g. ``await`` on an async iterator); the message
    says the right way."""


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


class IdentityNotFound(PyskyError):
    """A handle or DID does not resolve, or its DID document cannot be used.

    Attributes:
        identifier: the handle or DID.
        reason: ``"not_found"``, ``"bad_document"``, ``"no_pds"`` or ``"not_public"`` (a ``did:web``
            on a non-public address, see ``allow_private_did_web``).
        status_code: the HTTP status the resolver answered with, or None (no HTTP error:
            e.g. a document that names no PDS).
    """

    def __init__(self, message: str, *, identifier: str, reason: str, status_code: int | None = None) -> None:
        self.identifier = identifier
        self.reason = reason
        self.status_code = status_code
        super().__init__(message)


class ServiceAuthError(PyskyError):
    """A service-auth token sent to this app (e.g. by the AppView to a feed generator) is refused.

    Attributes:
        error: the XRPC error name the reference servers answer with (``AuthenticationRequired``,
            ``BadJwt``, ``BadJwtType``, ``JwtExpired``, ``BadJwtAudience``, ``BadJwtLexiconMethod``,
            ``BadJwtIss``, ``BadJwtSignature``).
        status_code: 401, the HTTP status a server answers with.
    """

    status_code = 401

    def __init__(self, message: str, *, error: str = "AuthenticationRequired") -> None:
        self.error = error
        self.message = message
        super().__init__(f"{error}: {message}")


class WriteBudgetExhausted(PyskyError):
    """The write budget refused a write before it was sent (nothing reached the server).

    Attributes:
        did: the account. endpoint: the write's NSID. points: what it would have cost.
        retry_after: seconds until it fits. fits_at: when it fits (UTC).
    """

    def __init__(self, message: str, *, did: str, endpoint: str, points: int, retry_after: float,
                 fits_at: dt.datetime) -> None:
        self.did = did
        self.endpoint = endpoint
        self.points = points
        self.retry_after = retry_after
        self.fits_at = fits_at
        super().__init__(message)


class PostFailed(PyskyError):
    """A part of the post failed (a network, server or storage error); nothing was posted.

    ``part`` names the part, ``__cause__`` is the error. Bad input (InvalidPost, InvalidImage,
    IncompatibleVideo...) is raised as itself: it already names what was wrong.
    """

    def __init__(self, part: str, cause: BaseException) -> None:
        self.part = part
        super().__init__(f"could not post: {part} failed: {cause}. Nothing was posted.")


class InvalidImage(InvalidInput):
    """The image cannot be read, decoded or prepared for upload."""


class ImageTooLarge(InvalidImage):
    """The image cannot be made to fit under ``max_bytes``."""


class IncompatibleVideo(InvalidInput):
    """The video cannot be posted as it is; ``reason`` is a short code, the message says what to do.

    Reasons: ``not_a_video``, ``empty``, ``too_big``, ``too_long``, ``truncated``, ``audio_only``,
    ``hevc``, ``mpeg4_part2``, ``unsupported_video_codec``, ``unsupported_audio_codec``,
    ``unsupported_container``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{message} [{reason}]")


class VideoUploadRefused(PyskyError):
    """The video service will not take an upload from this account now (``getUploadLimits``)."""

    def __init__(self, message: str, *, error: str | None = None, limits: Mapping[str, Any] | None = None) -> None:
        self.message = message
        self.error = error
        self.limits = dict(limits or {})
        super().__init__(f"the video service refused the upload: {message}")


class VideoProcessingFailed(PyskyError):
    """The video service's job ended in ``JOB_STATE_FAILED``; nothing was posted.

    ``failure_code``: validation_failure, encoding_failure, pds_upload_failure,
    pds_upload_unsupported_blob_size, generic_failure (or None when the service gave none).
    """

    def __init__(self, job_id: str, failure_code: str | None, message: str | None, error: str | None = None) -> None:
        self.job_id = job_id
        self.failure_code = failure_code
        self.message = message
        self.error = error
        super().__init__(f"video job {job_id} failed ({failure_code or error or 'no failure code'}): "
                         f"{message or error or 'no message'}")


class VideoProcessingTimeout(PyskyError, TimeoutError):
    """The job did not finish within ``timeout`` seconds; nothing was posted. It may still finish:
    ``get_video_job(job_id)`` later, or upload again (the service answers ``already_exists``)."""

    def __init__(self, job_id: str, timeout: float, state: str | None, progress: int | None) -> None:
        self.job_id = job_id
        self.state = state
        self.progress = progress
        super().__init__(f"video job {job_id} still {state or 'unknown'} ({progress or 0}%) after {timeout:g} s; "
                         "raise timeout= or retry later")


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
