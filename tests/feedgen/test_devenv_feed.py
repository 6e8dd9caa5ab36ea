"""Must show (issue 24): the kit's generator on loopback, registered as ``did:web:localhost%3A<port>``
(its ``/.well-known/did.json`` names the ``#bsky_fg`` service), its feed record published, and the
real AppView of dev-env serving ``app.bsky.feed.getFeed`` from the skeleton, hydrated; the PDS's
real service-auth tokens (``getServiceAuth``) accepted, and refused with the wrong ``aud``, the
wrong ``lxm``, expired, or signed by another key."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import (
    AsyncBskyClient,
    FeedGenerator,
    ServiceAuthError,
    ServiceAuthVerifier,
    feed_uri,
    publish_feed,
)
from pysky_async.aiohttp_feedgen import feed_routes

from ..realnet.devenv import DevEnv
from ..realnet.pds import Account
from .tokens import make_jwt

pytestmark = pytest.mark.anyio
LXM = "app.bsky.feed.getFeedSkeleton"


def client(devenv: DevEnv, account: Account | None, tmp_path: Path, name: str) -> AsyncBskyClient:
    if account is None:
        return AsyncBskyClient(public_host=devenv.appview_url, plc_directory=devenv.plc_url, auto_migrate=True,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/{name}.sqlite3")
    return AsyncBskyClient(username=account.handle, password=account.password, auth_host=devenv.pds_listen_url,
                           plc_directory=devenv.plc_url, auto_migrate=True,
                           database_url=f"sqlite+aiosqlite:///{tmp_path}/{name}.sqlite3")


def loopback_socket() -> socket.socket:
    """A listening socket on a free loopback port: the generator's did:web needs the port first."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@asynccontextmanager
async def serve(app: web.Application, sock: socket.socket) -> AsyncIterator[None]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def no_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BSKY_AUTH_USERNAME", "BSKY_AUTH_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


async def test_the_appview_serves_our_skeleton_hydrated_and_bad_tokens_get_401(
        devenv: DevEnv, tmp_path: Path) -> None:
    publisher, _ = devenv.new_account("pub")
    author, _ = devenv.new_account("auth")
    viewer, _ = devenv.new_account("view")
    requesters: list[str | None] = []
    skeleton: list[str] = []

    async def algorithm(feed: str, limit: int, cursor: str | None,
                        requester: str | None) -> tuple[Sequence[str], str | None]:
        requesters.append(requester)
        return skeleton[:limit], None

    async with client(devenv, None, tmp_path, "generator") as identity_client, \
            client(devenv, publisher, tmp_path, "publisher") as pub, \
            client(devenv, author, tmp_path, "author") as writer, \
            client(devenv, viewer, tmp_path, "viewer") as reader:
        sock = loopback_socket()
        port = sock.getsockname()[1]
        did = f"did:web:localhost%3A{port}"
        generator = FeedGenerator(did, identity=identity_client.identity)
        uri = feed_uri(publisher.did, "kit-feed")
        generator.add_feed(uri, algorithm)
        app = web.Application()
        app.add_routes(feed_routes(generator))
        async with serve(app, sock):
            posts = [(await writer.create_post(f"feed kit post {n}")).uri for n in range(3)]
            skeleton[:] = [posts[2], posts[0], posts[1]]  # an order of our own, not the timeline's
            published = await publish_feed(pub, "kit-feed", did=did, display_name="Kit feed",
                                           description="served by pysky_async on loopback")
            assert published.uri == uri
            devenv.process_all()

            page = await reader.get("app.bsky.feed.getFeed", feed=uri, limit=10)  # through the PDS
            feed = page.raw["feed"]
            assert [item["post"]["uri"] for item in feed] == skeleton
            assert [item["post"]["record"]["text"] for item in feed] == [
                "feed kit post 2", "feed kit post 0", "feed kit post 1"]
            assert {item["post"]["author"]["did"] for item in feed} == {author.did}
            assert requesters == [viewer.did]  # the PDS's token for the viewer was verified

            generator_view = (await reader.get("app.bsky.feed.getFeedGenerator", feed=uri)).raw
            assert generator_view["view"]["did"] == did and generator_view["view"]["displayName"] == "Kit feed"

            # published again: updated in place, createdAt kept
            before = (await pub.get_record(uri)).value["createdAt"]
            await publish_feed(pub, "kit-feed", did=did, display_name="Kit feed 2")
            assert (await pub.get_record(uri)).value["createdAt"] == before

            # real tokens from the PDS, sent straight to the generator
            endpoint = f"http://127.0.0.1:{port}/xrpc/{LXM}"

            async def status_of(token: str) -> tuple[int, str]:
                async with httpx.AsyncClient() as http:
                    response = await http.get(endpoint, params={"feed": uri},
                                              headers={"authorization": f"Bearer {token}"})
                body = response.json()
                return response.status_code, str(body.get("error", ""))

            good = await reader.get_service_auth(did, LXM)
            assert (await status_of(good))[0] == 200
            assert await status_of(await reader.get_service_auth("did:web:elsewhere.test", LXM)) == (
                401, "BadJwtAudience")
            assert await status_of(await reader.get_service_auth(did, "app.bsky.feed.getFeed")) == (
                401, "BadJwtLexiconMethod")
            forged = make_jwt(ec.generate_private_key(ec.SECP256K1()), iss=viewer.did, aud=did)
            assert await status_of(forged) == (401, "BadJwtSignature")
            later = ServiceAuthVerifier(identity_client.identity, service_did=did, clock=lambda: time.time() + 3600)
            with pytest.raises(ServiceAuthError) as expired:
                await later.verify(f"Bearer {good}")
            assert expired.value.error == "JwtExpired"
            assert requesters == [viewer.did, viewer.did]  # refused tokens never reached the algorithm
