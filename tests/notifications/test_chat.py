"""``bsky.chat`` through the real reference PDS, which proxies to a fake chat service that checks
every service token (tests/realnet/fake_chat_service.py): app-password and OAuth (DPoP) users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pysky_async import APIError, AsyncBskyClient, OAuthApp
from pysky_async.lex.chat.bsky.convo import LogBeginConvo, LogCreateMessage, MessageView
from tests.realnet.fake_chat_service import FakeChatService
from tests.realnet.pds import Account, PdsServer

from ..oauth.conftest import REDIRECT_URI, query
from ..oauth.provider_ui import approve
from ..realnet.fixtures import _new_account

pytestmark = pytest.mark.anyio


@pytest.fixture
async def chat_service(pds: PdsServer) -> AsyncIterator[FakeChatService]:
    async with FakeChatService(plc_url=pds.plc_url) as fake:
        yield fake


def user(pds: PdsServer, account: Account, database_url: str, password: str | None = None) -> AsyncBskyClient:
    return AsyncBskyClient(username=account.handle, password=password or account.password, auth_host=pds.listen_url,
                           plc_directory=pds.plc_url, database_url=database_url, auto_migrate=True)


async def test_direct_messages_through_the_pds_and_a_log_that_resumes(
        pds: PdsServer, chat_service: FakeChatService, tmp_path: Path) -> None:
    alice, bob = _new_account(pds), _new_account(pds)
    bob_db = f"sqlite+aiosqlite:///{tmp_path}/bob.sqlite3"
    async with user(pds, alice, f"sqlite+aiosqlite:///{tmp_path}/alice.sqlite3") as a:
        sent = await a.chat.via(chat_service.proxy).send_to(bob.handle, "hi bob")
        assert isinstance(sent, MessageView) and sent.text == "hi bob" and sent.sender.did == alice.did
    async with user(pds, bob, bob_db) as b:
        chat = b.chat.via(chat_service.proxy)
        [convo] = await chat.list_convos().collect()
        assert {m.handle for m in convo.members} == {alice.handle, bob.handle}
        assert convo.unread_count == 1 and isinstance(convo.last_message, MessageView)
        assert convo.id == (await chat.convo_with(alice.did)).id, "the same direct conversation"
        await chat.send(convo.id, "hi alice")
        texts = [m.text async for m in chat.messages(convo.id) if isinstance(m, MessageView)]
        assert texts == ["hi alice", "hi bob"], "newest first"
        await chat.mark_read(convo.id)
        assert (await chat.list_convos(read_state="unread").collect())[0].unread_count == 0
        first = await chat.log().collect()  # a first run replays the log from its start
        assert [type(e) for e in first] == [LogBeginConvo, LogCreateMessage, LogCreateMessage]
        assert await chat.log().collect() == [], "nothing new"
    async with user(pds, alice, f"sqlite+aiosqlite:///{tmp_path}/alice.sqlite3") as a:
        await a.chat.via(chat_service.proxy).send_to(bob.handle, "are you there?")
    async with user(pds, bob, bob_db) as b:  # a restart: the cursor is in the database
        [new] = await b.chat.via(chat_service.proxy).log().collect()
        assert isinstance(new, LogCreateMessage) and isinstance(new.message, MessageView)
        assert new.message.text == "are you there?"
    assert {did for _, did in chat_service.requests} == {alice.did, bob.did}, "signed for each user by the PDS"
    assert chat_service.rejected_tokens == []


async def test_the_default_service_is_bluesky_chat_through_the_pds(pds: PdsServer, tmp_path: Path) -> None:
    account = _new_account(pds)
    async with user(pds, account, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        assert bsky.chat.service == "did:web:api.bsky.chat#bsky_chat"
        request = bsky.chat._request("GET", "chat.bsky.convo.listConvos")
        assert request.headers["atproto-proxy"] == "did:web:api.bsky.chat#bsky_chat"


async def test_an_oauth_user_chats_with_dpop_through_the_pds(
        pds: PdsServer, chat_service: FakeChatService, tmp_path: Path) -> None:
    alice, bob = _new_account(pds), _new_account(pds)
    async with AsyncBskyClient(database_url=f"sqlite+aiosqlite:///{tmp_path}/svc.sqlite3", public_host=pds.base_url,
                               plc_directory=pds.plc_url, auto_migrate=True) as service:
        service.oauth.configure(OAuthApp.loopback(REDIRECT_URI, scope="atproto transition:generic "
                                                                      "transition:chat.bsky"))
        url = await service.oauth.start(alice.handle)
        login = await service.oauth.callback(query(await approve(url, alice.handle, alice.password)))
        oauth_user = await service.oauth.client_for(login.did)
        sent = await oauth_user.chat.via(chat_service.proxy).send_to(bob.did, "from an OAuth app")
        assert sent.sender.did == alice.did
        await service.flush_call_log()
        rows = await service.store.execute_sql(
            "SELECT hostname FROM bsky_api_call_log WHERE endpoint = 'chat.bsky.convo.sendMessage'")
    assert [r[0] for r in rows] == [pds.base_url.split("://")[1]], "through the PDS"
    assert ("chat.bsky.convo.sendMessage", alice.did) in chat_service.requests


async def test_an_app_password_without_dm_access_is_told_what_to_do(
        pds: PdsServer, chat_service: FakeChatService, tmp_path: Path) -> None:
    alice, bob = _new_account(pds), _new_account(pds)
    async with user(pds, alice, f"sqlite+aiosqlite:///{tmp_path}/a.sqlite3") as owner:
        made = await owner.post("com.atproto.server.createAppPassword", name="bot", privileged=False)
        privileged = await owner.post("com.atproto.server.createAppPassword", name="dm-bot", privileged=True)
    refreshes = pds.request_count("com.atproto.server.refreshSession")
    async with user(pds, alice, f"sqlite+aiosqlite:///{tmp_path}/b.sqlite3", password=made.password) as bot:
        with pytest.raises(APIError, match=r"Bad token method.*Allow access to your direct messages") as refused:
            await bot.chat.via(chat_service.proxy).send_to(bob.did, "hi")
        assert isinstance(refused.value.__cause__, APIError)
        with pytest.raises(APIError, match=r"transition:chat\.bsky"):
            await bot.chat.via(chat_service.proxy).list_convos().collect()
    assert pds.request_count("com.atproto.server.refreshSession") == refreshes, "a refusal, not a stale session"
    async with user(pds, alice, f"sqlite+aiosqlite:///{tmp_path}/c.sqlite3", password=privileged.password) as bot:
        assert (await bot.chat.via(chat_service.proxy).send_to(bob.did, "hi")).text == "hi"


async def test_an_oauth_login_without_the_chat_scope_is_told_what_to_do(
        pds: PdsServer, chat_service: FakeChatService, tmp_path: Path) -> None:
    alice, bob = _new_account(pds), _new_account(pds)
    async with AsyncBskyClient(database_url=f"sqlite+aiosqlite:///{tmp_path}/svc.sqlite3", public_host=pds.base_url,
                               plc_directory=pds.plc_url, auto_migrate=True) as service:
        service.oauth.configure(OAuthApp.loopback(REDIRECT_URI))  # atproto transition:generic
        url = await service.oauth.start(alice.handle)
        login = await service.oauth.callback(query(await approve(url, alice.handle, alice.password)))
        oauth_user = await service.oauth.client_for(login.did)
        with pytest.raises(APIError, match=r"transition:chat\.bsky"):
            await oauth_user.chat.via(chat_service.proxy).send_to(bob.did, "hi")
    assert chat_service.requests == []
