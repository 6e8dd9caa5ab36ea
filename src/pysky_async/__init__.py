"""pysky_async: an asyncio-native client for Bluesky and the AT Protocol.

Importing the package loads only the error classes and the version: everything else (the
client with its HTTP and storage stacks, streams, OAuth, media) is imported on first use of
its name, so ``import pysky_async`` stays cheap (benchmarks/bench_import.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    APIError,
    AuthenticationRequired,
    AuthMissing,
    BadRequest,
    ExpiredToken,
    Forbidden,
    FrameDecodeError,
    IdentityNotFound,
    ImageTooLarge,
    IncompatibleVideo,
    InvalidIdentifier,
    InvalidImage,
    InvalidInput,
    InvalidPost,
    InvalidRequest,
    InvalidResponse,
    InvalidSwap,
    InvalidToken,
    LoginFailed,
    MissingDependency,
    NetworkError,
    NotAuthenticated,
    NotFound,
    OAuthCallbackError,
    OAuthError,
    OAuthSessionExpired,
    PayloadTooLarge,
    PostFailed,
    PyskyError,
    RateLimitExceeded,
    RecordNotFound,
    RequestTimeout,
    ResponseTooLarge,
    ServerError,
    ServiceAuthError,
    StorageError,
    StreamError,
    StreamServerError,
    UpstreamFailure,
    UsageError,
    VerificationError,
    VideoProcessingFailed,
    VideoProcessingTimeout,
    VideoUploadRefused,
    WriteBudgetExhausted,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._account import (
        Session as Session,
    )
    from ._chat import (
        Chat as Chat,
    )
    from ._cid import (
        CID as CID,
    )
    from ._client import (
        AsyncBskyClient as AsyncBskyClient,
    )
    from ._client import (
        ClientOptions as ClientOptions,
    )
    from ._config import (
        CHAT_PROXY as CHAT_PROXY,
    )
    from ._config import (
        DEFAULT_AUTH_HOST as DEFAULT_AUTH_HOST,
    )
    from ._config import (
        DEFAULT_PUBLIC_HOST as DEFAULT_PUBLIC_HOST,
    )
    from ._config import (
        ClientConfig as ClientConfig,
    )
    from ._context import (
        CallContext as CallContext,
    )
    from ._crawl.budget import (
        RequestBudget as RequestBudget,
    )
    from ._crawl.middleware import (
        HostBudgets as HostBudgets,
    )
    from ._crawl.middleware import (
        SharedBudgetMiddleware as SharedBudgetMiddleware,
    )
    from ._crawl.shared_backfill import (
        SharedBackfill as SharedBackfill,
    )
    from ._cursor import (
        ZERO_CURSOR as ZERO_CURSOR,
    )
    from ._feedgen import (
        FeedGenerator as FeedGenerator,
    )
    from ._feedgen import (
        ServiceAuthVerifier as ServiceAuthVerifier,
    )
    from ._feedgen import (
        feed_uri as feed_uri,
    )
    from ._feedgen import (
        publish_feed as publish_feed,
    )
    from ._formats import (
        Cid as Cid,
    )
    from ._formats import (
        Datetime as Datetime,
    )
    from ._formats import (
        Language as Language,
    )
    from ._formats import (
        Uri as Uri,
    )
    from ._graph import (
        GraphReport as GraphReport,
    )
    from ._graph import (
        export_follow_graph as export_follow_graph,
    )
    from ._group.drop import (
        DroppedGroup as DroppedGroup,
    )
    from ._group.drop import (
        drop_group as drop_group,
    )
    from ._group.status import (
        GroupStatus as GroupStatus,
    )
    from ._group.status import (
        PartitionStatus as PartitionStatus,
    )
    from ._group.status import (
        group_status as group_status,
    )
    from ._identity import (
        IdentityResolver as IdentityResolver,
    )
    from ._images import (
        Image as Image,
    )
    from ._images import (
        PreparedImage as PreparedImage,
    )
    from ._images import (
        prepare_image as prepare_image,
    )
    from ._lenient import (
        at_uri_from_text as at_uri_from_text,
    )
    from ._lenient import (
        handle_from_text as handle_from_text,
    )
    from ._media import (
        External as External,
    )
    from ._media import (
        Media as Media,
    )
    from ._middleware import (
        Handler as Handler,
    )
    from ._middleware import (
        Middleware as Middleware,
    )
    from ._moderation import (
        POST_SELF_LABELS as POST_SELF_LABELS,
    )
    from ._moderation import (
        REASON_TYPES as REASON_TYPES,
    )
    from ._moderation import (
        Moderation as Moderation,
    )
    from ._moderation import (
        Report as Report,
    )
    from ._notifications import (
        Notification as Notification,
    )
    from ._notifications import (
        Notifications as Notifications,
    )
    from ._notifications import (
        UnhandledNotifications as UnhandledNotifications,
    )
    from ._oauth import (
        OAuth as OAuth,
    )
    from ._oauth import (
        OAuthApp as OAuthApp,
    )
    from ._oauth import (
        OAuthLogin as OAuthLogin,
    )
    from ._oauth import (
        OAuthSession as OAuthSession,
    )
    from ._pagination import (
        Paginator as Paginator,
    )
    from ._pagination import (
        TypedPaginator as TypedPaginator,
    )
    from ._posts import (
        Post as Post,
    )
    from ._posts import (
        PostOptions as PostOptions,
    )
    from ._posts import (
        Posts as Posts,
    )
    from ._profiles import (
        Profiles as Profiles,
    )
    from ._rate_limits import (
        RateLimit as RateLimit,
    )
    from ._records import (
        Create as Create,
    )
    from ._records import (
        Delete as Delete,
    )
    from ._records import (
        Record as Record,
    )
    from ._records import (
        RecordRef as RecordRef,
    )
    from ._records import (
        Records as Records,
    )
    from ._records import (
        TypedRecord as TypedRecord,
    )
    from ._records import (
        Update as Update,
    )
    from ._records import (
        WriteResult as WriteResult,
    )
    from ._request import (
        AUTH as AUTH,
    )
    from ._request import (
        XrpcRequest as XrpcRequest,
    )
    from ._response import (
        HttpInfo as HttpInfo,
    )
    from ._response import (
        JsonObject as JsonObject,
    )
    from ._response import (
        XrpcResponse as XrpcResponse,
    )
    from ._retry import (
        RetryPolicy as RetryPolicy,
    )
    from ._retry import (
        set_testing as set_testing,
    )
    from ._richtext import (
        Facet as Facet,
    )
    from ._richtext import (
        detect_facets as detect_facets,
    )
    from ._richtext import (
        split_thread as split_thread,
    )
    from ._signals import (
        install_signal_handlers as install_signal_handlers,
    )
    from ._streams import (
        AccountEvent as AccountEvent,
    )
    from ._streams import (
        CommitEvent as CommitEvent,
    )
    from ._streams import (
        CommitVerifier as CommitVerifier,
    )
    from ._streams import (
        EventContext as EventContext,
    )
    from ._streams import (
        FirehoseSource as FirehoseSource,
    )
    from ._streams import (
        IdentityEvent as IdentityEvent,
    )
    from ._streams import (
        InfoEvent as InfoEvent,
    )
    from ._streams import (
        JetstreamSource as JetstreamSource,
    )
    from ._streams import (
        LabelConsumer as LabelConsumer,
    )
    from ._streams import (
        LabelEvent as LabelEvent,
    )
    from ._streams import (
        LabelsFrame as LabelsFrame,
    )
    from ._streams import (
        LabelSource as LabelSource,
    )
    from ._streams import (
        LabelVerifier as LabelVerifier,
    )
    from ._streams import (
        MemoryStreamCursorStore as MemoryStreamCursorStore,
    )
    from ._streams import (
        RepoOp as RepoOp,
    )
    from ._streams import (
        SignatureVerifier as SignatureVerifier,
    )
    from ._streams import (
        Source as Source,
    )
    from ._streams import (
        SqlStreamCursorStore as SqlStreamCursorStore,
    )
    from ._streams import (
        StreamConsumer as StreamConsumer,
    )
    from ._streams import (
        StreamCursorStore as StreamCursorStore,
    )
    from ._streams import (
        StreamEvent as StreamEvent,
    )
    from ._streams import (
        Streams as Streams,
    )
    from ._streams import (
        StreamStats as StreamStats,
    )
    from ._streams import (
        SyncEvent as SyncEvent,
    )
    from ._streams import (
        decode_frame as decode_frame,
    )
    from ._streams import (
        decode_label_frame as decode_label_frame,
    )
    from ._sync.api import (
        RepoListing as RepoListing,
    )
    from ._sync.api import (
        Sync as Sync,
    )
    from ._sync.backfill import (
        Backfill as Backfill,
    )
    from ._sync.backfill import (
        BackfillStats as BackfillStats,
    )
    from ._sync.backfill import (
        Follow as Follow,
    )
    from ._sync.repo import (
        RepoRecord as RepoRecord,
    )
    from ._sync.repo import (
        VerifiedRepo as VerifiedRepo,
    )
    from ._sync.repo import (
        verify_repo as verify_repo,
    )
    from ._syntax import (
        AtIdentifier as AtIdentifier,
    )
    from ._syntax import (
        AtUri as AtUri,
    )
    from ._syntax import (
        Did as Did,
    )
    from ._syntax import (
        Handle as Handle,
    )
    from ._syntax import (
        Nsid as Nsid,
    )
    from ._syntax import (
        RecordKey as RecordKey,
    )
    from ._syntax import (
        Tid as Tid,
    )
    from ._video import (
        Caption as Caption,
    )
    from ._video import (
        UploadedVideo as UploadedVideo,
    )
    from ._video import (
        Video as Video,
    )
    from ._video import (
        VideoInfo as VideoInfo,
    )
    from ._video import (
        Videos as Videos,
    )
    from ._video import (
        check_video as check_video,
    )
    from ._video import (
        video_embed as video_embed,
    )
    from ._write_budget import (
        WriteBudget as WriteBudget,
    )

_LAZY: dict[str, str] = {
    "CID": "._cid",
    "RepoListing": "._sync.api",
    "RepoRecord": "._sync.repo",
    "Sync": "._sync.api",
    "Backfill": "._sync.backfill",
    "SharedBackfill": "._crawl.shared_backfill",
    "RequestBudget": "._crawl.budget",
    "HostBudgets": "._crawl.middleware",
    "SharedBudgetMiddleware": "._crawl.middleware",
    "BackfillStats": "._sync.backfill",
    "Follow": "._sync.backfill",
    "VerifiedRepo": "._sync.repo",
    "verify_repo": "._sync.repo",
    "ClientOptions": "._client",
    "PostOptions": "._posts",
    "TypedRecord": "._records",
    "TypedPaginator": "._pagination",
    "AUTH": "._request",
    "AccountEvent": "._streams",
    "AsyncBskyClient": "._client",
    "FeedGenerator": "._feedgen",
    "ServiceAuthVerifier": "._feedgen",
    "publish_feed": "._feedgen",
    "feed_uri": "._feedgen",
    "AtIdentifier": "._syntax",
    "AtUri": "._syntax",
    "CHAT_PROXY": "._config",
    "CallContext": "._context",
    "Chat": "._chat",
    "Caption": "._video",
    "Cid": "._formats",
    "ClientConfig": "._config",
    "CommitEvent": "._streams",
    "Create": "._records",
    "DEFAULT_AUTH_HOST": "._config",
    "DEFAULT_PUBLIC_HOST": "._config",
    "Datetime": "._formats",
    "Delete": "._records",
    "Did": "._syntax",
    "EventContext": "._streams",
    "GroupStatus": "._group.status",
    "PartitionStatus": "._group.status",
    "group_status": "._group.status",
    "DroppedGroup": "._group.drop",
    "drop_group": "._group.drop",
    "External": "._media",
    "Facet": "._richtext",
    "FirehoseSource": "._streams",
    "GraphReport": "._graph",
    "Handle": "._syntax",
    "Handler": "._middleware",
    "HttpInfo": "._response",
    "IdentityEvent": "._streams",
    "IdentityResolver": "._identity",
    "Image": "._images",
    "InfoEvent": "._streams",
    "JetstreamSource": "._streams",
    "JsonObject": "._response",
    "Language": "._formats",
    "Media": "._media",
    "Middleware": "._middleware",
    "Nsid": "._syntax",
    "OAuth": "._oauth",
    "OAuthApp": "._oauth",
    "OAuthLogin": "._oauth",
    "OAuthSession": "._oauth",
    "Notification": "._notifications",
    "Notifications": "._notifications",
    "UnhandledNotifications": "._notifications",
    "Paginator": "._pagination",
    "Post": "._posts",
    "Posts": "._posts",
    "PreparedImage": "._images",
    "Profiles": "._profiles",
    "RateLimit": "._rate_limits",
    "Record": "._records",
    "RecordKey": "._syntax",
    "RecordRef": "._records",
    "Records": "._records",
    "RepoOp": "._streams",
    "RetryPolicy": "._retry",
    "Session": "._account",
    "SignatureVerifier": "._streams",
    "CommitVerifier": "._streams",
    "Source": "._streams",
    "StreamConsumer": "._streams",
    "MemoryStreamCursorStore": "._streams",
    "SqlStreamCursorStore": "._streams",
    "StreamCursorStore": "._streams",
    "Streams": "._streams",
    "StreamEvent": "._streams",
    "StreamStats": "._streams",
    "SyncEvent": "._streams",
    "Tid": "._syntax",
    "Update": "._records",
    "UploadedVideo": "._video",
    "Uri": "._formats",
    "Video": "._video",
    "VideoInfo": "._video",
    "Videos": "._video",
    "WriteBudget": "._write_budget",
    "WriteResult": "._records",
    "XrpcRequest": "._request",
    "XrpcResponse": "._response",
    "ZERO_CURSOR": "._cursor",
    "at_uri_from_text": "._lenient",
    "check_video": "._video",
    "decode_frame": "._streams",
    "detect_facets": "._richtext",
    "export_follow_graph": "._graph",
    "handle_from_text": "._lenient",
    "install_signal_handlers": "._signals",
    "prepare_image": "._images",
    "set_testing": "._retry",
    "split_thread": "._richtext",
    "video_embed": "._video",
    "LabelConsumer": "._streams",
    "LabelEvent": "._streams",
    "LabelSource": "._streams",
    "LabelVerifier": "._streams",
    "LabelsFrame": "._streams",
    "decode_label_frame": "._streams",
    "Moderation": "._moderation",
    "Report": "._moderation",
    "REASON_TYPES": "._moderation",
    "POST_SELF_LABELS": "._moderation",
}
"""Public name -> the private module that defines it (imported when the name is first used)."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pysky_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ClientOptions",
    "PostOptions",
    "FeedGenerator",
    "ServiceAuthError",
    "ServiceAuthVerifier",
    "publish_feed",
    "feed_uri",
    "TypedRecord",
    "TypedPaginator",
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
    "Chat",
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
    "InvalidResponse",
    "InvalidSwap",
    "InvalidToken",
    "JsonObject",
    "LoginFailed",
    "Media",
    "Middleware",
    "NetworkError",
    "NotAuthenticated",
    "NotFound",
    "Notification",
    "Notifications",
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
    "ResponseTooLarge",
    "ServerError",
    "OAuth",
    "OAuthApp",
    "OAuthCallbackError",
    "OAuthError",
    "OAuthLogin",
    "OAuthSession",
    "OAuthSessionExpired",
    "Session",
    "StorageError",
    "Tid",
    "UnhandledNotifications",
    "Update",
    "UploadedVideo",
    "UpstreamFailure",
    "UsageError",
    "MissingDependency",
    "Video",
    "VideoInfo",
    "VideoProcessingFailed",
    "VideoProcessingTimeout",
    "VideoUploadRefused",
    "Videos",
    "WriteBudget",
    "WriteBudgetExhausted",
    "RequestBudget",
    "HostBudgets",
    "SharedBudgetMiddleware",
    "SharedBackfill",
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
    "AtIdentifier",
    "CID",
    "Cid",
    "RepoListing",
    "RepoRecord",
    "Sync",
    "Backfill",
    "BackfillStats",
    "Follow",
    "VerifiedRepo",
    "verify_repo",
    "Datetime",
    "Language",
    "Uri",
    "at_uri_from_text",
    "handle_from_text",
    "detect_facets",
    "install_signal_handlers",
    "AccountEvent",
    "CommitEvent",
    "EventContext",
    "GroupStatus",
    "PartitionStatus",
    "group_status",
    "DroppedGroup",
    "drop_group",
    "FirehoseSource",
    "FrameDecodeError",
    "IdentityEvent",
    "InfoEvent",
    "JetstreamSource",
    "RepoOp",
    "SignatureVerifier",
    "CommitVerifier",
    "Source",
    "StreamConsumer",
    "MemoryStreamCursorStore",
    "SqlStreamCursorStore",
    "StreamCursorStore",
    "Streams",
    "StreamError",
    "StreamServerError",
    "VerificationError",
    "StreamEvent",
    "StreamStats",
    "SyncEvent",
    "decode_frame",
    "LabelConsumer",
    "LabelEvent",
    "LabelSource",
    "LabelVerifier",
    "LabelsFrame",
    "decode_label_frame",
    "Moderation",
    "Report",
    "REASON_TYPES",
    "POST_SELF_LABELS",
]
