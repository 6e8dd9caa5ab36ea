"""``bsky.streams`` builds consumers from the client: its database keeps the cursor (no store= to pass)."""

from __future__ import annotations

import asyncio

import pytest

from pysky_async import AsyncBskyClient, PyskyError
from pysky_async._streams import (
    EventContext,
    FirehoseSource,
    JetstreamSource,
    MemoryStreamCursorStore,
    SignatureVerifier,
    SqlStreamCursorStore,
    StreamEvent,
)

from ..realnet.pds import PdsServer
from .conftest import Written
from .workload import wait_for

pytestmark = pytest.mark.anyio


async def ignore(event: StreamEvent, ctx: EventContext) -> None: ...


async def test_streams_build_consumers_on_the_clients_database(tmp_path: object) -> None:
    async with AsyncBskyClient(database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        durable = bsky.streams.firehose(ignore, service="http://127.0.0.1:2583", name="indexer", verify="inductive",
                                        on_invalid="flag",
                                        collections=["app.bsky.feed.post"], concurrency=4)
        assert isinstance(durable.source, FirehoseSource) and durable.source.keep_commit
        assert isinstance(durable.cursor_store, SqlStreamCursorStore) and durable.cursor_store.store is bsky.store
        assert (durable.name, durable.concurrency) == ("indexer", 4)
        assert isinstance(durable.verifier, SignatureVerifier) and durable.verifier.policy == "flag"
        assert durable.verifier.verify == "inductive" and not durable.verifier.chain  # filtered: no chain to follow
        assert durable.verifier.store is bsky.store
        assert durable.verifier.resolve_did == bsky.identity.resolve_did
        memory = bsky.streams.jetstream(ignore, instances=["wss://js.example"], dids=["did:plc:a"], compress=True)
        assert isinstance(memory.source, JetstreamSource) and memory.source.dids == ["did:plc:a"]
        assert memory.source.compress and isinstance(memory.cursor_store, MemoryStreamCursorStore)
    with pytest.raises(PyskyError, match="closed"):
        bsky.streams.firehose(ignore)


async def test_a_named_firehose_consumer_from_the_client_resumes_from_its_database(
        pds: PdsServer, written: Written, database_url: str) -> None:
    seen: list[int] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        seen.append(event.cursor or 0)

    async def run_once(bsky: AsyncBskyClient) -> int | None:
        consumer = bsky.streams.firehose(handler, service=pds.listen_url, name="from-client", dids=written.dids,
                                         start_cursor=0, commit_every=50)
        task = asyncio.create_task(consumer.run())
        try:
            await wait_for(lambda: consumer.cursor is not None and consumer.cursor >= max(written.seqs))
        finally:
            await consumer.stop()
            await task
        return consumer.cursor

    async with AsyncBskyClient(database_url=database_url, auto_migrate=True) as bsky:
        last = await run_once(bsky)
        assert set(seen) >= written.seqs
        assert await SqlStreamCursorStore(bsky.store).load("from-client", FirehoseSource(pds.listen_url).key) == last
    seen.clear()
    async with AsyncBskyClient(database_url=database_url) as again:
        consumer = again.streams.firehose(handler, service=pds.listen_url, name="from-client", dids=written.dids)
        assert await consumer.load_cursor() == last  # a restart resumes there, not at start_cursor
