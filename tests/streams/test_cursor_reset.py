"""A named consumer's cursor can be reset (API and CLI); ``--start-cursor`` never silently loses to a stored one."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pysky_async import StreamError, StreamServerError
from pysky_async._storage.store import Store
from pysky_async._streams import FirehoseSource, StreamConsumer
from pysky_async._streams.factory import Streams

from ..realnet.pds import PdsServer
from .conftest import Written
from .firehose_server import FakeFirehose, identity_frame
from .test_server_errors import Recorder
from .workload import OTHER, run_until, wait_for

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def test_reset_cursor_starts_over_after_future_cursor(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pysky_async.streams")
    server = FakeFirehose([identity_frame(seq) for seq in range(1, 11)])
    await server.start()
    source = FirehoseSource(server.url)
    try:
        # a cursor saved on another server (or before this one was reset): the server refuses it
        await StreamConsumer(source, Recorder(), store=store, name="idx").cursor_store.save("idx", source.key, 500, [])
        refused = StreamConsumer(source, Recorder(), store=store, name="idx", start_cursor=3, backoff_max=0.05)
        with pytest.raises(StreamServerError, match="reset_cursor=True"):
            await asyncio.wait_for(refused.run(), 60)
        assert "resuming at its saved cursor 500; start_cursor=3 applies to a first run only" in caplog.text

        handler = Recorder()
        consumer = StreamConsumer(source, handler, store=store, name="idx", start_cursor=3, reset_cursor=True)
        await run_until(consumer, lambda: len(handler.cursors) >= 7)
        assert handler.cursors == list(range(4, 11))  # started at start_cursor, as a first run does
        assert server.cursors == ["500", "3"]
        assert await consumer.load_cursor() == 10

        # the method: forgets the cursor at once (a crash before the next commit cannot bring it back)
        await consumer.reset_cursor()
        assert await consumer.load_cursor() is None and consumer.cursor is None
        again = Recorder()
        fresh = StreamConsumer(source, again, store=store, name="idx", start_cursor=8)
        await run_until(fresh, lambda: len(again.cursors) >= 2)
        assert again.cursors == [9, 10]
        # not while it runs
        running = StreamConsumer(source, Recorder(), store=store, name="idx")
        task = asyncio.create_task(running.run())
        await wait_for(lambda: len(server.cursors) == 4)
        with pytest.raises(StreamError, match="is running: stop it"):
            await running.reset_cursor()
        await running.stop()
        await task
        assert server.cursors[-1] == "10" and await running.load_cursor() == 10
    finally:
        await server.stop()


async def test_the_client_factory_passes_reset_cursor(store: Store) -> None:
    server = FakeFirehose([identity_frame(seq) for seq in range(1, 6)])
    await server.start()
    streams = Streams(store, resolve_did=None)  # type: ignore[arg-type]  # no verification here
    try:
        first = Recorder()
        await run_until(streams.firehose(first, service=server.url, name="factory", start_cursor=0),
                        lambda: len(first.cursors) >= 5)
        again = Recorder()
        await run_until(streams.firehose(again, service=server.url, name="factory", start_cursor=2, reset_cursor=True),
                        lambda: len(again.cursors) >= 3)
    finally:
        await server.stop()
    assert (first.cursors, again.cursors) == ([1, 2, 3, 4, 5], [3, 4, 5])
    assert server.cursors == ["0", "2"]


class OldStore:
    """A cursor store written before ``delete`` joined the protocol."""

    durable = False

    async def load(self, consumer: str, source: str) -> int | None:
        return 5

    async def save(self, consumer: str, source: str, cursor: int, work: object) -> None:
        pass


async def test_a_store_without_delete_is_refused_clearly() -> None:
    consumer = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), Recorder(),
                              cursor_store=OldStore())  # type: ignore[arg-type]  # the point: no delete()
    with pytest.raises(StreamError, match=r"OldStore cannot forget a cursor: give it `async def delete"):
        await consumer.reset_cursor()


async def test_an_in_memory_cursor_resets_too() -> None:
    server = FakeFirehose([identity_frame(seq) for seq in range(1, 4)])
    await server.start()
    handler = Recorder()
    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0)
    try:
        await run_until(consumer, lambda: len(handler.cursors) >= 3)
        assert await consumer.load_cursor() == 3
        await consumer.reset_cursor()
        assert await consumer.load_cursor() is None
    finally:
        await server.stop()


def cli(pds: PdsServer, written: Written, tmp_path: Path, *options: str,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    dids = [arg for did in sorted(written.dids) for arg in ("--did", did)]
    return subprocess.run(
        [sys.executable, "-m", "pysky_async", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
         "stream", "--source", "firehose", "--service", pds.listen_url, "--collection", OTHER, *dids,
         "--out", str(tmp_path / "out.jsonl"), "--consumer", "cli", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=check)


def paths(tmp_path: Path) -> list[tuple[int, str, str]]:
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    return [(line["cursor"], line["did"], line["path"]) for line in map(json.loads, lines)]


def test_cli_start_cursor_on_a_stored_cursor_is_refused_unless_reset(pds: PdsServer, written: Written,
                                                                     tmp_path: Path) -> None:
    cli(pds, written, tmp_path, "--start-cursor", "0", "--limit", "10")
    first = paths(tmp_path)
    assert len(first) >= 10

    refused = cli(pds, written, tmp_path, "--start-cursor", "0", "--limit", "10", check=False)
    assert refused.returncode == 1  # before: it resumed at the stored cursor and ignored --start-cursor
    assert "consumer 'cli' already has a stored cursor" in refused.stderr
    assert "Add --reset-cursor to start over at 0, or drop --start-cursor" in refused.stderr
    assert paths(tmp_path) == first  # nothing was read

    cli(pds, written, tmp_path, "--reset-cursor", "--start-cursor", "0", "--limit", "10")
    again = paths(tmp_path)[len(first):]
    assert len(again) >= 10 and min(again) == min(first)  # started over at 0: the first line came again


def test_cli_refuses_a_collection_that_is_no_nsid_or_prefix(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pysky_async", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/c.sqlite3",
         "stream", "--source", "firehose", "--service", "http://127.0.0.1:9", "--collection", "app.bsky.feed.post/",
         "--out", str(tmp_path / "out.jsonl"), "--consumer", "c"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2  # an argparse usage error, before anything is opened
    assert "--collection: 'app.bsky.feed.post/' is not a collection filter" in done.stderr
    assert "'app.bsky.feed.*'" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_exits_on_future_cursor_saying_to_reset(pds: PdsServer, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pysky_async", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/f.sqlite3",
         "stream", "--source", "firehose", "--service", pds.listen_url, "--out", str(tmp_path / "out.jsonl"),
         "--consumer", "f", "--start-cursor", str(10**12)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1  # before: reconnected at that cursor forever
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"refused cursor {10**12}: FutureCursor" in last
    assert "--reset-cursor" in last
