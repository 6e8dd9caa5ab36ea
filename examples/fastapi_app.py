"""A FastAPI service sharing one AsyncBskyClient (one session, one refresh) across all requests.

    pip install -e '.[examples]'
    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... uvicorn examples.fastapi_app:app --port 8000

    GET  /profile/{actor}   the actor's profile record (displayName, description)
    POST /posts             {"text": "..."} → 201 {"uri": ..., "cid": ...}

Log in with Bluesky (OAuth; development: a loopback client, no metadata to host):

    BSKY_OAUTH_REDIRECT_URI=http://127.0.0.1:8000/oauth/callback uvicorn examples.fastapi_app:app
    (add BSKY_OAUTH_ENCRYPTION_KEY=<a key generated once, see the README> to encrypt the tokens at rest)
    open http://127.0.0.1:8000/oauth/login?identifier=<your handle>

    POST /me/posts          {"text": "..."} posted as the logged-in user
    POST /oauth/logout      revoke and forget the user's session

Settings come from the client's environment variables (PYSKY_AUTH_HOST, PYSKY_PLC_DIRECTORY, ...;
see the README). Errors: see examples/http_errors.py — never a 500 for something the user did.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from examples.http_errors import http_error
from examples.oauth_env import encryption_key_from_env, oauth_from_env
from pysky_async import AsyncBskyClient, NotAuthenticated, OAuthApp, PyskyError
from pysky_async.fastapi_oauth import LoginCookie, current_did, oauth_router


class NewPost(BaseModel):
    text: str


def shared_client(request: Request) -> AsyncBskyClient:
    """The dependency: the one client opened in the lifespan."""
    return request.app.state.bsky  # type: ignore[no-any-return]


Bsky = Annotated[AsyncBskyClient, Depends(shared_client)]


def make_app(*, oauth_app: OAuthApp | None = None, cookie_secret: str | None = None,
             encryption_key: str | None = None, **client_options: Any) -> FastAPI:
    """The app; ``client_options`` go to AsyncBskyClient (the environment supplies the rest);
    with ``oauth_app`` users log in with Bluesky and post as themselves (their tokens encrypted
    at rest with ``encryption_key``, when given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncBskyClient(**client_options) as bsky:
            if oauth_app is not None:
                bsky.oauth.configure(oauth_app, encryption_key=encryption_key)
            app.state.bsky = bsky
            yield

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(PyskyError)
    async def pysky_error(request: Request, exc: PyskyError) -> JSONResponse:
        status, headers = http_error(exc)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    if oauth_app is not None:
        cookie = LoginCookie(cookie_secret or secrets.token_urlsafe(32), secure=not oauth_app.is_loopback)
        app.include_router(oauth_router(lambda request: request.app.state.bsky.oauth, cookie))

        @app.post("/me/posts", status_code=201)
        async def post_as_me(body: NewPost, request: Request, bsky: Bsky) -> dict[str, str]:
            try:
                user = await bsky.oauth.client_for(await current_did(request, cookie, bsky.oauth))
            except NotAuthenticated as exc:
                raise HTTPException(401, str(exc)) from exc
            ref = await user.create_post(body.text)
            return {"uri": ref.uri, "cid": ref.cid}

    @app.get("/profile/{actor}")
    async def profile(actor: str, bsky: Bsky) -> dict[str, Any]:
        did = actor if actor.startswith("did:") else await bsky.resolve_handle(actor)
        record = await bsky.get_record(f"at://{did}/app.bsky.actor.profile/self")
        return {"did": did, "displayName": record.value.raw.get("displayName"),
                "description": record.value.raw.get("description")}

    @app.post("/posts", status_code=201)
    async def create_post(body: NewPost, bsky: Bsky) -> dict[str, str]:
        ref = await bsky.create_post(body.text)
        return {"uri": ref.uri, "cid": ref.cid}

    return app


_oauth_app, _cookie_secret = oauth_from_env()
app = make_app(oauth_app=_oauth_app, cookie_secret=_cookie_secret, encryption_key=encryption_key_from_env())
