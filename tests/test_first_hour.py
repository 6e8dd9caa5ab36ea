"""What a newcomer hits in the first hour: settings from the environment, explicit hosts without
an account, stale stored sessions, logout, mistakes that get answers — against the real PDS."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pysky_async import (
    AsyncBskyClient,
    Create,
    External,
    Image,
    InvalidInput,
    InvalidPost,
    LoginFailed,
    NetworkError,
    NotAuthenticated,
    Post,
    UsageError,
    XrpcRequest,
)
from pysky_async._account import Session
from pysky_async._config import ClientConfig
from pysky_async._pagination import Paginator
from pysky_async._session import SessionManager

from .realnet.pds import Account, PdsServer
from .test_cli import run_cli
from .test_fault_proxy import free_port
from .test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def client(pds: PdsServer, account: Account | None, tmp_path: Path, **options: Any) -> AsyncBskyClient:
    credentials: dict[str, Any] = {"username": account.handle, "password": account.password} if account else {}
    options.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path}/first-hour.sqlite3")
    options.setdefault("plc_directory", pds.plc_url)
    return AsyncBskyClient(auth_host=listen_host(pds), **credentials, **options)


async def stored_session(bsky: AsyncBskyClient) -> Session | None:
    """The session saved in the database for a password client's account."""
    assert isinstance(bsky.sessions, SessionManager), "a password client"
    return await bsky.sessions.stored()


def admin_delete_account(pds: PdsServer, did: str) -> None:
    auth = base64.b64encode(f"admin:{pds.admin_password}".encode()).decode()
    request = urllib.request.Request(f"{pds.listen_url}/xrpc/com.atproto.admin.deleteAccount",
                                     data=json.dumps({"did": did}).encode(), method="POST",
                                     headers={"content-type": "application/json", "authorization": f"Basic {auth}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


# ---------------------------------------------------------------- settings

def test_every_deployment_setting_has_an_environment_variable() -> None:
    env = {"PYSKY_AUTH_HOST": "pds.example.com", "PYSKY_PUBLIC_HOST": "http://127.0.0.1:9",
           "PYSKY_PLC_DIRECTORY": "http://localhost:2582", "PYSKY_VIDEO_HOST": "video.example.com",
           "PYSKY_VIDEO_SERVICE_DID": "did:web:video.example.com", "PYSKY_TIMEOUT": "7.5",
           "PYSKY_IMAGE_MAX_BYTES": "2000000", "PYSKY_DEADLINE": "45", "PYSKY_MAX_RESPONSE_BYTES": "1048576",
           "PYSKY_CALL_LOG_MAX_PENDING": "5000"}
    config = ClientConfig.from_options(env=env)
    assert (config.deadline, config.max_response_bytes, config.call_log_max_pending) == (45.0, 1 << 20, 5000)
    assert (config.auth_host, config.public_host, config.plc_directory, config.video_host) == (
        "https://pds.example.com", "http://127.0.0.1:9", "http://localhost:2582", "https://video.example.com")
    assert (config.video_service_did, config.timeout, config.image_max_bytes) == (
        "did:web:video.example.com", 7.5, 2_000_000)
    explicit = ClientConfig.from_options(env=env, auth_host="bsky.social", timeout=3.0)
    assert explicit.auth_host == "https://bsky.social" and explicit.timeout == 3.0, "arguments win"
    defaults = ClientConfig.from_options(env={})
    assert defaults.plc_directory == "https://plc.directory" and defaults.timeout is None
    assert (defaults.deadline, defaults.max_response_bytes, defaults.call_log_max_pending) == (120.0, 16 << 20, 100_000)
    with pytest.raises(InvalidInput, match="PYSKY_TIMEOUT"):
        ClientConfig.from_options(env={"PYSKY_TIMEOUT": "soon"})


async def test_call_log_max_pending_is_a_client_option(tmp_path: Path) -> None:
    async with AsyncBskyClient(database_url=f"sqlite+aiosqlite:///{tmp_path}/c.sqlite3",
                               call_log_max_pending=7) as bsky:
        assert bsky.call_log.max_pending == 7
        with pytest.raises(InvalidInput, match="call_log_max_pending cannot change"):
            bsky.with_options(call_log_max_pending=8)  # type: ignore[call-arg]  # the runtime guard for untyped callers


# ---------------------------------------------------------------- hosts without an account

async def test_an_explicit_host_never_demands_a_login(pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    host = listen_host(pds)
    async with client(pds, None, tmp_path) as anonymous:
        described = await anonymous.get("com.atproto.server.describeServer", hostname=host)
        assert described.did == pds.service_did
    logins = pds.request_count("com.atproto.server.createSession")
    async with client(pds, pds_account, tmp_path) as bsky:
        session = await bsky.get("com.atproto.server.getSession", hostname=host)  # the token goes along
        assert session.did == pds_account.did
    assert pds.request_count("com.atproto.server.createSession") == logins + 1


def test_the_cli_talks_to_auth_host_without_an_account(pds: PdsServer, tmp_path: Path) -> None:
    result = run_cli("--auth-host", listen_host(pds), "get", "com.atproto.server.describeServer",
                     env={"BSKY_SQLITE_FILENAME": str(tmp_path / "cli.sqlite3")})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["did"] == pds.service_did


# ---------------------------------------------------------------- sessions the server no longer knows

async def test_a_stored_session_of_a_deleted_account_is_replaced_by_a_fresh_login(
        pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    async with client(pds, pds_account, tmp_path) as bsky:
        await bsky.login()
    admin_delete_account(pds, pds_account.did)  # the server forgets the account (as after a reset)
    again = pds.create_account(pds_account.handle, pds_account.password)
    for run in range(2):  # and every run after it works, not only the first
        async with client(pds, pds_account, tmp_path) as bsky:
            assert (await bsky.get("com.atproto.server.getSession")).did == again.did, "logged in afresh"
            ref = await bsky.create_record("com.example.note", {"text": f"run {run}"}, validate=False)
            assert ref.uri.startswith(f"at://{again.did}/")


async def test_without_a_password_a_dead_stored_session_is_dropped_with_advice(
        pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    async with client(pds, pds_account, tmp_path) as bsky:
        await bsky.login()
    admin_delete_account(pds, pds_account.did)
    session_only = Account(pds_account.handle, pds_account.did, "", pds_account.email)
    async with client(pds, session_only, tmp_path) as bsky:
        with pytest.raises(NotAuthenticated, match=r"no longer valid.*password"):
            await bsky.create_record("com.example.note", {"text": "x"}, validate=False)
        assert await stored_session(bsky) is None, "dropped, not an error on every run forever"


async def test_logout_ends_the_session_on_the_server_and_here(pds: PdsServer, pds_account: Account,
                                                              tmp_path: Path) -> None:
    async with client(pds, pds_account, tmp_path) as bsky:
        session = await bsky.login()
        await bsky.logout()
        assert not bsky.logged_in and await stored_session(bsky) is None
    with pytest.raises(Exception, match="HTTP 400"):
        pds.xrpc("com.atproto.server.refreshSession", {}, token=session.refresh_jwt)
    assert pds.request_count("com.atproto.server.deleteSession") >= 1


def test_cli_session_show_and_clear(pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    env = {"BSKY_AUTH_USERNAME": pds_account.handle, "BSKY_AUTH_PASSWORD": pds_account.password,
           "PYSKY_AUTH_HOST": listen_host(pds), "BSKY_SQLITE_FILENAME": str(tmp_path / "cli.sqlite3")}
    assert "no stored session" in run_cli("session", "show", env=env).stdout
    assert run_cli("get", "com.atproto.server.getSession", env=env).returncode == 0
    shown = run_cli("session", "show", env=env)
    assert json.loads(shown.stdout)["did"] == pds_account.did
    assert "eyJ" not in shown.stdout, "never the tokens"
    cleared = run_cli("session", "clear", env=env)
    assert "forgot" in cleared.stdout and "no stored session" in run_cli("session", "show", env=env).stdout
    path = run_cli("db", "path", env=env)
    assert path.stdout.strip() == f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"


# ---------------------------------------------------------------- mistakes get answers

async def test_embeds_bluesky_cannot_combine_are_refused_naming_the_conflict(
        pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    photo = Image(data=b"not decoded yet", alt="x")
    with pytest.raises(InvalidPost, match="images and a link card"):
        Post("hi").add(photo).add(External("https://example.com", "Example"))
    with pytest.raises(InvalidPost, match="images and a link card"):
        Post("hi", images=[photo], external=External("https://example.com"))
    async with client(pds, pds_account, tmp_path) as bsky:
        uploads = pds.request_count("com.atproto.repo.uploadBlob")
        with pytest.raises(InvalidPost, match="images and a link card"):  # a markdown image counts too
            await bsky.create_post(post=Post("look ![a photo](photo.jpg)", external=External("https://example.com")))
        assert await bsky.list_records("app.bsky.feed.post").collect() == []
    assert pds.request_count("com.atproto.repo.uploadBlob") == uploads, "nothing sent"


async def test_an_empty_post_is_refused_before_any_request_but_media_needs_no_text(
        pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    async with client(pds, pds_account, tmp_path) as bsky:
        creates = pds.request_count("com.atproto.repo.createRecord")
        for text in ("", "  \n\t "):
            with pytest.raises(InvalidPost, match="the post is empty: give it text"):
                await bsky.create_post(text)
        with pytest.raises(InvalidPost, match="the post is empty"):
            await bsky.create_post(post=Post(" "))
        assert pds.request_count("com.atproto.repo.createRecord") == creates, "nothing was posted"
        card = await bsky.create_post(post=Post("", external=External("https://example.com", "Example")))
        record = await bsky.get_record(card.uri)
        assert record.value.text == "" and record.value.embed.external.uri == "https://example.com"


async def test_repo_is_the_accounts_did_once_known_and_never_null(pds: PdsServer, pds_account: Account,
                                                                    tmp_path: Path) -> None:
    async with client(pds, pds_account, tmp_path) as bsky:
        creates = pds.request_count("com.atproto.repo.createRecord")
        with pytest.raises(NotAuthenticated, match=r"await bsky.login\(\)"):
            await bsky.post("com.atproto.repo.createRecord", repo=bsky.did, collection="com.example.note",
                            record={"text": "x"})
        with pytest.raises(InvalidInput, match="repo is None"):
            await bsky.post("com.atproto.repo.createRecord", repo=None, collection="com.example.note",
                            record={"text": "x"})
        assert pds.request_count("com.atproto.repo.createRecord") == creates
        assert await bsky.get_did() == pds_account.did
        created = await bsky.post("com.atproto.repo.createRecord", repo=bsky.did, collection="com.example.note",
                                  record={"text": "x"})
        assert created.uri.startswith(f"at://{pds_account.did}/com.example.note/")
        assert bsky.handle == pds_account.handle


async def test_resumed_listings_of_two_collections_keep_their_own_cursors(pds: PdsServer, pds_account: Account,
                                                                           tmp_path: Path) -> None:
    async with client(pds, pds_account, tmp_path) as bsky:
        did = await bsky.get_did()
        for collection in ("com.example.a", "com.example.b"):
            await bsky.apply_writes([Create(collection, {"n": n}) for n in range(3)], validate=False)

        def listing(collection: str, restart: bool = False) -> Paginator:
            return bsky.paginate("com.atproto.repo.listRecords", repo=did, collection=collection, limit=2,
                                 reverse=True, resume=True, restart=restart)

        assert len(await listing("com.example.a").collect()) == 3
        assert len(await listing("com.example.b").collect()) == 3, "not 0: collection b has its own cursor"
        finished = listing("com.example.a")
        assert await finished.collect() == [] and finished.finished
        assert len(await listing("com.example.a", restart=True).collect()) == 3


async def test_async_mistakes_say_what_to_do(pds: PdsServer, tmp_path: Path) -> None:
    async with client(pds, None, tmp_path) as bsky:
        with pytest.raises(UsageError, match="async for"):
            await bsky.paginate("com.atproto.sync.listRepos")
        with pytest.raises(UsageError, match="async for"):
            for _ in bsky.paginate("com.atproto.sync.listRepos"):
                pass
        with pytest.raises(InvalidPost, match="create_post\\('Hello'\\)"):
            await bsky.create_post()


def test_with_headers_takes_a_mapping() -> None:
    request = XrpcRequest("GET", "app.bsky.actor.getProfile", "https://pds.example")
    changed = request.with_headers({"atproto-proxy": "did:web:x#y"}, Accept="application/json")
    assert changed.headers == {"atproto-proxy": "did:web:x#y", "Accept": "application/json"}
    assert request.headers == {}, "a new request; the old one is unchanged"


async def test_network_errors_name_host_port_and_reason(tmp_path: Path) -> None:
    port = free_port()
    async with AsyncBskyClient(public_host=f"http://127.0.0.1:{port}", retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/net.sqlite3") as bsky:
        with pytest.raises(NetworkError) as caught:
            await bsky.get("app.bsky.actor.getProfile", actor="alice.test")
    message = str(caught.value)
    assert f"127.0.0.1 port {port}" in message and "refused" in message.lower(), message
    assert "ConnectionKey" not in message


# ---------------------------------------------------------------- storage and identity defaults

async def test_an_in_memory_database_works(pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    async with client(pds, pds_account, tmp_path, database_url=":memory:") as bsky:
        ref = await bsky.create_record("com.example.note", {"text": "in memory"}, validate=False)
        assert (await bsky.get_record(ref.uri)).value.text == "in memory"
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
        assert rows[0][0] >= 3, "login, create and get logged in the same in-memory database"


async def test_the_accounts_own_identity_needs_no_plc_directory(pds: PdsServer, pds_account: Account,
                                                                tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with client(pds, pds_account, tmp_path, plc_directory=nowhere) as bsky:
        session = await bsky.login()
        document = await bsky.resolve_did(session.did)
        assert document["id"] == session.did
        blob = await bsky.upload_blob(b"hello blob", "text/plain")
        await bsky.create_record("com.example.file", {"file": blob}, validate=False)
        assert await bsky.get_blob(session.did, blob["ref"]["$link"]) == b"hello blob"


def test_without_the_media_extra_image_and_video_name_it() -> None:
    code = (
        "import sys; sys.modules['PIL'] = None; sys.modules['av'] = None\n"
        "import pysky_async as p\n"
        "for make in (lambda: p.Image(data=b'x'), lambda: p.Video(data=b'x')):\n"
        "    try:\n        make()\n    except p.MissingDependency as exc:\n        print(exc)\n"
        "print(p.Post('text only').text)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_"))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Pillow" in lines[0] and "PyAV" in lines[1] and all("pysky_async[media]" in line for line in lines[:2])
    assert lines[2] == "text only"


def test_a_client_never_closed_still_writes_its_call_log_and_is_named(pds: PdsServer, tmp_path: Path) -> None:
    database = tmp_path / "unclosed.sqlite3"
    code = (
        "import asyncio, sys\n"
        "from pysky_async import AsyncBskyClient\n"
        "async def main():\n"
        "    bsky = AsyncBskyClient(database_url=sys.argv[1])\n"
        "    for _ in range(3):\n"
        "        await bsky.get('com.atproto.server.describeServer', hostname=sys.argv[2])\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-c", code,
                             f"sqlite+aiosqlite:///{database}", listen_host(pds)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ResourceWarning: unclosed <AsyncBskyClient no account" in result.stderr, result.stderr
    import sqlite3

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT endpoint FROM bsky_api_call_log").fetchall()
    assert rows == [("com.atproto.server.describeServer",)] * 3


async def test_a_refused_password_is_not_tried_again_on_every_call(pds_short_ttl: PdsServer,
                                                                   short_ttl_account: Account, tmp_path: Path) -> None:
    """The refresh token is revoked and the password has changed: one login attempt, then the same
    error at once on every call (30 refused logins in 5 minutes lock the account), until login()."""
    async with client(pds_short_ttl, short_ttl_account, tmp_path) as bsky:
        session = await bsky.login()
    pds_short_ttl.xrpc("com.atproto.server.deleteSession", {}, token=session.refresh_jwt)  # revoked
    await asyncio.sleep(3.5)  # and the access token has expired
    wrong = Account(short_ttl_account.handle, short_ttl_account.did, "not-the-password", short_ttl_account.email)
    logins = pds_short_ttl.request_count("com.atproto.server.createSession")
    async with client(pds_short_ttl, wrong, tmp_path) as bsky:
        for _ in range(5):
            with pytest.raises(LoginFailed, match="refused the login"):
                await bsky.get("com.atproto.server.getSession")
        assert pds_short_ttl.request_count("com.atproto.server.createSession") == logins + 1
        # the stored session was made with another password: this client leaves it alone (a client
        # with the right password finds it dead and replaces it), see test_session_unit
        assert await stored_session(bsky) is not None
        with pytest.raises(LoginFailed):
            await bsky.login()  # an explicit login asks the server again
    assert pds_short_ttl.request_count("com.atproto.server.createSession") == logins + 2
