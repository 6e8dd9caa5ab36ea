"""Error frames, frames above the socket's limit and silent servers: reported as what they are, never a loop.

Each case failed before its fix: FutureCursor was an "undecodable frame" and the consumer
reconnected at the same cursor forever; a frame above the socket's limit did the same; a silent
connection waited ~10 s more for a close frame nobody sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Iterator

import aiohttp
import libipld
import pytest
from aiohttp import web

from pysky_async import StreamError, StreamServerError
from pysky_async._streams import EventContext, FirehoseSource, JetstreamSource, StreamConsumer, StreamEvent
from pysky_async._streams.connection import CLOSE_TIMEOUT, OVERSIZE_ATTEMPTS, Feed

from ..realnet.pds import PdsServer
from .conftest import new_accounts
from .firehose_server import FakeFirehose, identity_frame
from .loopback import start_app
from .workload import Reading, wait_for, write_all

pytestmark = pytest.mark.anyio


async def serve(frames: list[bytes], *, interrupt: dict[int, tuple[int, str, str | None]] | None = None,
                silent: bool = False) -> FakeFirehose:
    server = FakeFirehose(frames, interrupt=interrupt or {}, silent=silent)
    await server.start()
    return server


class Recorder:
    """A handler that keeps the cursors it saw, in order."""

    def __init__(self) -> None:
        self.cursors: list[int] = []

    async def __call__(self, event: StreamEvent, ctx: EventContext) -> None:
        assert event.cursor is not None
        self.cursors.append(event.cursor)


async def test_future_cursor_stops_the_consumer_with_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    server = await serve([identity_frame(seq) for seq in range(1, 6)])
    consumer = StreamConsumer(FirehoseSource(server.url), Recorder(), start_cursor=100, backoff_max=0.05)
    try:
        with pytest.raises(StreamServerError) as raised:
            await asyncio.wait_for(consumer.run(), 60)  # before the fix: reconnected at cursor 100 forever
    finally:
        await server.stop()
    error = raised.value
    assert isinstance(error, StreamError) and error.error == "FutureCursor"
    assert error.server_message == "Cursor in the future."
    assert "cursor 100" in str(error) and "reset_cursor=True" in str(error) and "--reset-cursor" in str(error)
    assert server.cursors == ["100"]  # one connection: no loop
    assert (consumer.stats.error_frames, consumer.stats.bad_frames) == (1, 0)
    assert "undecodable" not in caplog.text


async def test_future_cursor_from_the_real_pds(pds: PdsServer) -> None:
    consumer = StreamConsumer(FirehoseSource(pds.listen_url), Recorder(), start_cursor=10**12, backoff_max=0.05)
    with pytest.raises(StreamServerError) as raised:
        await asyncio.wait_for(consumer.run(), 60)
    assert raised.value.error == "FutureCursor" and f"cursor {10**12}" in str(raised.value)
    assert consumer.stats.connects == 1


async def test_consumer_too_slow_is_logged_and_reconnects_from_the_cursor(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pysky_async.streams")
    server = await serve([identity_frame(seq) for seq in range(1, 11)],
                         interrupt={0: (3, "ConsumerTooSlow", "Stream consumer too slow")})
    handler = Recorder()
    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0, backoff_max=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: len(handler.cursors) >= 10)
    finally:
        await consumer.stop()
        await task
        await server.stop()
    assert handler.cursors == list(range(1, 11))  # nothing lost, nothing twice
    assert server.cursors == ["0", "3"]  # resumed after the last event read
    assert (consumer.stats.error_frames, consumer.stats.bad_frames) == (1, 0)
    assert "ConsumerTooSlow" in caplog.text and "Stream consumer too slow" in caplog.text
    assert "undecodable" not in caplog.text


@pytest.fixture(scope="module")
def small_buffer_pds() -> Iterator[PdsServer]:
    """A reference PDS whose subscribeRepos outbox holds one event: more pending gets ConsumerTooSlow."""
    server = PdsServer.start(extra_env={"PDS_MAX_SUBSCRIPTION_BUFFER": "1"})
    try:
        yield server
    finally:
        server.stop()


async def read_resuming(pds: PdsServer) -> Reading:
    """``read_firehose`` for a PDS that may drop the reader too: plain libipld, resumed after an error frame."""
    reading = Reading()
    url = f"{pds.listen_url.replace('http', 'ws', 1)}/xrpc/com.atproto.sync.subscribeRepos"
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.ws_connect(f"{url}?cursor={reading.last_seq}", max_msg_size=0) as ws:
                while True:
                    try:
                        message = await ws.receive(timeout=1.5)
                    except asyncio.TimeoutError:
                        return reading
                    if message.type != aiohttp.WSMsgType.BINARY:
                        break
                    header, body = libipld.decode_dag_cbor_multi(message.data)
                    if header["op"] == -1:
                        break  # ConsumerTooSlow: go on from the last seq read
                    reading.seqs.setdefault(body.get("repo") or body.get("did"), []).append(body["seq"])
                    reading.last_seq = body["seq"]
            await asyncio.sleep(0.2)


async def test_consumer_too_slow_from_the_real_pds(small_buffer_pds: PdsServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pysky_async.streams")
    pds = small_buffer_pds
    accounts = new_accounts(pds, 4)
    dids = {a.did for a in accounts}
    start = (await read_resuming(pds)).last_seq
    handled: dict[str, list[int]] = defaultdict(list)

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        await asyncio.sleep(0.005)
        handled[event.did].append(event.cursor or 0)

    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, dids=dids, start_cursor=start,
                              concurrency=2, max_pending=4, backoff_max=0.2)
    task = asyncio.create_task(consumer.run())
    try:
        await write_all(pds, accounts, singles=40, batches=1, batch_size=5)
        reading = await read_resuming(pds)
        expected = {d: [seq for seq in reading.seqs[d] if seq > start] for d in dids}
        await wait_for(lambda: all(handled[d] == expected[d] for d in dids), timeout=120)
    finally:
        await consumer.stop()
        await task
    assert consumer.stats.error_frames >= 1  # the PDS did drop us, and nothing was lost or repeated
    assert "ConsumerTooSlow (Stream consumer too slow)" in caplog.text
    assert consumer.stats.bad_frames == 0 and "undecodable" not in caplog.text


async def test_unknown_error_frames_back_off_further_each_time(monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pysky_async.streams")
    delays: list[int] = []
    backoff = Feed._backoff

    def recorded(self: Feed, failures: int) -> float:
        delays.append(failures)
        return backoff(self, failures)

    monkeypatch.setattr(Feed, "_backoff", recorded)
    server = await serve([identity_frame(seq) for seq in range(1, 6)],
                         interrupt={0: (2, "SomethingNew", "try later"), 1: (0, "SomethingNew", None)})
    handler = Recorder()
    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0, backoff_max=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: len(handler.cursors) >= 5)
    finally:
        await consumer.stop()
        await task
        await server.stop()
    assert handler.cursors == [1, 2, 3, 4, 5]
    assert server.cursors == ["0", "2", "2"]
    assert delays[:2] == [1, 2]  # an error frame counts as a failure even after events
    assert consumer.stats.error_frames == 2
    assert "SomethingNew (try later)" in caplog.text and "SomethingNew (None)" in caplog.text


async def test_a_frame_above_the_socket_limit_is_skipped_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    # 17 MiB: above the old socket limit too (max(4 x max_frame_bytes, 16 MiB)), which reconnected forever
    frames = [identity_frame(seq, padding=17 * 1024 * 1024 if seq == 4 else 0) for seq in range(1, 9)]
    server = await serve(frames)
    handler = Recorder()
    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0, max_frame_bytes=10_000,
                              backoff_max=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: len(handler.cursors) >= 7)
    finally:
        await consumer.stop()
        await task
        await server.stop()
    assert handler.cursors == [1, 2, 3, 5, 6, 7, 8]  # the stream went on past it
    assert server.cursors == ["0", "4"]  # the reconnect stepped over seq 4
    assert list(consumer.stats.lost_cursors) == [4] and consumer.stats.lost_frames == 1
    assert "1 frames lost" in consumer.stats.summary()
    assert "after cursor 3 is larger than the socket's limit of 40000 bytes" in caplog.text
    assert "reconnecting after seq 4" in caplog.text


async def test_jetstream_stops_on_a_message_above_the_socket_limit() -> None:
    connections: list[str | None] = []

    async def subscribe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connections.append(request.query.get("cursor"))
        for n in (1, 2):
            record = {"$type": "app.bsky.feed.post", "text": "x" * (200_000 if n == 2 else 1)}
            await ws.send_str(json.dumps({"did": "did:plc:a", "time_us": 1_700_000_000_000_000 + n, "kind": "commit",
                                          "commit": {"rev": "r", "operation": "create", "rkey": f"k{n}",
                                                     "collection": "app.bsky.feed.post", "record": record}}))
        await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/subscribe", subscribe)
    runner, port = await start_app(app)
    consumer = StreamConsumer(JetstreamSource([f"ws://127.0.0.1:{port}"]), Recorder(), max_frame_bytes=10_000,
                              backoff_max=0.05)
    try:
        with pytest.raises(StreamError, match="raise max_frame_bytes"):
            await asyncio.wait_for(consumer.run(), 60)  # before the fix: reconnected forever
    finally:
        await runner.cleanup()
    assert len(connections) == OVERSIZE_ATTEMPTS


async def test_silence_is_detected_within_silence_timeout() -> None:
    silence_timeout = 2.0
    server = await serve([identity_frame(seq) for seq in range(1, 4)], silent=True)
    handled_at: list[float] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        handled_at.append(asyncio.get_running_loop().time())

    feed_backoff = 0.05
    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0, silence_timeout=silence_timeout,
                              backoff_max=feed_backoff)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: len(server.cursors) >= 2)
    finally:
        await consumer.stop()
        await task
        await server.stop()
    assert server.cursors == ["0", "3"] and consumer.stats.silent_reconnects >= 1
    # the reconnect follows the silence after silence_timeout, the close's short wait for an answer the
    # hung server never sends (CLOSE_TIMEOUT) and a back-off; the old code waited 10 s for that answer
    # (about 12 s here); the bound has several seconds of slack for a loaded machine
    took = server.connected_at[1] - handled_at[-1]
    assert silence_timeout <= took < silence_timeout + CLOSE_TIMEOUT + feed_backoff + 4.0
