"""The bot example's stream-driven mode: mentions from the dev-env PDS's firehose, answered once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from examples import bot

from pysky_async import FirehoseSource

from ..realnet.devenv import DevEnv
from ..test_graph_and_bot import client, post_mention
from .workload import wait_for

pytestmark = pytest.mark.anyio


async def test_stream_bot_answers_each_mention_once_across_restarts(devenv: DevEnv, tmp_path: Path) -> None:
    bot_account, _ = devenv.new_account("b")
    fan, fan_token = devenv.new_account("f")
    database_url = f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3"
    replied: list[str] = []

    def mention(text: str) -> str:
        return post_mention(devenv, fan, fan_token, bot_account, text)

    async def run_until(expected: set[str], *, forget_cursor: bool = False) -> None:
        async with client(devenv, bot_account, database_url) as bsky:
            if forget_cursor:
                await bsky.store.execute_sql("DELETE FROM bsky_stream_cursor")
            consumer = await bot.stream_mentions(bsky, FirehoseSource(devenv.pds_listen_url), start_cursor=0)
            task = asyncio.create_task(consumer.run())

            async def poll() -> None:
                while True:
                    posts = await bsky.list_records("app.bsky.feed.post").collect()
                    replied[:] = [p.value.reply.parent.uri for p in posts]
                    await asyncio.sleep(0.3)

            poller = asyncio.create_task(poll())
            try:
                await wait_for(lambda: set(replied) >= expected)
                await asyncio.sleep(1.0)  # room for a wrong second reply
            finally:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
                await consumer.stop()
                await task
            assert consumer.stats.handler_errors == 0

    first = mention("hello")
    await run_until({first})
    second = mention("again")
    await run_until({first, second})  # a restart resumes from the stored cursor
    await run_until({first, second}, forget_cursor=True)  # even a lost cursor makes no second reply
    assert sorted(replied) == sorted([first, second])
