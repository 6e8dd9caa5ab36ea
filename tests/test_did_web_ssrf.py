"""A ``did:web`` DID is fetched only from a public address unless ``allow_private_did_web`` is on.

Whoever mints a ``did:web`` (a service-auth token's issuer, a labeler) picks its host, so without
this guard a feed generator verifying a token would fetch ``http://localhost:<port>/...`` or the
cloud metadata address for them (SSRF). A real loopback server stands for the internal service;
a name that resolves to a private address is checked at resolution time, and the request then
goes to the address that was checked (so a second DNS answer cannot point it elsewhere).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web

from pysky_async import AsyncBskyClient, IdentityNotFound, _public_address
from pysky_async._config import ClientConfig

from .streams.loopback import start_app

pytestmark = pytest.mark.anyio


class DidServer:
    """A loopback web server: ``/.well-known/did.json`` answers what ``answer`` says; it counts hits."""

    def __init__(self) -> None:
        self.hits = 0
        self.port = 0
        self.answer: web.StreamResponse | None = None

    def did(self) -> str:
        return f"did:web:localhost%3A{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        if self.answer is not None:
            return self.answer
        return web.json_response({"id": self.did(), "service": []})


@pytest.fixture
async def did_server() -> AsyncIterator[DidServer]:
    server = DidServer()
    app = web.Application()
    app.router.add_get("/.well-known/did.json", server.handle)
    runner, server.port = await start_app(app)
    yield server
    await runner.cleanup()


def client(**options: Any) -> AsyncBskyClient:
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", retry=None, **options)


@asynccontextmanager
async def mock_client(did: str) -> AsyncIterator[tuple[AsyncBskyClient, list[httpx.Request]]]:
    """A client whose HTTP goes to a mock transport answering ``did``'s document; yields it and the
    requests that reached the transport."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"id": did})

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http, client(http_client=http) as bsky:
        yield bsky, requests


async def test_a_loopback_did_web_is_not_fetched_by_default(did_server: DidServer) -> None:
    async with client() as bsky:
        with pytest.raises(IdentityNotFound) as caught:
            await bsky.identity.resolve_did(did_server.did())
    assert caught.value.reason == "not_public"
    assert "allow_private_did_web=True" in str(caught.value)
    assert "PYSKY_ALLOW_PRIVATE_DID_WEB" in str(caught.value)
    assert did_server.hits == 0


async def test_the_opt_in_fetches_a_loopback_did_web(did_server: DidServer) -> None:
    async with client(allow_private_did_web=True) as bsky:
        document = await bsky.identity.resolve_did(did_server.did())
    assert document["id"] == did_server.did()
    assert did_server.hits == 1


def test_the_opt_in_comes_from_the_environment() -> None:
    assert ClientConfig.from_options(env={"PYSKY_ALLOW_PRIVATE_DID_WEB": "1"}).allow_private_did_web
    assert not ClientConfig.from_options(env={"PYSKY_ALLOW_PRIVATE_DID_WEB": "0"}).allow_private_did_web
    assert not ClientConfig.from_options(env={}).allow_private_did_web


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.0.0.1%3A8080", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "localhost", "localhost%3A2583",
    "api.localhost",
])
async def test_non_public_hosts_are_refused_before_any_request(host: str) -> None:
    async with mock_client(f"did:web:{host}") as (bsky, requests):
        with pytest.raises(IdentityNotFound) as caught:
            await bsky.identity.resolve_did(f"did:web:{host}")
    assert caught.value.reason == "not_public"
    assert requests == []


@pytest.mark.parametrize("address", ["::1", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                                     "2002:7f00:1::1", "::"])
def test_non_public_ipv6_addresses(address: str) -> None:
    assert not _public_address.is_public(ipaddress.ip_address(address))


def test_public_addresses() -> None:
    assert _public_address.is_public(ipaddress.ip_address("93.184.216.34"))
    assert _public_address.is_public(ipaddress.ip_address("2606:4700::6810:84e5"))


def resolving(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> list[str]:
    """Make host lookups answer ``answers`` in turn (the last one from then on); returns the names looked up."""
    asked: list[str] = []

    async def lookup(host: str, port: int) -> list[_public_address.IpAddress]:
        asked.append(host)
        answer = answers[min(len(asked), len(answers)) - 1]
        return [ipaddress.ip_address(a) for a in answer]

    monkeypatch.setattr(_public_address, "lookup", lookup)
    return asked


async def test_a_name_that_resolves_to_a_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    resolving(monkeypatch, ["93.184.216.34", "10.0.0.7"])  # one private answer among public ones is enough
    async with mock_client("did:web:internal.example.com") as (bsky, requests):
        with pytest.raises(IdentityNotFound) as caught:
            await bsky.identity.resolve_did("did:web:internal.example.com")
    assert caught.value.reason == "not_public"
    assert "10.0.0.7" in str(caught.value)
    assert requests == []


async def test_the_request_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the first answer is public, every later one loopback. The name is looked up
    once and the connection is made to the checked address, with the name for Host and TLS."""
    asked = resolving(monkeypatch, ["93.184.216.34"], ["127.0.0.1"])
    did = "did:web:rebind.example.com"
    async with mock_client(did) as (bsky, requests):
        assert (await bsky.identity.resolve_did(did))["id"] == did
    assert asked == ["rebind.example.com"]  # once: nothing resolves the name again to connect
    [sent] = requests
    assert str(sent.url) == "https://93.184.216.34/.well-known/did.json"
    assert sent.headers["Host"] == "rebind.example.com"
    assert sent.extensions["sni_hostname"] == "rebind.example.com"


async def test_a_port_is_kept_in_the_host_header(monkeypatch: pytest.MonkeyPatch) -> None:
    resolving(monkeypatch, ["2606:4700::6810:84e5"])
    did = "did:web:feeds.example.com%3A8443"
    async with mock_client(did) as (bsky, requests):
        await bsky.identity.resolve_did(did)
    assert str(requests[0].url) == "https://[2606:4700::6810:84e5]:8443/.well-known/did.json"
    assert requests[0].headers["Host"] == "feeds.example.com:8443"


async def test_a_name_that_does_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    async def lookup(host: str, port: int) -> list[_public_address.IpAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(_public_address, "lookup", lookup)
    async with client() as bsky:
        with pytest.raises(IdentityNotFound) as caught:
            await bsky.identity.resolve_did("did:web:nowhere.example.com")
    assert caught.value.reason == "not_found"


async def test_a_redirect_is_not_followed(did_server: DidServer) -> None:
    did_server.answer = web.Response(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    async with client(allow_private_did_web=True) as bsky:
        with pytest.raises(IdentityNotFound) as caught:
            await bsky.identity.resolve_did(did_server.did())
    assert "redirect" in str(caught.value)
    assert caught.value.status_code == 302
    assert did_server.hits == 1


async def test_a_huge_did_document_is_not_read(did_server: DidServer) -> None:
    padding = "x" * (1 << 20)
    did_server.answer = web.Response(text=json.dumps({"id": did_server.did(), "padding": padding}),
                                     content_type="application/json")
    async with client(allow_private_did_web=True) as bsky:
        with pytest.raises(IdentityNotFound) as caught:
            await bsky.identity.resolve_did(did_server.did())
    assert caught.value.reason == "bad_document"
    assert "65536 bytes" in str(caught.value)


async def test_a_did_web_with_a_path_is_refused() -> None:
    async with client() as bsky:
        with pytest.raises(IdentityNotFound, match="path"):
            await bsky.identity.resolve_did("did:web:example.com:users:alice")
