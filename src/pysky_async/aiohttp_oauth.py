"""Log in with Bluesky for aiohttp: ready routes over ``bsky.oauth``.

    app.add_routes(oauth_routes(lambda request: request.app[BSKY].oauth, cookie))

The same routes as ``pysky_async.fastapi_oauth`` (under ``prefix``, default ``/oauth``):
``GET /login``, ``GET /callback``, ``POST /logout``, ``GET /client-metadata.json``,
``GET /jwks.json``; ``await current_did(request, cookie, bsky.oauth)`` tells a handler who is
logged in.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from ._exceptions import OAuthCallbackError, PyskyError
from ._oauth import OAuth
from ._oauth._web import LoginCookie, safe_next

__all__ = ["LoginCookie", "current_did", "oauth_routes"]


async def current_did(request: web.Request, cookie: LoginCookie, oauth: OAuth) -> str:
    """The logged-in user's DID; HTTP 401 when nobody is (no cookie, or a forged, expired or
    logged-out one)."""
    did = await cookie.check(oauth, request.cookies.get(cookie.name))
    if did is None:
        raise web.HTTPUnauthorized(text="log in first: /oauth/login?identifier=<your handle>")
    return did


def oauth_routes(get_oauth: Callable[[web.Request], OAuth], cookie: LoginCookie, *,
                 prefix: str = "/oauth") -> list[web.RouteDef]:
    """The login routes; ``get_oauth`` returns the configured ``bsky.oauth`` for a request."""

    async def client_metadata(request: web.Request) -> web.Response:
        return web.json_response(get_oauth(request).app.metadata())

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(get_oauth(request).app.jwks())

    async def login(request: web.Request) -> web.Response:
        identifier = request.query.get("identifier", "")
        try:
            url = await get_oauth(request).start(identifier, app_state=safe_next(request.query.get("next")))
        except PyskyError as exc:  # unknown handle, no OAuth server, unreachable...
            raise web.HTTPBadRequest(text=f"cannot log in {identifier!r}: {exc}") from exc
        raise web.HTTPSeeOther(url)

    async def callback(request: web.Request) -> web.Response:
        try:
            done = await get_oauth(request).callback(dict(request.query))
        except OAuthCallbackError as exc:
            raise web.HTTPBadRequest(text=f"login failed: {exc}") from exc
        response = web.HTTPSeeOther(safe_next(done.app_state))
        response.set_cookie(cookie.name, await cookie.issue(get_oauth(request), done.did), max_age=cookie.max_age,
                            httponly=True, samesite="Lax", secure=cookie.secure)
        raise response

    async def logout(request: web.Request) -> web.Response:
        oauth = get_oauth(request)
        did = await cookie.check(oauth, request.cookies.get(cookie.name))
        if did is not None:
            await oauth.logins.end(did)  # first: the cookie is refused from now on, whatever the revocation does
            await oauth.logout(did)
        response = web.json_response({"logged_out": did})
        response.del_cookie(cookie.name)
        return response

    return [web.get(f"{prefix}/client-metadata.json", client_metadata), web.get(f"{prefix}/jwks.json", jwks),
            web.get(f"{prefix}/login", login), web.get(f"{prefix}/callback", callback),
            web.post(f"{prefix}/logout", logout)]
