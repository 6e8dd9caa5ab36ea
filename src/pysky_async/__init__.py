"""pysky_async: an asyncio-native client for Bluesky and the AT Protocol."""

from ._client import AsyncBskyClient
from ._config import CHAT_PROXY, DEFAULT_AUTH_HOST, DEFAULT_PUBLIC_HOST, ClientConfig
from ._exceptions import (
    APIError,
    AuthenticationRequired,
    AuthMissing,
    BadRequest,
    ExpiredToken,
    Forbidden,
    InvalidInput,
    InvalidRequest,
    InvalidToken,
    LoginFailed,
    NetworkError,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PyskyError,
    RateLimitExceeded,
    RecordNotFound,
    RequestTimeout,
    ServerError,
    StorageError,
    UpstreamFailure,
)
from ._middleware import Handler, Middleware
from ._request import AUTH, XrpcRequest
from ._response import HttpInfo, JsonObject, XrpcResponse
from ._session import Session

__version__ = "0.1.0"

__all__ = [
    "AUTH",
    "CHAT_PROXY",
    "DEFAULT_AUTH_HOST",
    "DEFAULT_PUBLIC_HOST",
    "APIError",
    "AsyncBskyClient",
    "AuthMissing",
    "AuthenticationRequired",
    "BadRequest",
    "ClientConfig",
    "ExpiredToken",
    "Forbidden",
    "Handler",
    "HttpInfo",
    "InvalidInput",
    "InvalidRequest",
    "InvalidToken",
    "JsonObject",
    "LoginFailed",
    "Middleware",
    "NetworkError",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "PyskyError",
    "RateLimitExceeded",
    "RecordNotFound",
    "RequestTimeout",
    "ServerError",
    "Session",
    "StorageError",
    "UpstreamFailure",
    "XrpcRequest",
    "XrpcResponse",
    "__version__",
]
