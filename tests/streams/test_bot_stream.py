"""The bot example's stream mode: a mention on the dev-env PDS's firehose starts a pass at once
(the poll interval here is an hour), answered once through ``bsky.notifications``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from examples import bot

from pysky_async import FirehoseSource

from ..realnet.devenv import DevEnv
from ..test_graph_and_bot import client, post_mention
from .workload import wait_for

pytestmark = pytest.mark.anyio


async def test_stream_bot_answers_each_mention_once_across_restarts(devenv: DevEnv, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    bot_account, _ = devenv.new_account("b")
    fan, fan_token = devenv.new_account("f")
    database_url = f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3"
    caplog.set_level(logging.INFO, logger="bot")
    replied: list[str] = []

    def passes() -> int:
        return sum("notifications: pass" in r.message for r in caplog.records)

    async def run_until(mention_text: str | None, expected: set[str]) -> str | None:
        options: dict[str, Any] = {"username": bot_account.handle, "password": bot_account.password,
                   "auth_host": devenv.pds_listen_url, "plc_directory": devenv.plc_url, "database_url": database_url}
        before = passes()
        task = asyncio.create_task(bot.main(poll_interval=3600, stream=FirehoseSource(devenv.pds_listen_url),
                                            start_cursor=0, **options))
        uri = None
        try:
            await wait_for(lambda: passes() > before)  # the first pass is done: what follows is the stream's
            if mention_text is not None:
                uri = post_mention(devenv, fan, fan_token, bot_account, mention_text)
                expected = expected | {uri}
            async with client(devenv, bot_account, database_url) as bsky:
                for _ in range(600):
                    posts = await bsky.list_records("app.bsky.feed.post").collect()
                    replied[:] = [p.value.reply.parent.uri for p in posts]
                    if set(replied) >= expected:
                        break
                    assert not task.done(), task
                    await asyncio.sleep(0.2)
            assert set(replied) >= expected
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return uri

    first = await run_until("hello", set())
    assert first is not None
    second = await run_until("again", {first})  # a restart: the stream's cursor and the handled ones kept
    assert second is not None
    await run_until(None, {first, second})  # its first pass would answer again what was not recorded
    assert sorted(replied) == sorted([first, second])
