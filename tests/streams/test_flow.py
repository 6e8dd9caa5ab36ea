"""Back-pressure, bad frames and staying connected (outages and silent connections) on the real PDS."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp
import libipld
import pytest
from aiohttp import web

from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent

from ..realnet.pds import PdsServer
from .conftest import Written, new_accounts
from .loopback import start_app
from .relay import Relay
from .workload import read_firehose, wait_for, write_all

pytestmark = pytest.mark.anyio


async def test_slow_handler_stops_reading_at_max_pending(pds: PdsServer, written: Written) -> None:
    samples: list[int] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        await asyncio.sleep(0.002)
        samples.append(consumer.pending)

    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, dids=written.dids, start_cursor=0,
                              concurrency=4, max_pending=40, commit_every=10)
    task = asyncio.create_task(consumer.run())
    await wait_for(lambda: (consumer.cursor or 0) >= written.reading.last_seq)
    await consumer.stop()
    await task
    assert consumer.stats.handled == len(written.seqs)
    assert consumer.peak_pending == 40  # the bound was reached: the socket was not read further
    assert max(samples) <= 40
    assert consumer.stats.events <= consumer.stats.handled + consumer.stats.filtered + consumer.stats.stale_revs


async def raw_frames(pds: PdsServer, did: str) -> list[tuple[int, bytes]]:
    frames: list[tuple[int, bytes]] = []
    url = f"{pds.listen_url.replace('http', 'ws', 1)}/xrpc/com.atproto.sync.subscribeRepos?cursor=0"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        while True:
            try:
                message = await ws.receive(timeout=1.0)
            except asyncio.TimeoutError:
                return frames
            _header, body = libipld.decode_dag_cbor_multi(message.data)
            if did in (body.get("repo"), body.get("did")):
                frames.append((body["seq"], message.data))


def bad_frames(good: bytes) -> list[bytes | str]:
    encode = libipld.encode_dag_cbor
    return [
        good[: len(good) // 2],  # truncated CBOR
        encode({"op": 1, "t": "#bogus"}) + encode({"seq": 1}),  # unknown type
        encode({"op": 1, "t": "#commit"}),  # a header without a body
        encode({"op": 1, "t": "#commit"}) + encode({"seq": 5}),  # a commit without its fields
        encode({"op": 2}) + encode({"seq": 7}),  # an unknown op (error frames are not bad frames: test_server_errors)
        encode({"op": 1, "t": "#commit"}) + encode({"seq": 9, "blocks": b"x" * 300_000}),  # oversize
        "a text frame",
    ]


async def test_bad_frames_are_counted_and_the_consumer_goes_on(pds: PdsServer, written: Written) -> None:
    did = written.accounts[1].did
    frames = await raw_frames(pds, did)
    bad = bad_frames(frames[-1][1])
    connections: list[str | None] = []

    async def subscribe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        cursor = request.query.get("cursor")
        connections.append(cursor)
        for i, (seq, frame) in enumerate(frames):
            if cursor is None or seq > int(cursor):
                if i < len(bad):
                    message = bad[i]
                    await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))
                await ws.send_bytes(frame)
        await ws.receive()  # then stay open until the client leaves
        return ws

    app = web.Application()
    app.router.add_get("/xrpc/com.atproto.sync.subscribeRepos", subscribe)
    runner, port = await start_app(app)
    handled: list[int] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        handled.append(event.cursor or 0)

    consumer = StreamConsumer(FirehoseSource(f"http://127.0.0.1:{port}"), handler, start_cursor=0,
                              max_frame_bytes=200_000)
    task = asyncio.create_task(consumer.run())
    expected = [seq for seq, _ in frames if seq not in written.reading.stale_syncs]  # the rev guard skips those
    try:
        await wait_for(lambda: len(handled) >= len(expected))
    finally:
        await consumer.stop()
        await task
        await runner.cleanup()
    assert handled == expected
    assert consumer.stats.bad_frames == len(bad) == 7
    assert connections == ["0"]  # bad frames did not cost a reconnect


async def test_outages_and_a_silent_connection_lose_nothing(pds: PdsServer) -> None:
    accounts = new_accounts(pds, 3)
    dids = {a.did for a in accounts}
    relay = Relay(pds.listen_port)
    await relay.start()
    handled: dict[str, list[int]] = defaultdict(list)

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        handled[event.did].append(event.cursor or 0)

    consumer = StreamConsumer(FirehoseSource(relay.url), handler, dids=dids, start_cursor=0,
                              silence_timeout=1.0, backoff_max=0.3)
    task = asyncio.create_task(consumer.run())
    writes = asyncio.create_task(write_all(pds, accounts, singles=60, batches=1, batch_size=10))
    try:
        await wait_for(lambda: sum(map(len, handled.values())) >= 20)
        relay.cut()
        await wait_for(lambda: sum(map(len, handled.values())) >= 60)
        await relay.outage(1.0)
        await wait_for(lambda: sum(map(len, handled.values())) >= 100)
        relay.mute()
        await writes
        reading = await read_firehose(pds)
        await wait_for(lambda: all(handled[d] == reading.seqs[d] for d in dids))
    finally:
        await consumer.stop()
        await task
        await relay.stop()
    assert consumer.stats.reconnects >= 3
    assert consumer.stats.silent_reconnects >= 1
    assert consumer.stats.bad_frames == 0
    assert relay.connections >= 4


async def test_holding_reading_back_is_not_silence(pds: PdsServer, written: Written) -> None:
    slow = [1.5]

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if slow:
            await asyncio.sleep(slow.pop())  # the window fills and reading stops for 1.5 s

    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, dids=written.dids, start_cursor=0,
                              max_pending=5, silence_timeout=0.5)
    task = asyncio.create_task(consumer.run())
    await wait_for(lambda: (consumer.cursor or 0) >= written.reading.last_seq)
    await consumer.stop()
    await task
    assert consumer.peak_pending == 5
    assert (consumer.stats.connects, consumer.stats.silent_reconnects) == (1, 0)
