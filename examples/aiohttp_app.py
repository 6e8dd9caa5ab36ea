"""An aiohttp web app sharing one AsyncBskyClient, opened and closed with the app's signals.

    pip install -e '.[examples]'
    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... PORT=8080 python -m examples.aiohttp_app

    GET  /profile/{actor}   the actor's profile record (displayName, description)
    POST /posts             {"text": "..."} → 201 {"uri": ..., "cid": ...}

Settings come from the client's environment variables (PYSKY_AUTH_HOST, PYSKY_PLC_DIRECTORY, ...;
see the README), and HOST/PORT for the listening address. Errors: see examples/http_errors.py —
never a 500 for something the user did.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from pysky_async import AsyncBskyClient, PyskyError

from .http_errors import http_error

BSKY = web.AppKey("bsky", AsyncBskyClient)


@web.middleware
async def pysky_errors(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except PyskyError as exc:
        status, headers = http_error(exc)
        return web.json_response({"detail": str(exc)}, status=status, headers=headers)


async def profile(request: web.Request) -> web.Response:
    bsky = request.app[BSKY]
    actor = request.match_info["actor"]
    did = actor if actor.startswith("did:") else await bsky.resolve_handle(actor)
    record = await bsky.get_record(f"at://{did}/app.bsky.actor.profile/self")
    return web.json_response({"did": did, "displayName": record.value.raw.get("displayName"),
                              "description": record.value.raw.get("description")})


async def create_post(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return web.json_response({"detail": "the body is not JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return web.json_response({"detail": 'expected {"text": "..."}'}, status=422)
    ref = await request.app[BSKY].create_post(body["text"])
    return web.json_response({"uri": ref.uri, "cid": ref.cid}, status=201)


def make_app(**client_options: Any) -> web.Application:
    """The app; ``client_options`` go to AsyncBskyClient (the environment supplies the rest)."""

    async def bsky_context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncBskyClient(**client_options) as bsky:
            app[BSKY] = bsky
            yield

    app = web.Application(middlewares=[pysky_errors])
    app.cleanup_ctx.append(bsky_context)
    app.add_routes([web.get("/profile/{actor}", profile), web.post("/posts", create_post)])
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8080")))
