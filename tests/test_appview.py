"""The library against a real Bluesky AppView: ``@atproto/dev-env`` (PLC + PDS + the bsky AppView
+ ozone on PostgreSQL, see tests/realnet/devenv.py), both through the PDS (which proxies
``app.bsky.*`` to the AppView) and on the AppView directly, unauthenticated.

Records are written to the PDS; ``devenv.process_all()`` waits until the AppView has indexed them.
Every test makes its own accounts (random handles), so tests do not see each other's data.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pysky_async import APIError, AsyncBskyClient, Create

from .realnet.devenv import DevEnv
from .realnet.pds import Account

pytestmark = pytest.mark.anyio

N_FOLLOWS = 160
N_POSTS = 120


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module-scoped async fixture below can run on it."""
    return "asyncio"


def iso_now() -> str:
    """RFC 3339 with milliseconds and ``Z``, as the AppView expects for ``createdAt``."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def authed(devenv: DevEnv, account: Account, database_url: str) -> AsyncBskyClient:
    """Logged in on the PDS (by IP); calls then go to the PDS the DID document names
    (``http://localhost:<port>``), which proxies app.bsky.* to the AppView."""
    return AsyncBskyClient(username=account.handle, password=account.password,
                           auth_host=devenv.pds_listen_url, database_url=database_url,
                           plc_directory=devenv.plc_url, auto_migrate=True)


def public(devenv: DevEnv, database_url: str) -> AsyncBskyClient:
    """No credentials: queries go to ``public_host``, the AppView itself."""
    return AsyncBskyClient(public_host=devenv.appview_url, database_url=database_url,
                           plc_directory=devenv.plc_url, auto_migrate=True)


@pytest.fixture(autouse=True)
def no_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``public()`` must really be unauthenticated, whatever the caller's shell exports."""
    for name in ("BSKY_AUTH_USERNAME", "BSKY_AUTH_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


async def count_calls(bsky: AsyncBskyClient, endpoint: str) -> int:
    await bsky.flush_call_log()
    rows = await bsky.store.execute_sql(
        f"SELECT count(*) FROM bsky_api_call_log WHERE endpoint='{endpoint}'")
    return int(rows[0][0])


async def call_log(bsky: AsyncBskyClient, endpoint: str) -> list[Any]:
    await bsky.flush_call_log()
    return await bsky.store.execute_sql(
        "SELECT hostname, cursor_passed, cursor_received, http_status_code FROM bsky_api_call_log "
        f"WHERE endpoint='{endpoint}' ORDER BY id")


# --------------------------------------------------------------------------- follow graph


@dataclass(frozen=True)
class FollowGraph:
    main: Account
    others: tuple[Account, ...]
    """Each of them follows ``main``, and ``main`` follows each of them."""


@pytest.fixture(scope="module")
async def follow_graph(devenv: DevEnv, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FollowGraph]:
    """A main account and N_FOLLOWS accounts that follow it and that it follows (read-only: only
    the follow pagination tests use it). Accounts and their follows of ``main`` are made with
    plain XRPC calls (fast); ``main``'s follows with the library's ``apply_writes``."""
    main, _ = devenv.new_account("main")

    def follower(_: int) -> Account:
        account, token = devenv.new_account("f")
        devenv.xrpc("com.atproto.repo.createRecord", {
            "repo": account.did, "collection": "app.bsky.graph.follow",
            "record": {"$type": "app.bsky.graph.follow", "subject": main.did, "createdAt": iso_now()},
        }, token=token)
        return account

    with ThreadPoolExecutor(2) as pool:
        others = tuple(pool.map(follower, range(N_FOLLOWS)))
    database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('graph')}/graph.sqlite3"
    async with authed(devenv, main, database_url) as bsky:
        result = await bsky.apply_writes(
            [Create("app.bsky.graph.follow", {"subject": a.did, "createdAt": iso_now()}) for a in others])
        assert len(result.results) == N_FOLLOWS
    devenv.process_all()
    yield FollowGraph(main, others)


@pytest.mark.parametrize("via", ["pds", "appview"])
async def test_get_follows_and_followers_paginate_over_all_160(
        devenv: DevEnv, follow_graph: FollowGraph, via: str, tmp_path: Path) -> None:
    main = follow_graph.main
    expected = {a.did for a in follow_graph.others}
    assert len(expected) == N_FOLLOWS
    database_url = f"sqlite+aiosqlite:///{tmp_path}/follows.sqlite3"
    bsky = authed(devenv, main, database_url) if via == "pds" else public(devenv, database_url)
    host = (devenv.pds_url if via == "pds" else devenv.appview_url).split("://", 1)[1]  # logged without scheme
    async with bsky:
        for nsid, field in (("app.bsky.graph.getFollows", "follows"), ("app.bsky.graph.getFollowers", "followers")):
            actors = [f async for f in bsky.paginate(nsid, actor=main.did, limit=50)]
            dids = [a.did for a in actors]
            assert len(dids) == N_FOLLOWS, f"{nsid}: {len(dids)} items"
            assert set(dids) == expected, nsid
            assert all(a.handle.endswith(".test") for a in actors)

            pages = [page async for page in bsky.paginate(nsid, actor=main.did, limit=50).pages()]
            sizes = [len(page.raw[field]) for page in pages]
            assert sum(sizes) == N_FOLLOWS and max(sizes) == 50 and len(pages) >= 4, sizes
            assert all(page.raw["subject"]["did"] == main.did for page in pages)

            log = await call_log(bsky, nsid)
            assert len(log) == 2 * len(pages)  # two identical walks
            assert {row.hostname for row in log} == {host}, log
            assert all(row.http_status_code == 200 for row in log)
            # each page was asked for with the cursor of the page before
            walk = log[: len(pages)]
            assert walk[0].cursor_passed is None
            assert [row.cursor_passed for row in walk[1:]] == [row.cursor_received for row in walk[:-1]]


# --------------------------------------------------------------------------- searchPosts


async def test_search_posts_paginates_over_all_120(devenv: DevEnv, tmp_path: Path) -> None:
    """dev-env's AppView has no search service: searchPosts falls back to the dataplane's
    ``post.text LIKE '%q%'`` (case-sensitive substring match), paginated by a
    (sortAt, cid) keyset -- a real cursor, so pagination is exercised. A random word
    after "needle" keeps other tests' posts out."""
    author, _ = devenv.new_account("s")
    word = f"needle{secrets.token_hex(4)}"
    database_url = f"sqlite+aiosqlite:///{tmp_path}/search.sqlite3"
    async with authed(devenv, author, database_url) as bsky:
        result = await bsky.apply_writes(
            [Create("app.bsky.feed.post", {"text": f"{word} {n}", "createdAt": iso_now()}) for n in range(N_POSTS)])
        created = {r["uri"] for r in result.results}
        assert len(created) == N_POSTS
    devenv.process_all()
    expected_texts = {f"{word} {n}" for n in range(N_POSTS)}
    for bsky in (authed(devenv, author, database_url), public(devenv, database_url)):
        async with bsky:
            posts = [p async for p in bsky.paginate("app.bsky.feed.searchPosts", q=word, limit=25)]
            uris = [p.uri for p in posts]
            assert len(uris) == N_POSTS and set(uris) == created
            assert {p.record.text for p in posts} == expected_texts
            assert {p.author.did for p in posts} == {author.did}
            pages = [page async for page in bsky.paginate("app.bsky.feed.searchPosts", q=word, limit=25).pages()]
            sizes = [len(page.raw["posts"]) for page in pages]
            assert sum(sizes) == N_POSTS and max(sizes) <= 25 and len(pages) >= 5, sizes


# --------------------------------------------------------------------------- getProfile cache


async def test_get_user_profile_serves_handle_and_did_from_one_call(devenv: DevEnv, database_url: str) -> None:
    account, _ = devenv.new_account("p")
    async with authed(devenv, account, database_url) as bsky:
        await bsky.create_record("app.bsky.actor.profile",
                                 {"displayName": "Cached Carol", "description": "first"}, rkey="self")
        devenv.process_all()

        by_handle = await bsky.get_user_profile(account.handle)
        by_did = await bsky.get_user_profile(account.did)
        again = await bsky.get_user_profile(account.handle)
        shouted = await bsky.get_user_profile("@" + account.handle.upper())  # handles are case-insensitive
        assert by_handle.did == by_did.did == again.did == shouted.did == account.did
        assert by_handle.displayName == by_did.displayName == again.displayName == "Cached Carol"
        assert await count_calls(bsky, "app.bsky.actor.getProfile") == 1

        rows = await bsky.store.execute_sql(
            "SELECT did, handle, display_name, description, error FROM bsky_user_profile")
        assert [tuple(r) for r in rows] == [(account.did, account.handle, "Cached Carol", "first", None)]

        # the cache does not see the change until a forced remote call
        await bsky.put_record("app.bsky.actor.profile", "self",
                              {"displayName": "Renamed Carol", "description": "second"})
        devenv.process_all()
        assert (await bsky.get_user_profile(account.did)).displayName == "Cached Carol"
        assert await count_calls(bsky, "app.bsky.actor.getProfile") == 1
        fresh = await bsky.get_user_profile(account.did, force_remote_call=True)
        assert fresh.displayName == "Renamed Carol"
        assert await count_calls(bsky, "app.bsky.actor.getProfile") == 2
        rows = await bsky.store.execute_sql("SELECT display_name, description FROM bsky_user_profile")
        assert [tuple(r) for r in rows] == [("Renamed Carol", "second")]
        assert (await bsky.get_user_profile(account.handle)).displayName == "Renamed Carol"
        assert await count_calls(bsky, "app.bsky.actor.getProfile") == 2


def settle_handle(devenv: DevEnv, did: str, handle: str, token: str) -> None:
    """Make sure the AppView shows ``did`` with ``handle``, working around a race in the
    AppView's indexer (bsky ``indexHandle``, seen in ~1 of 12 runs): when B's identity event
    (B claims H) is indexed concurrently with A's (A moved from H to H2), the "handle contention"
    step can null A's handle *after* A was set to H2 (it updates by DID, without re-checking the
    handle), and A then shows as ``handle.invalid`` until its next identity event. Re-sending
    A's updateHandle emits that event."""
    for _ in range(5):
        shown = devenv.xrpc("app.bsky.actor.getProfile", host=devenv.appview_url, params={"actor": did})
        if shown["handle"] == handle:
            return
        devenv.xrpc("com.atproto.identity.updateHandle", {"handle": handle}, token=token)
        devenv.process_all()
    raise AssertionError(f"the AppView still shows {did} as {shown['handle']!r}, not {handle!r}")


async def test_handle_moved_to_another_did(devenv: DevEnv, database_url: str) -> None:
    a, token_a = devenv.new_account("a")
    b, token_b = devenv.new_account("b")
    handle = a.handle
    devenv.process_all()
    async with public(devenv, database_url) as bsky:
        assert (await bsky.get_user_profile(handle)).did == a.did
        assert (await bsky.get_user_profile(b.did)).handle == b.handle

        new_a_handle = f"moved{secrets.token_hex(4)}.test"
        devenv.xrpc("com.atproto.identity.updateHandle", {"handle": new_a_handle}, token=token_a)
        devenv.xrpc("com.atproto.identity.updateHandle", {"handle": handle}, token=token_b)
        devenv.process_all()
        settle_handle(devenv, a.did, new_a_handle, token_a)
        settle_handle(devenv, b.did, handle, token_b)

        profile_b = await bsky.get_user_profile(b.did, force_remote_call=True)
        assert profile_b.did == b.did and profile_b.handle == handle
        rows = await bsky.store.execute_sql(f"SELECT did FROM bsky_user_profile WHERE handle = '{handle}'")
        assert [r[0] for r in rows] == [b.did]
        calls = await count_calls(bsky, "app.bsky.actor.getProfile")
        assert (await bsky.get_user_profile(handle)).did == b.did
        assert await count_calls(bsky, "app.bsky.actor.getProfile") == calls  # from the cache

        # A's row lost the handle; a refresh gives it its new one
        rows = await bsky.store.execute_sql(f"SELECT handle FROM bsky_user_profile WHERE did = '{a.did}'")
        assert [r[0] for r in rows] == [None]
        assert (await bsky.get_user_profile(a.did, force_remote_call=True)).handle == new_a_handle
        assert (await bsky.get_user_profile(new_a_handle)).did == a.did
        rows = await bsky.store.execute_sql("SELECT did, handle FROM bsky_user_profile ORDER BY handle")
        assert sorted(tuple(r) for r in rows) == sorted([(a.did, new_a_handle), (b.did, handle)])


async def test_taken_down_account_raises_and_records_the_error(devenv: DevEnv, database_url: str) -> None:
    account, _ = devenv.new_account("t")
    viewer, _ = devenv.new_account("v")
    devenv.process_all()
    async with authed(devenv, viewer, database_url) as bsky:
        assert (await bsky.get_user_profile(account.did)).handle == account.handle

        # the PDS takes the account down; the AppView learns it from the PDS's #account event
        devenv.xrpc("com.atproto.admin.updateSubjectStatus", {
            "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": account.did},
            "takedown": {"applied": True, "ref": "pysky-test"},
        }, admin=True)
        devenv.process_all()

        with pytest.raises(APIError) as raised:
            await bsky.get_user_profile(account.did, force_remote_call=True)
        assert raised.value.status_code == 400 and raised.value.error == "AccountTakedown", raised.value
        rows = await bsky.store.execute_sql(
            f"SELECT handle, error FROM bsky_user_profile WHERE did = '{account.did}'")
        assert len(rows) == 1 and rows[0].handle == account.handle
        assert rows[0].error is not None and rows[0].error.startswith("AccountTakedown"), rows

        # a row with an error is not served from the cache: by handle or DID, it asks again
        calls = await count_calls(bsky, "app.bsky.actor.getProfile")
        for actor in (account.handle, account.did):
            with pytest.raises(APIError) as raised:
                await bsky.get_user_profile(actor)
            assert raised.value.error == "AccountTakedown"
        assert await count_calls(bsky, "app.bsky.actor.getProfile") == calls + 2


async def test_deleted_account_raises_and_records_the_error(devenv: DevEnv, database_url: str) -> None:
    account, _ = devenv.new_account("d")
    devenv.process_all()
    async with public(devenv, database_url) as bsky:
        assert (await bsky.get_user_profile(account.handle)).did == account.did
        devenv.xrpc("com.atproto.admin.deleteAccount", {"did": account.did}, admin=True)
        devenv.process_all()
        with pytest.raises(APIError) as raised:
            await bsky.get_user_profile(account.did, force_remote_call=True)
        assert raised.value.status_code == 400, raised.value
        rows = await bsky.store.execute_sql(f"SELECT error FROM bsky_user_profile WHERE did = '{account.did}'")
        assert len(rows) == 1 and rows[0].error, rows
        assert "not found" in rows[0].error.lower(), rows
