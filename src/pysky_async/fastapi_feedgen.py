"""A feed generator for FastAPI: the XRPC routes of a ``FeedGenerator``.

    app.include_router(feed_router(generator))

Routes: ``GET /xrpc/app.bsky.feed.describeFeedGenerator``, ``GET /xrpc/app.bsky.feed.getFeedSkeleton``
(the service-auth token checked, ``feed``/``limit``/``cursor`` validated; errors as XRPC error
bodies: 400 ``UnknownFeed``/``InvalidRequest``, 401 ``BadJwtAudience``...), and
``GET /.well-known/did.json`` for a ``did:web`` generator (404 otherwise).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ._feedgen import FeedGenerator, XrpcReply

__all__ = ["FeedGenerator", "feed_router"]


def _response(reply: XrpcReply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)


def feed_router(generator: FeedGenerator) -> APIRouter:
    """The routes that serve ``generator``'s feeds."""
    router = APIRouter()

    @router.get("/xrpc/app.bsky.feed.describeFeedGenerator")
    async def describe() -> JSONResponse:
        return JSONResponse(generator.describe())

    @router.get("/xrpc/app.bsky.feed.getFeedSkeleton")
    async def get_feed_skeleton(request: Request) -> JSONResponse:
        return _response(await generator.handle_skeleton(request.query_params, request.headers.get("authorization")))

    @router.get("/.well-known/did.json")
    async def did_document() -> JSONResponse:
        document = generator.did_document()
        if document is None:
            return JSONResponse({"error": "NotFound", "message": f"{generator.did} is not a did:web"}, 404)
        return JSONResponse(document)

    return router
