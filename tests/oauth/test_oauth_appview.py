"""An OAuth user reads the AppView through their PDS (``atproto-proxy``): the real bsky
AppView of dev-env does not take DPoP tokens, so the call must go via the PDS."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from pysky_async import AsyncBskyClient, OAuthApp
from tests.realnet.devenv import DevEnv

from .conftest import REDIRECT_URI, query
from .provider_ui import approve

pytestmark = pytest.mark.anyio


async def test_oauth_user_posts_and_reads_the_appview_through_the_pds(devenv: DevEnv, tmp_path: object) -> None:
    account, _ = devenv.new_account("o")
    async with AsyncBskyClient(database_url=f"sqlite+aiosqlite:///{tmp_path}/svc.sqlite3", public_host=devenv.pds_url,
                               plc_directory=devenv.plc_url) as bsky:
        bsky.oauth.configure(OAuthApp.loopback(REDIRECT_URI), appview=f"{devenv.appview_did}#bsky_appview")
        url = await bsky.oauth.start(account.handle)
        login = await bsky.oauth.callback(query(await approve(url, account.handle, account.password)))
        user = await bsky.oauth.client_for(login.did)
        ref = await user.create_post("hello AppView, from OAuth")
        devenv.process_all()
        feed = await user.get("app.bsky.feed.getAuthorFeed", actor=login.did)
        assert [item.post.uri for item in feed.feed] == [ref.uri]
        profile = await user.get("app.bsky.actor.getProfile", actor=login.did)
        assert profile.handle == account.handle
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql(
            "SELECT hostname FROM bsky_api_call_log WHERE endpoint = 'app.bsky.feed.getAuthorFeed'")
        assert [row[0] for row in rows] == [urlsplit(devenv.pds_url).netloc]
