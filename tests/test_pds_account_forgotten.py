"""A running service after the server forgets its account (deleted and re-created, a server
reset): against the real reference PDS."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest

from pysky_async import Forbidden

from .realnet.pds import Account, PdsServer
from .test_pds_sessions import client

pytestmark = pytest.mark.anyio


def delete_and_recreate(pds: PdsServer, account: Account) -> Account:
    """The operator deletes the account and creates it again (same handle and password)."""
    auth = base64.b64encode(f"admin:{pds.admin_password}".encode()).decode()
    request = urllib.request.Request(f"{pds.listen_url}/xrpc/com.atproto.admin.deleteAccount",
                                     data=json.dumps({"did": account.did}).encode(), method="POST",
                                     headers={"content-type": "application/json", "authorization": f"Basic {auth}"})
    with urllib.request.urlopen(request, timeout=30):
        pass
    return pds.create_account(account.handle, account.password)


async def test_a_write_after_the_account_was_recreated_logs_in_again_and_goes_through(
        pds: PdsServer, pds_account: Account, database_url: str) -> None:
    async with client(pds, pds_account, database_url) as bsky:
        await bsky.records.put("app.bsky.actor.profile", "self", {"displayName": "before"})
        again = delete_and_recreate(pds, pds_account)
        ref = await bsky.records.put("app.bsky.actor.profile", "self", {"displayName": "after"})
        assert bsky.did == again.did and ref.uri.startswith(f"at://{again.did}/")


async def test_a_read_after_the_account_was_recreated_is_sent_again_for_the_new_account(
        pds: PdsServer, pds_account: Account, database_url: str) -> None:
    async with client(pds, pds_account, database_url) as bsky:
        await bsky.login()
        again = delete_and_recreate(pds, pds_account)
        assert (await bsky.get("com.atproto.server.getSession")).raw["did"] == again.did


async def test_a_create_without_record_key_is_not_sent_twice_and_says_so(
        pds: PdsServer, pds_account: Account, database_url: str) -> None:
    async with client(pds, pds_account, database_url) as bsky:
        await bsky.login()
        again = delete_and_recreate(pds, pds_account)
        record = {"$type": "app.bsky.feed.post", "text": "once", "createdAt": "2026-12-04T00:00:00Z"}
        with pytest.raises(Forbidden, match=r"logged in again .* did not send this com.atproto.repo.createRecord"):
            await bsky.post("com.atproto.repo.createRecord",
                            data={"repo": pds_account.did, "collection": "app.bsky.feed.post", "record": record})
        assert bsky.did == again.did
        listed = await bsky.get("com.atproto.repo.listRecords", repo=again.did, collection="app.bsky.feed.post")
        assert listed.raw["records"] == [], "nothing was posted behind the caller's back"
        created = await bsky.post("com.atproto.repo.createRecord",  # the next call works
                                  data={"repo": again.did, "collection": "app.bsky.feed.post", "record": record})
        assert created.raw["uri"].startswith(f"at://{again.did}/")
