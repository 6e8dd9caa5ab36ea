"""A feed generator for aiohttp: the XRPC routes of a ``FeedGenerator``.

    app.add_routes(feed_routes(generator))

The same routes as ``pysky_async.fastapi_feedgen``: ``GET /xrpc/app.bsky.feed.describeFeedGenerator``,
``GET /xrpc/app.bsky.feed.getFeedSkeleton``, ``GET /.well-known/did.json`` (did:web only).
"""

from __future__ import annotations

from aiohttp import web

from ._feedgen import FeedGenerator

__all__ = ["FeedGenerator", "feed_routes"]


def feed_routes(generator: FeedGenerator) -> list[web.RouteDef]:
    """The routes that serve ``generator``'s feeds."""

    async def describe(request: web.Request) -> web.Response:
        return web.json_response(generator.describe())

    async def get_feed_skeleton(request: web.Request) -> web.Response:
        reply = await generator.handle_skeleton(request.query, request.headers.get("Authorization"))
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def did_document(request: web.Request) -> web.Response:
        document = generator.did_document()
        if document is None:
            return web.json_response({"error": "NotFound", "message": f"{generator.did} is not a did:web"},
                                     status=404)
        return web.json_response(document)

    return [web.get("/xrpc/app.bsky.feed.describeFeedGenerator", describe),
            web.get("/xrpc/app.bsky.feed.getFeedSkeleton", get_feed_skeleton),
            web.get("/.well-known/did.json", did_document)]
