"""A confidential client (``private_key_jwt``, ES256) against the reference PDS.

The PDS fetches a confidential client's metadata from its ``client_id``, which must be an
https URL on a public-looking domain name. So this test serves ``client-metadata.json`` and
``jwks.json`` (through ``pysky_async.aiohttp_oauth``) over https with a throwaway self-signed
certificate, and starts its own PDS that trusts that certificate (``NODE_EXTRA_CA_CERTS``) and
resolves the made-up name to 127.0.0.1 (``dns_shim.cjs``, an /etc/hosts for that process).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pysky_async import AsyncBskyClient, OAuthApp, OAuthError
from pysky_async.aiohttp_oauth import LoginCookie, oauth_routes
from tests.realnet.pds import PdsServer

from .conftest import client_options, query
from .provider_ui import approve

pytestmark = pytest.mark.anyio
HOST = "client.pysky-async-tests.net"
SHIM = Path(__file__).with_name("dns_shim.cjs")


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Site:
    app: OAuthApp
    cert: Path
    key: Path
    port: int


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    base = f"https://{HOST}:{port}/oauth"
    app = OAuthApp(client_id=f"{base}/client-metadata.json", redirect_uris=("https://app.pysky-async-tests.net/cb",),
                   keys=(OAuthApp.generate_key("k1"),), jwks_uri=f"{base}/jwks.json", client_name="pysky tests")
    return Site(app, cert, key, port)


@pytest.fixture(scope="module")
def confidential_pds(site: Site) -> Iterator[PdsServer]:
    server = PdsServer.start(extra_env={"NODE_EXTRA_CA_CERTS": str(site.cert),
                                        "NODE_OPTIONS": f"--require {SHIM}",
                                        "PYSKY_TEST_HOSTS": f"{HOST}=127.0.0.1"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def metadata_site(site: Site) -> AsyncIterator[list[str]]:
    """The app's metadata and JWKS over https (the library's aiohttp glue); yields the paths fetched."""
    fetched: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        fetched.append(request.path)
        response = await handler(request)
        response.force_close()  # no keep-alive connection left open when the site stops
        return response

    class Configured:
        app = site.app

    web_app = web.Application(middlewares=[record])
    web_app.add_routes(oauth_routes(lambda request: Configured(), LoginCookie("c" * 32)))  # type: ignore[arg-type,return-value]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(site.cert, site.key)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", site.port, ssl_context=context).start()
    try:
        yield fetched
    finally:
        await runner.cleanup()


async def test_private_key_jwt_login_refresh_and_logout(
        site: Site, confidential_pds: PdsServer, metadata_site: list[str], tmp_path: Path) -> None:
    account = confidential_pds.create_account("conf.test", "conf-pass-123")
    options = client_options(confidential_pds, f"sqlite+aiosqlite:///{tmp_path}/svc.sqlite3")
    async with AsyncBskyClient(**options) as bsky:
        # plain http to the local PDS is a development allowance, not implied by a confidential app
        bsky.oauth.configure(site.app)
        with pytest.raises(OAuthError, match="refusing to fetch"):
            await bsky.oauth.start(account.handle)
        bsky.oauth.configure(site.app, allow_http_loopback=True)
        url = await bsky.oauth.start(account.handle)
        assert {"/oauth/client-metadata.json", "/oauth/jwks.json"} <= set(metadata_site)
        login = await bsky.oauth.callback(query(await approve(url, account.handle, account.password)))
        assert login.did == account.did
        user = await bsky.oauth.client_for(login.did)
        ref = await user.create_post("from a confidential client")
        assert ref.uri.startswith(f"at://{account.did}/")
        session = await bsky.oauth.session(login.did)
        refreshed = await bsky.oauth._c.sessions.refresh(login.did, session.access_token)
        assert refreshed.refresh_token != session.refresh_token
        revocations = confidential_pds.path_request_count("/oauth/revoke")
        await bsky.oauth.logout(login.did)
        assert confidential_pds.path_request_count("/oauth/revoke") == revocations + 1


async def test_an_assertion_signed_with_another_key_is_refused(
        site: Site, confidential_pds: PdsServer, metadata_site: list[str], tmp_path: Path) -> None:
    account = confidential_pds.create_account("impostor.test", "conf-pass-123")
    impostor = OAuthApp(client_id=site.app.client_id, redirect_uris=site.app.redirect_uris,
                        keys=(OAuthApp.generate_key("k1"),), jwks_uri=site.app.jwks_uri)
    options = client_options(confidential_pds, f"sqlite+aiosqlite:///{tmp_path}/svc.sqlite3")
    async with AsyncBskyClient(**options) as bsky:
        bsky.oauth.configure(impostor, allow_http_loopback=True)
        with pytest.raises(OAuthError, match="invalid_client") as caught:
            await bsky.oauth.start(account.handle)
        assert caught.value.status_code in (400, 401)
        assert await bsky.store.execute_sql("SELECT state FROM bsky_oauth_state") == []
