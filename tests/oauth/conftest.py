"""OAuth against the reference PDS's own authorization server (the realnet ``pds``).

The PDS serves OAuth over loopback http with two development settings that
tests/realnet's run-pds.mjs already sets by default: ``PDS_HOSTNAME=localhost`` (public URL
and issuer ``http://localhost:<port>``) and ``PDS_DEV_MODE=true`` (an http resource URL is
allowed, SSRF protection off). The app is a loopback client (``OAuthApp.loopback``), which
the provider accepts without fetching any metadata.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from pysky_async import AsyncBskyClient, OAuthApp, OAuthLogin
from tests.realnet.pds import Account, PdsServer

from .provider_ui import approve

REDIRECT_URI = "http://127.0.0.1:8765/oauth/callback"


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@dataclass
class OAuthHarness:
    bsky: AsyncBskyClient
    pds: PdsServer

    async def login(self, account: Account, *, app_state: str | None = None) -> OAuthLogin:
        """The whole login: start, sign in and consent on the PDS, callback."""
        url = await self.bsky.oauth.start(account.handle, app_state=app_state)
        back = await approve(url, account.handle, account.password)
        return await self.bsky.oauth.callback(query(back))


def client_options(pds: PdsServer, database_url: str) -> dict[str, Any]:
    """A service's client: no account of its own; handles resolve on the PDS, DIDs on its PLC."""
    return {"database_url": database_url, "public_host": pds.base_url, "plc_directory": pds.plc_url,
            "auto_migrate": True}


@pytest.fixture
async def oauth(pds: PdsServer, database_url: str) -> AsyncIterator[OAuthHarness]:
    async with AsyncBskyClient(**client_options(pds, database_url)) as bsky:
        bsky.oauth.configure(OAuthApp.loopback(REDIRECT_URI))
        yield OAuthHarness(bsky, pds)
