"""examples/feed_generator.py on dev-env: the firehose of the real PDS fills the keyword index,
a deleted post leaves it, and the AppView's getFeed pages through it (newest first) for a viewer;
with a backfill, the posts written before the example started are in the feed too, each once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from examples import feed_generator as example

from pysky_async import AsyncBskyClient, publish_feed

from ..realnet.devenv import DevEnv
from .test_devenv_feed import client, loopback_socket, no_credentials_from_env, serve

__all__ = ["no_credentials_from_env"]  # the autouse fixture, for this module too
pytestmark = pytest.mark.anyio


async def indexed(bsky: AsyncBskyClient) -> set[str]:
    return {row[0] for row in await bsky.store.execute_sql(f"SELECT uri FROM {example.TABLE}")}


async def until_indexed(bsky: AsyncBskyClient, expected: set[str]) -> None:
    for _ in range(600):  # until the index caught up (the test's timeout bounds it)
        if await indexed(bsky) == expected:
            return
        await asyncio.sleep(0.1)
    assert await indexed(bsky) == expected


async def feed_of(reader: AsyncBskyClient, feed: str) -> list[str]:
    """Every post of ``feed`` as the AppView serves it, page by page (one post a page)."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"feed": feed, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await reader.get("app.bsky.feed.getFeed", params=params)).raw
        seen += [item["post"]["uri"] for item in page["feed"]]
        cursor = page.get("cursor")
        if not cursor:
            break
    return seen


async def test_the_example_indexes_the_firehose_and_serves_the_feed(devenv: DevEnv, tmp_path: Path) -> None:
    publisher, _ = devenv.new_account("pub")
    author, _ = devenv.new_account("auth")
    viewer, _ = devenv.new_account("view")
    sock = loopback_socket()
    did = f"did:web:localhost%3A{sock.getsockname()[1]}"
    async with client(devenv, publisher, tmp_path, "feedgen") as bsky, \
            client(devenv, author, tmp_path, "author") as writer, \
            client(devenv, viewer, tmp_path, "viewer") as reader:
        settings = example.Settings(service_did=did, publisher_did=publisher.did, rkey="pysky",
                                    keyword="PySky", firehose=devenv.pds_listen_url, start_cursor=0)
        service = await example.build(bsky, settings)
        async with example.running(service) as app, serve(app, sock):
            kept = [(await writer.create_post(f"#{n} about pysky")).uri for n in range(3)]
            await writer.create_post("nothing to see here")
            gone = (await writer.create_post("pysky, deleted soon")).uri
            await writer.delete_record(gone)
            await until_indexed(bsky, set(kept))

            await publish_feed(bsky, "pysky", did=did, display_name="#pysky")
            devenv.process_all()
            seen, cursor = [], None
            for _ in range(3):
                page = (await reader.get("app.bsky.feed.getFeed", feed=service.uri, limit=2,
                                         **({"cursor": cursor} if cursor else {}))).raw
                seen += [item["post"]["uri"] for item in page["feed"]]
                assert all(item["post"]["author"]["did"] == author.did for item in page["feed"])
                cursor = page.get("cursor")
                if not cursor:
                    break
            assert seen == kept[::-1]  # newest first, each once, across pages
        assert service.follow.consumer.cursor is not None  # stopped with its cursor committed


async def test_the_example_backfills_posts_written_before_it_started(devenv: DevEnv, tmp_path: Path) -> None:
    publisher, _ = devenv.new_account("pub")
    author, _ = devenv.new_account("early")
    viewer, _ = devenv.new_account("view")
    sock = loopback_socket()
    did = f"did:web:localhost%3A{sock.getsockname()[1]}"
    async with client(devenv, publisher, tmp_path, "feedgen") as bsky, \
            client(devenv, author, tmp_path, "author") as writer, \
            client(devenv, viewer, tmp_path, "viewer") as reader:
        before = [(await writer.create_post(f"#{n} an Earlybird post")).uri for n in range(3)]
        await writer.create_post("nothing to see here")
        await writer.delete_record((await writer.create_post("earlybird, deleted before the start")).uri)
        settings = example.Settings(service_did=did, publisher_did=publisher.did, rkey="early",
                                    keyword="earlybird", firehose=devenv.pds_listen_url, backfill=None)
        service = await example.build(bsky, settings)  # a fresh feed: live from now, every repo of the PDS backfilled
        async with example.running(service) as app, serve(app, sock):
            await until_indexed(bsky, set(before))

            after = (await writer.create_post("earlybird, live")).uri
            await writer.delete_record(before[0])
            await until_indexed(bsky, {after, *before[1:]})

            await publish_feed(bsky, "early", did=did, display_name="#earlybird")
            devenv.process_all()
            assert await feed_of(reader, service.uri) == [after, before[2], before[1]]  # newest first, each once
        assert service.follow.backfill.stats.failed == {}
