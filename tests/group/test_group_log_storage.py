"""PostgreSQL storage settings (migration 0012): the group log's events kept inline and uncompressed up
to ~8 KB, so that neither the ingest nor the workers compress, TOAST or decompress a firehose frame;
free room on the per-repo rev table's pages for in-place updates."""

from __future__ import annotations

import os

import pytest

from pysky_async._group.log import Appended, LogWriter, read
from pysky_async._group.registry import register
from pysky_async._storage.store import Store

pytestmark = pytest.mark.anyio


async def test_events_up_to_8_kb_stay_inline_and_uncompressed_and_larger_ones_round_trip(store: Store) -> None:
    options = await store.execute_sql("SELECT reloptions FROM pg_class WHERE relname = 'bsky_group_event'")
    assert "toast_tuple_target=8160" in options[0][0]
    storage = await store.execute_sql("SELECT attstorage::text FROM pg_attribute WHERE attrelid = "
                                      "'bsky_group_event'::regclass AND attname = 'data'")
    assert storage[0][0] == "e"  # EXTERNAL: out of line without compression when above the target
    revs = await store.execute_sql("SELECT reloptions FROM pg_class WHERE relname = 'bsky_repo_rev'")
    assert "fillfactor=70" in revs[0][0]  # room on each page for its rows' next revs (HOT updates)

    log = await register(store, "firehose:ws://storage.test", "stored", 2)
    writer = LogWriter(store, log, "leader")
    await writer.begin_term()
    # a frame of a repeated pattern: pglz would compress it well if it were asked to
    frames = [b"\xa2" * 100, b"\xa2ab" * 2300, os.urandom(20_000)]
    await writer.append([Appended(n + 1, f"did:plc:{n}", frame) for n, frame in enumerate(frames)])
    rows = await store.execute_sql("SELECT position, pg_column_size(data), pg_column_compression(data) "
                                   "FROM bsky_group_event ORDER BY position")
    sizes = {int(position): (int(size), compression) for position, size, compression in rows}
    assert sizes[2] == (len(frames[1]) + 4, None)  # 6.9 KB, stored as it came: not compressed
    assert sizes[3][1] is None  # 20 KB: out of line, still not compressed
    events, _head = await read(store, log.id, {0: 0, 1: 0}, 10, group="stored", lease=10.0)
    assert sorted(e.data for e in events if isinstance(e.data, bytes)) == sorted(frames)
