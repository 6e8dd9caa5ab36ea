"""Dropping a consumer group (``drop_group``, ``pysky-async group drop``) on a real PostgreSQL and on SQLite:
the log is trimmed past what only the dropped group held back; a live group is refused unless forced."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from pysky_async import DroppedGroup, StreamError, drop_group, group_status
from pysky_async._cli import main
from pysky_async._group import leases
from pysky_async._group.log import Appended, LogWriter, trim
from pysky_async._group.registry import LogInfo, register
from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

from ..streams.firehose_server import FakeFirehose
from .frames import recording
from .test_group_pg import FAST, caught_up, wait_until

pytestmark = pytest.mark.anyio
SOURCE = "firehose:ws://drop.test"


async def two_groups(store: Store, events: int = 10) -> LogInfo:
    """Groups ``ahead`` (past every event) and ``behind`` (past none) on one log of ``events`` events."""
    log = await register(store, SOURCE, "ahead", 2)
    await register(store, SOURCE, "behind", 2)
    writer = LogWriter(store, log, "leader")
    await writer.begin_term()
    await writer.append([Appended(n, f"did:plc:d{n}", b"x") for n in range(1, events + 1)])
    await store.execute_sql(f"UPDATE bsky_group_partition SET position = {events}, cursor = {events} "
                            "WHERE group_name = 'ahead'")
    await store.execute_sql("INSERT INTO bsky_repo_rev (consumer, did, rev, updated_at) "
                            "VALUES ('behind', 'did:plc:d1', '3kaaaaaaaaa22', now())")
    return log


async def log_events(store: Store) -> int:
    return int((await store.execute_sql("SELECT count(*) FROM bsky_group_event"))[0][0])


async def test_dropping_the_group_behind_lets_the_log_be_trimmed(store: Store) -> None:
    log = await two_groups(store)
    assert await trim(store, log.id) == 0  # "behind" holds every event back
    assert await log_events(store) == 10
    dropped = await drop_group(store, "behind")
    assert dropped == DroppedGroup("behind", SOURCE, partitions=2, members=0, revs=1, trimmed=10,
                                   remaining=("ahead",))
    assert await log_events(store) == 0
    with pytest.raises(StreamError, match="no consumer group 'behind'"):
        await group_status(store, "behind")
    assert (await group_status(store, "ahead")).resume_cursor == 10
    assert await store.execute_sql("SELECT count(*) FROM bsky_repo_rev") == [(0,)]
    with pytest.raises(StreamError, match="no consumer group 'behind'"):
        await drop_group(store, "behind")


async def test_dropping_the_last_group_keeps_the_log_for_a_group_to_join(store: Store) -> None:
    log = await two_groups(store)
    await drop_group(store, "ahead")
    dropped = await drop_group(store, "behind")
    assert dropped.remaining == () and dropped.trimmed == 0  # nobody passed them: kept for the next group
    assert await store.execute_sql("SELECT source, upstream_cursor, last_position FROM bsky_group_log") == [
        (SOURCE, 10, 10)]
    assert await log_events(store) == 10
    await register(store, SOURCE, "newcomer", 2)  # a new group starts at what the log still holds
    assert (await group_status(store, "newcomer")).lag == 10
    assert (await register(store, SOURCE, "behind", 2)).id == log.id  # and the name can be used again


async def test_a_group_with_a_live_member_is_refused_unless_forced(store: Store) -> None:
    await two_groups(store)
    await leases.heartbeat(store, "behind", "host-a", 10.0)
    with pytest.raises(StreamError, match=r"'behind' has live members: host-a\. Stop them first"):
        await drop_group(store, "behind")
    assert (await group_status(store, "behind")).members == ("host-a",)  # nothing was deleted
    await leases.leave(store, "behind", "host-a")  # its clean stop
    await leases.claim(store, "behind", "host-b", 1, 3600.0)  # a lease that has not expired: live too
    with pytest.raises(StreamError, match="live members: host-b"):
        await drop_group(store, "behind")
    dropped = await drop_group(store, "behind", force=True)
    assert dropped.partitions == 2 and dropped.trimmed == 10


async def test_a_running_group_on_the_source_trims_once_the_stale_group_is_dropped(store: Store) -> None:
    """The real ingest of a running group trims nothing while a stopped group sits on the same source."""
    await store.execute_sql("CREATE TABLE effect (seq bigint PRIMARY KEY)")
    server = FakeFirehose(recording(300, 30))
    await server.start()
    source = FirehoseSource(server.url)
    await register(store, source.key, "stale", 4)  # joined once, never ran again

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        pass

    consumer = StreamConsumer(source, handler, store=store, name="w", group="live", partitions=4, start_cursor=0,
                              **FAST)  # type: ignore[arg-type]
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(lambda: caught_up(store, "live", 300))
        assert await log_events(store) == 300  # held back by "stale"
        dropped = await drop_group(store, "stale")  # while "live" runs: only "stale" is checked
        assert dropped.remaining == ("live",)
        assert await log_events(store) == 0
    finally:
        await consumer.stop()
        await task
        await server.stop()


def test_cli_drop_says_what_it_deleted_and_refuses_a_live_group(pg_database_url: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    async def setup() -> None:
        store = Store(pg_database_url, auto_migrate=True)
        try:
            await two_groups(store)
            await leases.heartbeat(store, "behind", "host-a", 10.0)
        finally:
            await store.aclose()

    asyncio.run(setup())
    drop = ["--database-url", pg_database_url, "group", "drop", "behind"]
    assert main(drop) == 1  # not a terminal and no --yes
    err = capsys.readouterr().err
    assert err.startswith("error: dropping group 'behind' deletes") and "pass --yes" in err
    assert main([*drop, "--yes"]) == 1
    err = capsys.readouterr().err
    assert "'behind' has live members: host-a" in err and "--force" in err
    assert main([*drop, "--yes", "--force"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"dropped group behind on {SOURCE}: 2 partitions, 1 members, 1 repo revs deleted; 10 log events trimmed",
        "the log stays for the other groups on it: ahead"]
    assert main(["--database-url", pg_database_url, "group", "drop", "ahead", "--yes", "--json"]) == 0
    assert '"remaining": []' in capsys.readouterr().out
    assert main([*drop, "--yes"]) == 1
    assert capsys.readouterr().err.startswith("error: no consumer group 'behind'")


def test_cli_drop_asks_on_a_terminal(pg_database_url: str, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async def setup() -> None:
        store = Store(pg_database_url, auto_migrate=True)
        try:
            await two_groups(store)
        finally:
            await store.aclose()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    asyncio.run(setup())
    drop = ["--database-url", pg_database_url, "group", "drop", "behind"]
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    assert main(drop) == 1
    assert capsys.readouterr().out.endswith("? [y/N] not dropped\n")
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert main(drop) == 0
    assert "dropped group behind" in capsys.readouterr().out


async def test_on_sqlite_drop_forgets_the_named_consumer(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3")
    try:
        await store.ensure_ready()
        await store.execute_sql("INSERT INTO bsky_stream_cursor (consumer, source, cursor, updated_at) "
                                "VALUES ('solo', 'firehose:ws://x', 42, CURRENT_TIMESTAMP)")
        assert (await group_status(store, "solo")).resume_cursor == 42
    finally:
        await store.aclose()
    dropped = await drop_group(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3", "solo")  # by URL
    assert dropped == DroppedGroup("solo", "firehose:ws://x", 1, 0, 0, 0, (), shared_log=False)
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3")
    try:
        with pytest.raises(StreamError, match="no consumer group 'solo'"):
            await group_status(store, "solo")
    finally:
        await store.aclose()
