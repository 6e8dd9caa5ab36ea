"""pysky_async: an asyncio-native client for Bluesky and the AT Protocol."""

from ._client import AsyncBskyClient
from ._config import CHAT_PROXY, DEFAULT_AUTH_HOST, DEFAULT_PUBLIC_HOST, ClientConfig
from ._cursor import ZERO_CURSOR
from ._exceptions import (
    APIError,
    AuthenticationRequired,
    AuthMissing,
    BadRequest,
    ExpiredToken,
    Forbidden,
    IdentityNotFound,
    InvalidInput,
    InvalidRequest,
    InvalidSwap,
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
from ._images import Image, ImageTooLarge, InvalidImage, PreparedImage, prepare_image
from ._middleware import Handler, Middleware
from ._pagination import Paginator
from ._posts import External, Post, PostFailed
from ._rate_limits import RateLimit
from ._records import Create, Delete, Record, RecordRef, Update, WriteResult
from ._request import AUTH, XrpcRequest
from ._response import HttpInfo, JsonObject, XrpcResponse
from ._retry import RetryPolicy, set_testing
from ._richtext import Facet, InvalidPost, split_thread
from ._session import Session
from ._signals import install_signal_handlers
from ._syntax import AtUri, Did, Handle, InvalidIdentifier, Nsid, RecordKey, Tid
from ._video import (
    Caption,
    IncompatibleVideo,
    UploadedVideo,
    Video,
    VideoInfo,
    VideoProcessingFailed,
    VideoProcessingTimeout,
    VideoUploadRefused,
    check_video,
    video_embed,
)
from ._write_budget import WriteBudget

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AUTH",
    "AsyncBskyClient",
    "AtUri",
    "AuthMissing",
    "AuthenticationRequired",
    "BadRequest",
    "CHAT_PROXY",
    "Caption",
    "ClientConfig",
    "Create",
    "DEFAULT_AUTH_HOST",
    "DEFAULT_PUBLIC_HOST",
    "Delete",
    "Did",
    "ExpiredToken",
    "External",
    "Facet",
    "Forbidden",
    "Handle",
    "Handler",
    "HttpInfo",
    "IdentityNotFound",
    "IncompatibleVideo",
    "Image",
    "ImageTooLarge",
    "InvalidIdentifier",
    "InvalidImage",
    "InvalidInput",
    "InvalidPost",
    "InvalidRequest",
    "InvalidSwap",
    "InvalidToken",
    "JsonObject",
    "LoginFailed",
    "Middleware",
    "NetworkError",
    "NotAuthenticated",
    "NotFound",
    "Nsid",
    "Paginator",
    "PayloadTooLarge",
    "Post",
    "PostFailed",
    "PreparedImage",
    "PyskyError",
    "RateLimitExceeded",
    "Record",
    "RecordKey",
    "RecordNotFound",
    "RateLimit",
    "RecordRef",
    "RetryPolicy",
    "RequestTimeout",
    "ServerError",
    "Session",
    "StorageError",
    "Tid",
    "Update",
    "UploadedVideo",
    "UpstreamFailure",
    "Video",
    "VideoInfo",
    "VideoProcessingFailed",
    "VideoProcessingTimeout",
    "VideoUploadRefused",
    "WriteBudget",
    "WriteResult",
    "XrpcRequest",
    "XrpcResponse",
    "ZERO_CURSOR",
    "set_testing",
    "split_thread",
    "__version__",
    "check_video",
    "prepare_image",
    "video_embed",
    "install_signal_handlers",
]
