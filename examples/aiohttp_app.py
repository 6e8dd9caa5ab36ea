"""An aiohttp web app sharing one AsyncBskyClient, opened and closed with the app's signals.

    pip install -e '.[examples]'
    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... PORT=8080 python -m examples.aiohttp_app

    GET  /profile/{actor}   the actor's profile record (displayName, description)
    POST /posts             {"text": "..."} → 201 {"uri": ..., "cid": ...}

Log in with Bluesky (OAuth; development: a loopback client, no metadata to host):

    BSKY_OAUTH_REDIRECT_URI=http://127.0.0.1:8080/oauth/callback python -m examples.aiohttp_app
    (add BSKY_OAUTH_ENCRYPTION_KEY=<a key generated once, see the README> to encrypt the tokens at rest)
    open http://127.0.0.1:8080/oauth/login?identifier=<your handle>

    POST /me/posts          {"text": "..."} posted as the logged-in user
    POST /oauth/logout      revoke and forget the user's session

Settings come from the client's environment variables (PYSKY_AUTH_HOST, PYSKY_PLC_DIRECTORY, ...;
see the README), and HOST/PORT for the listening address. Errors: see examples/http_errors.py —
never a 500 for something the user did.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from examples.http_errors import http_error
from examples.oauth_env import encryption_key_from_env, oauth_from_env
from pysky_async import AsyncBskyClient, NotAuthenticated, OAuthApp, PyskyError
from pysky_async.aiohttp_oauth import LoginCookie, current_did, oauth_routes

BSKY = web.AppKey("bsky", AsyncBskyClient)
COOKIE = web.AppKey("cookie", LoginCookie)


@web.middleware
async def pysky_errors(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every error as JSON ``{"detail": ...}``, as FastAPI answers: pysky_async errors (see
    examples/http_errors.py) and aiohttp's own (bad input, unknown page, wrong method)."""
    try:
        return await handler(request)
    except PyskyError as exc:
        status, headers = http_error(exc)
        return web.json_response({"detail": str(exc)}, status=status, headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects stay redirects
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}: ") else exc.reason
        kept = {name: value for name, value in exc.headers.items() if name.lower() not in PLAIN_HEADERS}
        return web.json_response({"detail": detail}, status=exc.status, headers=kept)


PLAIN_HEADERS = frozenset({"content-type", "content-length"})
"""Headers of aiohttp's plain-text error answer that do not fit the JSON one (``Allow`` stays)."""


async def profile(request: web.Request) -> web.Response:
    bsky = request.app[BSKY]
    actor = request.match_info["actor"]
    did = actor if actor.startswith("did:") else await bsky.resolve_handle(actor)
    record = await bsky.get_record(f"at://{did}/app.bsky.actor.profile/self")
    return web.json_response({"did": did, "displayName": record.value.raw.get("displayName"),
                              "description": record.value.raw.get("description")})


async def post_text(request: web.Request) -> str:
    """The body's ``text``; 400 for a body that is not JSON, 422 for one without the text."""
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise web.HTTPUnprocessableEntity(text='expected {"text": "..."}')
    return str(body["text"])


async def create_post(request: web.Request) -> web.Response:
    ref = await request.app[BSKY].create_post(await post_text(request))
    return web.json_response({"uri": ref.uri, "cid": ref.cid}, status=201)


async def post_as_me(request: web.Request) -> web.Response:
    try:
        oauth = request.app[BSKY].oauth
        user = await oauth.client_for(await current_did(request, request.app[COOKIE], oauth))
    except NotAuthenticated as exc:
        raise web.HTTPUnauthorized(text=str(exc)) from exc
    ref = await user.create_post(await post_text(request))
    return web.json_response({"uri": ref.uri, "cid": ref.cid}, status=201)


def make_app(*, oauth_app: OAuthApp | None = None, cookie_secret: str | None = None,
             encryption_key: str | None = None, **client_options: Any) -> web.Application:
    """The app; ``client_options`` go to AsyncBskyClient (the environment supplies the rest);
    with ``oauth_app`` users log in with Bluesky and post as themselves (their tokens encrypted
    at rest with ``encryption_key``, when given)."""

    async def bsky_context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncBskyClient(**client_options) as bsky:
            if oauth_app is not None:
                bsky.oauth.configure(oauth_app, encryption_key=encryption_key)
            app[BSKY] = bsky
            yield

    app = web.Application(middlewares=[pysky_errors])
    app.cleanup_ctx.append(bsky_context)
    app.add_routes([web.get("/profile/{actor}", profile), web.post("/posts", create_post)])
    if oauth_app is not None:
        cookie = LoginCookie(cookie_secret or secrets.token_urlsafe(32), secure=not oauth_app.is_loopback)
        app[COOKIE] = cookie
        app.add_routes([*oauth_routes(lambda request: request.app[BSKY].oauth, cookie),
                        web.post("/me/posts", post_as_me)])
    return app


if __name__ == "__main__":
    oauth_app, cookie_secret = oauth_from_env()
    web.run_app(make_app(oauth_app=oauth_app, cookie_secret=cookie_secret, encryption_key=encryption_key_from_env()),
                host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8080")))
