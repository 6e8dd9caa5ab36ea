"""Event streams: the firehose and Jetstream, decoded into typed events, consumed with a durable cursor."""

from .connection import Feed, Source
from .consumer import EventContext, Handler, StreamConsumer
from .cursor_store import MemoryStreamCursorStore, SqlStreamCursorStore, StreamCursorStore
from .events import AccountEvent, CommitEvent, IdentityEvent, InfoEvent, RepoOp, StreamEvent, SyncEvent
from .factory import Streams
from .firehose import FirehoseSource, decode_frame
from .jetstream import PUBLIC_INSTANCES, JetstreamSource, v1_dictionary
from .labels import LabelConsumer, LabelEvent, LabelHandler, LabelsFrame, LabelSource, LabelVerifier, decode_label_frame
from .runner import Runner
from .stats import StreamStats
from .verify import CommitVerifier, SignatureVerifier

__all__ = [
    "AccountEvent",
    "CommitEvent",
    "CommitVerifier",
    "EventContext",
    "Feed",
    "FirehoseSource",
    "Handler",
    "IdentityEvent",
    "InfoEvent",
    "JetstreamSource",
    "LabelConsumer",
    "LabelEvent",
    "LabelHandler",
    "LabelSource",
    "LabelVerifier",
    "LabelsFrame",
    "MemoryStreamCursorStore",
    "PUBLIC_INSTANCES",
    "RepoOp",
    "Runner",
    "SignatureVerifier",
    "SqlStreamCursorStore",
    "Source",
    "StreamConsumer",
    "StreamCursorStore",
    "StreamEvent",
    "StreamStats",
    "Streams",
    "SyncEvent",
    "decode_frame",
    "decode_label_frame",
    "v1_dictionary",
]
