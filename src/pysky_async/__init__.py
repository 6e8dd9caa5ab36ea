"""pysky_async: an asyncio-native client for Bluesky and the AT Protocol."""

from ._client import AsyncBskyClient
from ._config import CHAT_PROXY, DEFAULT_AUTH_HOST, DEFAULT_PUBLIC_HOST, ClientConfig
from ._context import CallContext
from ._cursor import ZERO_CURSOR
from ._exceptions import (
    APIError,
    AuthenticationRequired,
    AuthMissing,
    BadRequest,
    ExpiredToken,
    Forbidden,
    IdentityNotFound,
    ImageTooLarge,
    IncompatibleVideo,
    InvalidImage,
    InvalidInput,
    InvalidRequest,
    InvalidSwap,
    InvalidToken,
    LoginFailed,
    NetworkError,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PostFailed,
    PyskyError,
    RateLimitExceeded,
    RecordNotFound,
    RequestTimeout,
    ServerError,
    StorageError,
    UpstreamFailure,
    VideoProcessingFailed,
    VideoProcessingTimeout,
    VideoUploadRefused,
    WriteBudgetExhausted,
)
from ._graph import GraphReport, export_follow_graph
from ._identity import IdentityResolver
from ._images import Image, PreparedImage, prepare_image
from ._media import External, Media
from ._middleware import Handler, Middleware
from ._pagination import Paginator
from ._posts import Post, Posts
from ._profiles import Profiles
from ._rate_limits import RateLimit
from ._records import Create, Delete, Record, RecordRef, Records, Update, WriteResult
from ._request import AUTH, XrpcRequest
from ._response import HttpInfo, JsonObject, XrpcResponse
from ._retry import RetryPolicy, set_testing
from ._richtext import Facet, InvalidPost, split_thread
from ._session import Session
from ._syntax import AtUri, Did, Handle, InvalidIdentifier, Nsid, RecordKey, Tid
from ._version import __version__
from ._video import (
    Caption,
    UploadedVideo,
    Video,
    VideoInfo,
    Videos,
    check_video,
    video_embed,
)
from ._write_budget import WriteBudget

__all__ = [
    "APIError",
    "AUTH",
    "AsyncBskyClient",
    "AtUri",
    "AuthMissing",
    "AuthenticationRequired",
    "BadRequest",
    "CHAT_PROXY",
    "CallContext",
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
    "GraphReport",
    "Handle",
    "Handler",
    "HttpInfo",
    "IdentityNotFound",
    "IdentityResolver",
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
    "Media",
    "Middleware",
    "NetworkError",
    "NotAuthenticated",
    "NotFound",
    "Nsid",
    "Paginator",
    "PayloadTooLarge",
    "Post",
    "PostFailed",
    "Posts",
    "Profiles",
    "PreparedImage",
    "PyskyError",
    "RateLimitExceeded",
    "Record",
    "RecordKey",
    "RecordNotFound",
    "RateLimit",
    "RecordRef",
    "Records",
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
    "Videos",
    "WriteBudget",
    "WriteBudgetExhausted",
    "WriteResult",
    "XrpcRequest",
    "XrpcResponse",
    "ZERO_CURSOR",
    "set_testing",
    "split_thread",
    "__version__",
    "check_video",
    "export_follow_graph",
    "prepare_image",
    "video_embed",
]

# event streams (firehose, Jetstream): kept in one block
from ._exceptions import FrameDecodeError, StreamError
from ._streams import (
    AccountEvent,
    CommitEvent,
    EventContext,
    FirehoseSource,
    IdentityEvent,
    InfoEvent,
    JetstreamSource,
    RepoOp,
    SignatureVerifier,
    Source,
    StreamConsumer,
    StreamEvent,
    StreamStats,
    SyncEvent,
    decode_frame,
)

__all__ += [
    "AccountEvent",
    "CommitEvent",
    "EventContext",
    "FirehoseSource",
    "FrameDecodeError",
    "IdentityEvent",
    "InfoEvent",
    "JetstreamSource",
    "RepoOp",
    "SignatureVerifier",
    "Source",
    "StreamConsumer",
    "StreamError",
    "StreamEvent",
    "StreamStats",
    "SyncEvent",
    "decode_frame",
]
