"""``CommittedFile``: lines stay only if their transaction commits (SQLite and real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pysky_async._exceptions import UsageError
from pysky_async._storage.store import Store
from pysky_async._streams.committed_file import CommittedFile

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


async def test_lines_of_a_rolled_back_transaction_are_cut_before_the_next_append(store: Store,
                                                                                  tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("kept from before\n")  # a first run keeps what the file holds
    out = CommittedFile(str(path), "g/w1")
    await out.open(store)
    async with store.transaction() as session:
        await out.append(session, ["a1", "a2"])
        await out.append(session, ["a3"])
    with pytest.raises(Boom):
        async with store.transaction() as session:
            await out.append(session, ["lost"])
            raise Boom  # the transaction rolls back (as when the lease is lost)
    assert path.read_text() == "kept from before\na1\na2\na3\nlost\n"  # written, not yet cut
    async with store.transaction() as session:
        await out.append(session, ["b1"])
    assert path.read_text() == "kept from before\na1\na2\na3\nb1\n"
    await out.close(store)


async def test_a_restart_cuts_what_a_killed_process_wrote_after_its_last_commit(store: Store,
                                                                                 tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    first = CommittedFile(str(path), "g/w1")
    await first.open(store)
    async with store.transaction() as session:
        await first.append(session, ["a1"])
    with path.open("a") as raw:  # what a process killed between its write and its commit leaves behind
        raw.write("uncommitted\n")
    restarted = CommittedFile(str(path), "g/w1")
    await restarted.open(store)
    assert path.read_text() == "a1\n"
    other = CommittedFile(str(tmp_path / "other.jsonl"), "g/w2")  # another worker's file: its own length
    await other.open(store)
    async with store.transaction() as session:
        await restarted.append(session, ["a2"])
        await other.append(session, ["x1"])
    assert path.read_text() == "a1\na2\n" and (tmp_path / "other.jsonl").read_text() == "x1\n"
    await restarted.close(store)
    await other.close(store)
    await first.close(store)


async def test_append_before_open_says_what_to_do(store: Store, tmp_path: Path) -> None:
    out = CommittedFile(str(tmp_path / "out.jsonl"), "g/w1")
    with pytest.raises(UsageError, match="open"):
        async with store.transaction() as session:
            await out.append(session, ["x"])
