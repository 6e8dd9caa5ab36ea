"""Proofs on the reference PDS's real firehose, and a tampering proxy in front of it (refused, counted)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import libipld
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import AsyncBskyClient
from pysky_async._streams import CommitEvent, CommitVerifier, EventContext, FirehoseSource, StreamConsumer, StreamEvent
from pysky_async._sync.blocks import cid_for

from ..realnet.pds import PdsServer
from .conftest import Written
from .loopback import start_app
from .repo_builder import _raw_blocks, car, sign
from .workload import wait_for

pytestmark = pytest.mark.anyio
Tamper = Callable[[dict[str, Any]], dict[str, Any] | None]


def swap_record(body: dict[str, Any]) -> dict[str, Any] | None:
    """A record block's bytes changed, its CID kept."""
    target = next((op["cid"] for op in body["ops"] if op.get("cid")), None)
    if target is None:
        return None  # a delete-only commit carries no record
    forged = libipld.encode_dag_cbor({"$type": "com.example.forged", "text": "not what the author wrote"})
    sections = [(c, forged if c == target else d) for c, d in _raw_blocks(body["blocks"])]
    return {**body, "blocks": car([body["commit"]], sections)}


def drop_op(body: dict[str, Any]) -> dict[str, Any] | None:
    """The last op of the commit removed (a relay hiding a write)."""
    return {**body, "ops": body["ops"][:-1]} if body["ops"] else None


def resign(key: ec.EllipticCurvePrivateKey) -> Tamper:
    """The commit re-signed by another key (a relay forging a commit)."""

    def tamper(body: dict[str, Any]) -> dict[str, Any] | None:
        sections = _raw_blocks(body["blocks"])
        commit = libipld.decode_dag_cbor(dict(sections)[body["commit"]])
        unsigned = {k: v for k, v in commit.items() if k != "sig"}
        block = libipld.encode_dag_cbor({**unsigned, "sig": sign(key, libipld.encode_dag_cbor(unsigned))})
        others = [(c, d) for c, d in sections if c != body["commit"]]
        return {**body, "commit": cid_for(block), "blocks": car([cid_for(block)], [(cid_for(block), block), *others])}

    return tamper


class TamperingProxy:
    """A firehose in front of the PDS that changes the commits of ``dids`` with ``tamper``."""

    def __init__(self, pds: PdsServer, dids: set[str], tamper: Tamper) -> None:
        self.upstream = pds.listen_url.replace("http", "ws", 1)
        self.dids = dids
        self.tamper = tamper
        self.tampered: set[int] = set()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._upstreams: set[aiohttp.ClientWebSocketResponse] = set()

    async def __aenter__(self) -> TamperingProxy:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.sync.subscribeRepos", self._serve)
        self._runner, self.port = await start_app(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        for upstream in list(self._upstreams):
            await upstream.close()  # ends the relays (each waits on the live PDS), so the server stops at once
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        url = f"{self.upstream}/xrpc/com.atproto.sync.subscribeRepos?{request.query_string}"
        async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as upstream:
            self._upstreams.add(upstream)
            async for message in upstream:
                if message.type != aiohttp.WSMsgType.BINARY or ws.closed:
                    break
                await ws.send_bytes(self._change(message.data))
            self._upstreams.discard(upstream)
        await ws.close()
        return ws

    def _change(self, data: bytes) -> bytes:
        header, body = libipld.decode_dag_cbor_multi(data)
        if header.get("t") != "#commit" or body.get("repo") not in self.dids:
            return data
        changed = self.tamper(body)
        if changed is None:
            return data
        self.tampered.add(body["seq"])
        return libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor(changed)


async def consume(url: str, dids: set[str], verifier: CommitVerifier, last_seq: int) -> list[StreamEvent]:
    seen: list[StreamEvent] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        seen.append(event)

    consumer = StreamConsumer(FirehoseSource(url), handler, dids=dids, start_cursor=0, verifier=verifier)
    task = asyncio.create_task(consumer.run())
    await wait_for(lambda: (consumer.cursor or 0) >= last_seq, timeout=120)
    await consumer.stop()
    await task
    assert consumer.stats.bad_signatures == verifier.failed  # the consumer's count of refused events
    return seen


@pytest.mark.parametrize("mode", ["proofs", "inductive"])
async def test_every_real_commit_proves_and_the_chains_hold(pds: PdsServer, written: Written, tmp_path: Path,
                                                            mode: Any) -> None:
    commits = {seq for seq in written.seqs if seq in written.reading.ops}
    async with AsyncBskyClient(auth_host=pds.listen_url, plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/v.sqlite3") as bsky:
        verifier = CommitVerifier(bsky.identity.resolve_did, verify=mode)
        seen = await consume(pds.listen_url, written.dids, verifier, written.reading.last_seq)
    assert verifier.failures == {} and not verifier.desynchronized
    handled = {e.cursor for e in seen if isinstance(e, CommitEvent)}
    assert handled == commits
    actions = {op.action for e in seen if isinstance(e, CommitEvent) for op in e.ops}
    assert actions == {"create", "update", "delete"}
    assert verifier.verified >= len(commits)


@pytest.mark.parametrize("attack", ["record-bytes", "op-dropped", "resigned"])
async def test_a_tampering_relay_is_refused_every_time_and_counted(pds: PdsServer, written: Written,
                                                                   tmp_path: Path, attack: str) -> None:
    tamper: Tamper = {"record-bytes": swap_record, "op-dropped": drop_op,
                      "resigned": resign(ec.generate_private_key(ec.SECP256K1()))}[attack]
    reason = {"record-bytes": "block-cid", "op-dropped": "prev-data", "resigned": "signature"}[attack]
    async with AsyncBskyClient(auth_host=pds.listen_url, plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/v.sqlite3") as bsky, \
            TamperingProxy(pds, written.dids, tamper) as proxy:
        verifier = CommitVerifier(bsky.identity.resolve_did, verify="inductive")
        seen = await consume(proxy.url, written.dids, verifier, written.reading.last_seq)
    assert len(proxy.tampered) > 100
    assert verifier.failures == {reason: len(proxy.tampered)}  # refused every time, counted by reason
    handled = {e.cursor for e in seen if isinstance(e, CommitEvent)}
    assert not handled & proxy.tampered  # never handed to the handler
    commits = {seq for seq in written.seqs if seq in written.reading.ops}
    assert handled == commits - proxy.tampered  # the untouched ones still pass
