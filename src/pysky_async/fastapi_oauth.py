"""Log in with Bluesky for FastAPI: ready routes over ``bsky.oauth``.

    app.include_router(oauth_router(lambda request: request.app.state.bsky.oauth, cookie))

Routes (under ``prefix``, default ``/oauth``): ``GET /login?identifier=...&next=/path`` (to
the user's authorization server), ``GET /callback`` (back from it: sets the login cookie and
redirects to ``next``), ``POST /logout`` (revokes and forgets), ``GET /client-metadata.json``
and ``GET /jwks.json`` (what the authorization servers fetch). ``await current_did(request,
cookie, bsky.oauth)`` tells a route who is logged in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

from ._exceptions import OAuthCallbackError, PyskyError
from ._oauth import OAuth
from ._oauth._web import LoginCookie, safe_next

__all__ = ["LoginCookie", "current_did", "oauth_router"]


async def current_did(request: Request, cookie: LoginCookie, oauth: OAuth) -> str:
    """The logged-in user's DID; HTTP 401 when nobody is (no cookie, or a forged, expired or
    logged-out one)."""
    did = await cookie.check(oauth, request.cookies.get(cookie.name))
    if did is None:
        raise HTTPException(401, "log in first: /oauth/login?identifier=<your handle>")
    return did


def oauth_router(get_oauth: Callable[[Request], OAuth], cookie: LoginCookie, *, prefix: str = "/oauth") -> APIRouter:
    """The login routes; ``get_oauth`` returns the configured ``bsky.oauth`` for a request."""
    router = APIRouter(prefix=prefix)

    @router.get("/client-metadata.json")
    async def client_metadata(request: Request) -> dict[str, Any]:
        return get_oauth(request).app.metadata()

    @router.get("/jwks.json")
    async def jwks(request: Request) -> dict[str, Any]:
        return get_oauth(request).app.jwks()

    @router.get("/login")
    async def login(request: Request, identifier: str, next: str = "/") -> RedirectResponse:
        try:
            url = await get_oauth(request).start(identifier, app_state=safe_next(next))
        except PyskyError as exc:  # unknown handle, no OAuth server, unreachable...
            raise HTTPException(400, f"cannot log in {identifier!r}: {exc}") from exc
        return RedirectResponse(url, status_code=303)

    @router.get("/callback")
    async def callback(request: Request) -> RedirectResponse:
        try:
            done = await get_oauth(request).callback(dict(request.query_params))
        except OAuthCallbackError as exc:
            raise HTTPException(400, f"login failed: {exc}") from exc
        response = RedirectResponse(safe_next(done.app_state), status_code=303)
        response.set_cookie(cookie.name, await cookie.issue(get_oauth(request), done.did), max_age=cookie.max_age,
                            httponly=True, samesite="lax", secure=cookie.secure)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> JSONResponse:
        oauth = get_oauth(request)
        did = await cookie.check(oauth, request.cookies.get(cookie.name))
        if did is not None:
            await oauth.logins.end(did)  # first: the cookie is refused from now on, whatever the revocation does
            await oauth.logout(did)
        response = JSONResponse({"logged_out": did})
        response.delete_cookie(cookie.name)
        return response

    return router
