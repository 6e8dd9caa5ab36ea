"""Feed generators: service-auth verification, the XRPC methods, publishing the feed record.

The web glue lives in ``pysky_async.fastapi_feedgen`` and ``pysky_async.aiohttp_feedgen``.
"""

from __future__ import annotations

from .generator import FeedAlgorithm, FeedGenerator, SkeletonItem, XrpcReply, feed_uri
from .publish import publish_feed
from .service_auth import GET_FEED_SKELETON, DidDocuments, ServiceAuthVerifier, bearer_token

__all__ = ["GET_FEED_SKELETON", "DidDocuments", "FeedAlgorithm", "FeedGenerator", "ServiceAuthVerifier",
           "SkeletonItem", "XrpcReply", "bearer_token", "feed_uri", "publish_feed"]
