"""An aiohttp web app sharing one AsyncBskyClient, opened and closed with the app's signals.

    pip install -e '.[examples]'
    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... python -m examples.aiohttp_app

    GET  /profile/{actor}   the actor's profile record (displayName, description)
    POST /posts             {"text": "..."} → {"uri": ..., "cid": ...}
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from pysky_async import AsyncBskyClient, InvalidInput, RecordNotFound

BSKY = web.AppKey("bsky", AsyncBskyClient)


async def profile(request: web.Request) -> web.Response:
    bsky = request.app[BSKY]
    actor = request.match_info["actor"]
    try:
        did = actor if actor.startswith("did:") else await bsky.resolve_handle(actor)
        record = await bsky.get_record(f"at://{did}/app.bsky.actor.profile/self")
    except (InvalidInput, RecordNotFound) as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    return web.json_response({"did": did, "displayName": record.value.raw.get("displayName"),
                              "description": record.value.raw.get("description")})


async def create_post(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        ref = await request.app[BSKY].create_post(str(body["text"]))
    except (KeyError, InvalidInput) as exc:
        raise web.HTTPUnprocessableEntity(text=str(exc)) from exc
    return web.json_response({"uri": ref.uri, "cid": ref.cid}, status=201)


def make_app(**client_options: Any) -> web.Application:
    """The app; ``client_options`` go to AsyncBskyClient (the environment supplies the rest)."""

    async def bsky_context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncBskyClient(**client_options) as bsky:
            app[BSKY] = bsky
            yield

    app = web.Application()
    app.cleanup_ctx.append(bsky_context)
    app.add_routes([web.get("/profile/{actor}", profile), web.post("/posts", create_post)])
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
