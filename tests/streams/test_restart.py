"""A real PDS restart (same data, same port) under a running consumer: it reconnects and resumes."""

from __future__ import annotations

import asyncio
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

from ..realnet.fixtures import _start_pds
from ..realnet.pds import PdsServer, stop_process
from .conftest import new_accounts
from .workload import read_firehose, wait_for, write_all

pytestmark = pytest.mark.anyio


@pytest.fixture
def own_pds() -> Iterator[PdsServer]:
    """A PDS of this test's own: restarting the shared one would lose its in-memory PLC."""
    server = _start_pds()
    try:
        yield server
    finally:
        server.stop()


def restart(pds: PdsServer) -> None:
    """Stop the PDS process and start the same command again (same environment, data and port)."""
    pid = pds.pid
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    command = [part.decode() for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part]
    cwd = Path(f"/proc/{pid}/cwd").resolve()
    stop_process(pds._proc, grace=10)
    with open(pds.log_path, "ab") as log:
        pds._proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
    pds._wait_healthy(60)


async def test_pds_restart_under_a_running_consumer(own_pds: PdsServer, tmp_path: Path) -> None:
    accounts = new_accounts(own_pds, 2)
    dids = {a.did for a in accounts}
    handled: dict[str, list[int]] = defaultdict(list)

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        handled[event.did].append(event.cursor or 0)

    store = Store(f"sqlite+aiosqlite:///{tmp_path}/restart.sqlite3", auto_migrate=True)
    consumer = StreamConsumer(FirehoseSource(own_pds.listen_url), handler, store=store, name="restart", dids=dids,
                              start_cursor=0, backoff_max=0.5)
    task = asyncio.create_task(consumer.run())
    try:
        await write_all(own_pds, accounts, singles=20, batches=1, batch_size=10)
        before = await read_firehose(own_pds)
        await wait_for(lambda: all(handled[d] == before.seqs[d] for d in dids))
        connects = consumer.stats.connects
        await asyncio.to_thread(restart, own_pds)
        await write_all(own_pds, accounts, singles=20, batches=1, batch_size=10, prefix="t")
        after = await read_firehose(own_pds)
        await wait_for(lambda: all(handled[d] == after.seqs[d] for d in dids))
        await wait_for(lambda: consumer.cursor == after.last_seq)
    finally:
        await consumer.stop()
        await task
        await store.aclose()
    assert after.last_seq > before.last_seq
    assert consumer.stats.connects > connects and consumer.stats.reconnects >= 1
