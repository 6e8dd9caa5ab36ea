"""Firehose frames recorded once from a real reference PDS, and a loopback server replaying them:
what bench_streams.py and bench_verify.py both measure on.

    .venv/bin/python benchmarks/firehose_recording.py FILE COUNT   # the replay server alone

A recording is a file of length-prefixed frames (4 bytes big-endian, then the frame), kept in the
temp directory between runs.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def renumbered(path: Path, count: int) -> list[bytes]:
    """The recorded frames, repeated as needed, with seqs 1..``count`` (each once): with ``count``
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
        out.append(libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor(body))
    return out


def serve(path: Path, count: int) -> None:
    """Print the port, then send every frame with seq > cursor to each connection, then idle."""
    from aiohttp import web

    sys.path.insert(0, str(ROOT))
    from tests.streams.loopback import start_app

    frames = renumbered(path, count)

    async def subscribe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        for frame in frames[int(request.query.get("cursor", "0")):]:
            await ws.send_bytes(frame)
        await ws.receive()
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.sync.subscribeRepos", subscribe)
        _runner, port = await start_app(app)
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def replay_server(path: Path, count: int, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """The replay server of ``count`` renumbered frames in its own process; yields its port."""
    server = subprocess.Popen([sys.executable, __file__, str(path), str(count)], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline())
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
