"""A FastAPI service sharing one AsyncBskyClient (one session, one refresh) across all requests.

    pip install -e '.[examples]'
    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... uvicorn examples.fastapi_app:app --port 8000

    GET  /profile/{actor}   the actor's profile record (displayName, description)
    POST /posts             {"text": "..."} → 201 {"uri": ..., "cid": ...}

Settings come from the client's environment variables (PYSKY_AUTH_HOST, PYSKY_PLC_DIRECTORY, ...;
see the README). Errors: see examples/http_errors.py — never a 500 for something the user did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pysky_async import AsyncBskyClient, PyskyError

from .http_errors import http_error


class NewPost(BaseModel):
    text: str


def shared_client(request: Request) -> AsyncBskyClient:
    """The dependency: the one client opened in the lifespan."""
    return request.app.state.bsky  # type: ignore[no-any-return]


Bsky = Annotated[AsyncBskyClient, Depends(shared_client)]


def make_app(**client_options: Any) -> FastAPI:
    """The app; ``client_options`` go to AsyncBskyClient (the environment supplies the rest)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncBskyClient(**client_options) as bsky:
            app.state.bsky = bsky
            yield

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(PyskyError)
    async def pysky_error(request: Request, exc: PyskyError) -> JSONResponse:
        status, headers = http_error(exc)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

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


app = make_app()
