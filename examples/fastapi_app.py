"""A FastAPI service sharing one AsyncBskyClient (one session, one refresh) across all requests.

    pip install -e '.[examples]'
    BSKY_AUTH_USERNAME=... BSKY_AUTH_PASSWORD=... uvicorn examples.fastapi_app:app

    GET  /profile/{actor}   the actor's profile record (displayName, description)
    POST /posts             {"text": "..."} → {"uri": ..., "cid": ...}
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from pysky_async import AsyncBskyClient, InvalidInput, RecordNotFound


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

    @app.get("/profile/{actor}")
    async def profile(actor: str, bsky: Bsky) -> dict[str, Any]:
        try:
            did = actor if actor.startswith("did:") else await bsky.resolve_handle(actor)
            record = await bsky.get_record(f"at://{did}/app.bsky.actor.profile/self")
        except (InvalidInput, RecordNotFound) as exc:
            raise HTTPException(404, str(exc)) from exc
        return {"did": did, "displayName": record.value.raw.get("displayName"),
                "description": record.value.raw.get("description")}

    @app.post("/posts", status_code=201)
    async def create_post(body: NewPost, bsky: Bsky) -> dict[str, str]:
        try:
            ref = await bsky.create_post(body.text)
        except InvalidInput as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"uri": ref.uri, "cid": ref.cid}

    return app


app = make_app()
