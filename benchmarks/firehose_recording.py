"""Firehose frames recorded once from a real reference PDS, and a loopback server replaying them:
what bench_streams.py and bench_verify.py both measure on.

    .venv/bin/python benchmarks/firehose_recording.py FILE COUNT   # the replay server alone

A recording is a file of length-prefixed frames (4 bytes big-endian, then the frame), kept in the
temp directory between runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
Frame = tuple[dict[str, Any], dict[str, Any]]
"""A frame decoded: its header and its body."""


def record(path: Path, *, accounts: int, singles: int, batches: int, batch_size: int = 10,
           documents: Path | None = None) -> None:
    """Write a workload on a fresh reference PDS (``accounts`` accounts creating, updating and
    deleting records: ``singles`` single writes and ``batches`` applyWrites of ``batch_size``) and
    save its firehose frames into ``path``; with ``documents``, the accounts' DID documents too."""
    sys.path.insert(0, str(ROOT))
    import aiohttp
    import httpx
    from tests.realnet.pds import PdsServer
    from tests.streams.conftest import new_accounts
    from tests.streams.workload import write_all

    async def frames(url: str) -> list[bytes]:
        out: list[bytes] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as ws:
            while True:
                try:
                    out.append((await ws.receive(timeout=2.0)).data)
                except asyncio.TimeoutError:
                    return out

    pds = PdsServer.start()
    try:
        made = new_accounts(pds, accounts)
        asyncio.run(write_all(pds, made, singles=singles, batches=batches, batch_size=batch_size))
        recorded = asyncio.run(frames(f"{pds.listen_url.replace('http', 'ws', 1)}"
                                      "/xrpc/com.atproto.sync.subscribeRepos?cursor=0"))
        docs = {a.did: httpx.get(f"{pds.plc_url}/{a.did}").json() for a in made} if documents else {}
    finally:
        pds.stop()
    path.write_bytes(b"".join(struct.pack(">I", len(f)) + f for f in recorded))
    if documents is not None:
        documents.write_text(json.dumps(docs))
    print(f"recorded {len(recorded)} frames from the reference PDS into {path}", file=sys.stderr)


def recorded(path: Path) -> list[bytes]:
    """The frames as recorded."""
    data, out, at = path.read_bytes(), [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        out.append(data[at + 4: at + 4 + size])
        at += 4 + size
    return out


def renumbered_parts(path: Path, count: int) -> list[Frame]:
    """The recorded frames, repeated as needed, with seqs 1..``count`` (each once), decoded: with ``count``
    the recording's length, every repo's chain of commits stays intact. Each repeat gets fresh revs that
    sort above the last round's (``z0001<rev>``...), or a consumer's rev guard would skip it as a replay."""
    import libipld

    parts = [libipld.decode_dag_cbor_multi(f) for f in recorded(path)]
    out = []
    for seq in range(1, count + 1):
        header, body = parts[(seq - 1) % len(parts)]
        body = {**body, "seq": seq}
        repeat = (seq - 1) // len(parts)
        if repeat and isinstance(body.get("rev"), str):
            body["rev"] = f"z{repeat:04d}{body['rev']}"
        out.append((header, body))
    return out


def renumbered(path: Path, count: int) -> list[bytes]:
    """``renumbered_parts``, encoded as frames."""
    import libipld

    return [libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor(body)
            for header, body in renumbered_parts(path, count)]


def serve_frames(frames: Sequence[Frame], rate: float = 0.0) -> None:
    """Print the port; send every frame after the cursor to each connection (``rate`` > 0: that many per
    second, each stamped with the time it is sent in its ``time``), then idle."""
    import libipld
    from aiohttp import web

    sys.path.insert(0, str(ROOT))
    from tests.streams.loopback import start_app

    encoded = [libipld.encode_dag_cbor(h) + libipld.encode_dag_cbor(b) for h, b in frames] if not rate else []

    async def subscribe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        start = int(request.query.get("cursor", "0"))
        if not rate:
            for frame in encoded[start:]:
                await ws.send_bytes(frame)
        else:
            t0 = time.monotonic()
            for n, (header, body) in enumerate(frames[start:]):
                delay = t0 + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
                await ws.send_bytes(libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor({**body, "time": now}))
        await ws.receive()
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.sync.subscribeRepos", subscribe)
        _runner, port = await start_app(app)
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve(path: Path, count: int) -> None:
    """The replay server of ``count`` renumbered frames (``serve_frames``)."""
    serve_frames(renumbered_parts(path, count))


@contextmanager
def server_process(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """A replay server started by the script ``argv`` (which prints its port first) in its own process;
    yields its port and process id."""
    server = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline()), server.pid
    finally:
        server.terminate()
        server.wait()


@contextmanager
def replay_server(path: Path, count: int, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """The replay server of ``count`` renumbered frames in its own process; yields its port."""
    with server_process([__file__, str(path), str(count)], env) as (port, _pid):
        yield port


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
