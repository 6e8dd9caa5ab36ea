"""The follow-graph export job and the async bot example against the real AppView (dev-env)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from examples import bot

from pysky_async import AsyncBskyClient, NetworkError

from .realnet.devenv import DevEnv
from .realnet.fault_proxy import FaultProxy
from .realnet.pds import Account

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def iso_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def client(devenv: DevEnv, account: Account, database_url: str, **options: Any) -> AsyncBskyClient:
    return AsyncBskyClient(username=account.handle, password=account.password, auth_host=devenv.pds_listen_url,
                           database_url=database_url, plc_directory=devenv.plc_url, auto_migrate=True, **options)


UPDATE_SEEN = "app.bsky.notification.updateSeen"


class CrashOn:
    """A middleware that fails one method as if the process died just before calling it."""

    def __init__(self, nsid: str) -> None:
        self.nsid = nsid

    async def __call__(self, request: Any, call_next: Any) -> Any:
        if request.nsid == self.nsid:
            raise NetworkError(f"crashed before {self.nsid}")
        return await call_next(request)


def seed_community(devenv: DevEnv, query: str, size: int = 20) -> tuple[list[Account], set[tuple[str, str]]]:
    """``size`` authors posting ``query``, random follows among them and to outsiders; returns the
    authors and the expected (source, target) edges among them."""
    rng = random.Random(20261123)
    members = [devenv.new_account("g") for _ in range(size)]
    outsiders = [devenv.new_account("o") for _ in range(3)]
    expected: set[tuple[str, str]] = set()
    for account, token in members:
        devenv.xrpc("com.atproto.repo.createRecord", {"repo": account.did, "collection": "app.bsky.feed.post",
                                                       "record": {"text": f"hello {query} world",
                                                                  "createdAt": iso_now()}}, token=token)
        targets = rng.sample([m for m, _ in members if m.did != account.did], rng.randint(0, 6))
        targets += [o for o, _ in outsiders[: rng.randint(0, 2)]]
        for target in targets:
            devenv.xrpc("com.atproto.repo.createRecord", {
                "repo": account.did, "collection": "app.bsky.graph.follow",
                "record": {"subject": target.did, "createdAt": iso_now()}}, token=token)
            if any(target.did == m.did for m, _ in members):
                expected.add((account.did, target.did))
    devenv.process_all()
    return [m for m, _ in members], expected


def read_edges(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as f:
        return [(row["source"], row["target"]) for row in csv.DictReader(f)]


async def test_graph_export_writes_exactly_the_expected_edges(devenv: DevEnv, tmp_path: Path) -> None:
    query = f"#dataBS{secrets.token_hex(3)}"
    members, expected = seed_community(devenv, query)
    runner, _ = devenv.new_account("r")
    out = tmp_path / "graph.csv"
    async with client(devenv, runner, f"sqlite+aiosqlite:///{tmp_path}/graph.sqlite3") as bsky:
        report = await bsky.export_follow_graph(query, str(out), concurrency=4)
    edges = read_edges(out)
    assert set(edges) == expected and len(edges) == len(expected)
    assert report.authors == len(members) and report.edges == len(expected) and report.calls > len(members)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(row["source_posts_count"] == "1" for row in rows)
    followers = {m.did: sum(1 for _, t in expected if t == m.did) for m in members}
    assert all(int(row["source_followers_count"]) >= followers[row["source"]] for row in rows)


def test_graph_export_killed_halfway_resumes_without_duplicates(devenv: DevEnv, tmp_path: Path) -> None:
    query = f"#dataBS{secrets.token_hex(3)}"
    members, expected = seed_community(devenv, query)
    runner, _ = devenv.new_account("r")
    out = tmp_path / "graph.csv"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG"))},
           "BSKY_AUTH_USERNAME": runner.handle, "BSKY_AUTH_PASSWORD": runner.password,
           "BSKY_SQLITE_FILENAME": str(tmp_path / "graph.sqlite3")}
    command = [sys.executable, "-m", "pysky_async", "--auth-host", devenv.pds_listen_url, "graph",
               "--query", query, "--out", str(out), "--concurrency", "2"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    progress = out.with_name(out.name + ".progress")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        done = progress.read_text().count("done ") if progress.exists() else 0
        if done >= len(members) // 2:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    partial = read_edges(out)
    assert 0 < len(set(partial)) < len(expected), "killed halfway"
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "authors" in second.stdout and "edges written" in second.stdout
    edges = read_edges(out)
    assert set(edges) == expected
    assert len(edges) == len(set(edges)), "no duplicate rows"


def post_mention(devenv: DevEnv, author: Account, token: str, mentioned: Account, text: str) -> str:
    """``author`` posts ``text @mentioned`` with a mention facet; returns the post's URI."""
    text = f"{text} @{mentioned.handle}"
    start = text.encode().index(f"@{mentioned.handle}".encode())
    facet = {"index": {"byteStart": start, "byteEnd": start + len(mentioned.handle) + 1},
             "features": [{"$type": "app.bsky.richtext.facet#mention", "did": mentioned.did}]}
    out = devenv.xrpc("com.atproto.repo.createRecord", {
        "repo": author.did, "collection": "app.bsky.feed.post",
        "record": {"text": text, "facets": [facet], "createdAt": iso_now()}}, token=token)
    return str(out["uri"])


async def test_bot_answers_each_mention_once_across_restarts(devenv: DevEnv, tmp_path: Path) -> None:
    bot_account, _ = devenv.new_account("b")
    fan, fan_token = devenv.new_account("f")
    database_url = f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3"

    def mention(text: str) -> str:
        uri = post_mention(devenv, fan, fan_token, bot_account, text)
        devenv.process_all()
        return uri

    async def replies() -> list[str]:
        async with client(devenv, bot_account, database_url) as bsky:
            posts = await bsky.list_records("app.bsky.feed.post").collect()
        return [p.value.reply.parent.uri for p in posts]

    first = mention("hello")
    async with client(devenv, bot_account, database_url) as bsky:
        assert await bot.poll_once(bsky) == 1
        assert await bot.poll_once(bsky) == 0
    assert await replies() == [first]
    second = mention("again")
    async with client(devenv, bot_account, database_url, middleware=[CrashOn(UPDATE_SEEN)]) as bsky:
        with pytest.raises(NetworkError, match="crashed"):  # replied and recorded, then died before updateSeen
            await bot.poll_once(bsky)
    async with client(devenv, bot_account, database_url) as bsky:  # the server still calls it unread: not us
        assert await bot.poll_once(bsky) == 0
    assert sorted(await replies()) == sorted([first, second]), "one reply per mention"
    devenv.process_all()
    async with client(devenv, bot_account, database_url) as bsky:
        reply = (await bsky.list_records("app.bsky.feed.post", max_items=1).collect())[0]
    assert f"@{fan.handle}" in reply.value.text and "bsky.app/profile/" in str(reply.value.raw["facets"])


async def test_bot_survives_failed_polls_and_goes_on(devenv: DevEnv, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The bot's server is down (connection refused) for its first polls, then comes back."""
    bot_account, _ = devenv.new_account("b")
    fan, fan_token = devenv.new_account("f")
    # the port is held by a bound socket that does not listen: connections are refused, and nothing else
    # (another xdist worker's server, an outgoing connection's local port) can take it until the proxy does
    reservation = socket.socket()
    reservation.bind(("127.0.0.1", 0))
    port = int(reservation.getsockname()[1])
    down = FaultProxy(int(devenv.pds_listen_url.rsplit(":", 1)[1]), rate=0.0)  # started later: refused until then
    text = f"hi @{bot_account.handle}"
    start = text.index("@")
    devenv.xrpc("com.atproto.repo.createRecord", {
        "repo": fan.did, "collection": "app.bsky.feed.post",
        "record": {"text": text, "createdAt": iso_now(), "facets": [{
            "index": {"byteStart": start, "byteEnd": len(text)},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": bot_account.did}]}]}}, token=fan_token)
    devenv.process_all()
    options: dict[str, Any] = {"username": bot_account.handle, "password": bot_account.password,
               "auth_host": f"http://127.0.0.1:{port}", "plc_directory": devenv.plc_url,
               "database_url": f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3"}
    caplog.set_level(logging.WARNING, logger="bot")
    task = asyncio.create_task(bot.main(poll_interval=0.05, max_backoff=0.5, **options))
    try:
        while sum("poll failed" in r.message for r in caplog.records) < 2:
            assert not task.done(), task
            await asyncio.sleep(0.05)
        reservation.close()
        await down.start(port)
        async with client(devenv, bot_account, f"sqlite+aiosqlite:///{tmp_path}/check.sqlite3") as bsky:
            for _ in range(200):
                if await bsky.list_records("app.bsky.feed.post").collect():
                    break
                await asyncio.sleep(0.1)
            replies = await bsky.list_records("app.bsky.feed.post").collect()
        assert len(replies) == 1 and not task.done(), "answered once, and still running"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        reservation.close()
        await down.stop()
