"""A write workload on the real PDS, and an independent reading of its firehose (the oracle)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import httpx
import libipld

from ..realnet.pds import Account, PdsServer

NOTE = "com.example.streamnote"
OTHER = "com.example.streamother"


async def _session(http: httpx.AsyncClient, account: Account) -> dict[str, str]:
    r = await http.post("/xrpc/com.atproto.server.createSession",
                        json={"identifier": account.handle, "password": account.password})
    r.raise_for_status()
    return {"authorization": f"Bearer {r.json()['accessJwt']}"}


async def write_account(pds: PdsServer, account: Account, *, singles: int, batches: int, batch_size: int,
                        prefix: str = "s") -> None:
    """Single creates (one event each), batched creates, then updates and deletes of the singles."""
    async with httpx.AsyncClient(base_url=pds.listen_url, timeout=180) as http:  # a loaded CI machine
        auth = await _session(http, account)

        async def call(nsid: str, body: dict[str, object]) -> None:
            (await http.post(f"/xrpc/{nsid}", json=body, headers=auth)).raise_for_status()

        for n in range(singles):
            await call("com.atproto.repo.createRecord", {"repo": account.did, "collection": NOTE if n % 4 else OTHER,
                                                         "rkey": f"{prefix}{n:05d}", "record": {"n": n},
                                                         "validate": False})
        for b in range(batches):
            writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": NOTE,
                       "rkey": f"{prefix}b{b:03d}x{i:04d}", "value": {"b": b, "i": i}} for i in range(batch_size)]
            await call("com.atproto.repo.applyWrites", {"repo": account.did, "writes": writes, "validate": False})
        for n in range(1, singles, 4)[: singles // 8]:
            await call("com.atproto.repo.putRecord", {"repo": account.did, "collection": NOTE,
                                                      "rkey": f"{prefix}{n:05d}",
                                                      "record": {"n": n, "updated": True}, "validate": False})
        for n in range(2, singles, 4)[: singles // 8]:
            await call("com.atproto.repo.deleteRecord", {"repo": account.did, "collection": NOTE,
                                                         "rkey": f"{prefix}{n:05d}"})


async def write_all(pds: PdsServer, accounts: list[Account], *, singles: int = 60, batches: int = 4,
                    batch_size: int = 100, prefix: str = "s") -> None:
    await asyncio.gather(*(write_account(pds, a, singles=singles, batches=batches, batch_size=batch_size,
                                         prefix=prefix) for a in accounts))


@dataclass
class Reading:
    """What the PDS's firehose holds: seqs per DID, in the order the server sent them."""

    seqs: dict[str, list[int]] = field(default_factory=dict)
    """The events a consumer hands on, per DID: all but ``stale_syncs``."""
    stale_syncs: dict[int, str] = field(default_factory=dict)
    """``#sync`` events (seq -> DID) at a rev their repo already had (the reference PDS follows an account's
    first ``#commit`` with a ``#sync`` at the same rev): a consumer's rev guard skips them."""
    ops: dict[int, int] = field(default_factory=dict)
    """Operations per commit seq (commits only)."""
    last_seq: int = 0

    def of(self, dids: set[str]) -> set[int]:
        return {seq for did in dids for seq in self.seqs.get(did, [])}


async def read_firehose(pds: PdsServer, *, idle: float = 1.5) -> Reading:
    """Replay the PDS's whole firehose with plain libipld (not the library) until it is idle."""
    reading = Reading()
    revs: dict[str, str] = {}
    url = f"{pds.listen_url.replace('http', 'ws', 1)}/xrpc/com.atproto.sync.subscribeRepos?cursor=0"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as ws:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                message = await ws.receive(timeout=idle)
                header, body = libipld.decode_dag_cbor_multi(message.data)
                did = body.get("repo") or body.get("did")
                rev = body.get("rev") if header["t"] in ("#commit", "#sync") else None
                if rev is not None and did in revs and rev <= revs[did]:
                    reading.stale_syncs[body["seq"]] = did
                else:
                    reading.seqs.setdefault(did, []).append(body["seq"])
                if rev is not None:
                    revs[did] = max(rev, revs.get(did, rev))
                if header["t"] == "#commit":
                    reading.ops[body["seq"]] = len(body["ops"])
                reading.last_seq = max(reading.last_seq, body["seq"])
                continue
            return reading


async def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        assert time.monotonic() < deadline, f"not true after {timeout} s"
        await asyncio.sleep(0.05)


class Runnable(Protocol):
    """A consumer: ``run()`` until ``stop()`` (StreamConsumer, a label consumer)."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until(consumer: Runnable, until: Callable[[], bool]) -> None:
    """Run ``consumer`` until ``until()`` holds (or its run ends early: its error is raised), then stop
    it and wait for the run to end."""
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: until() or task.done())
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 120)
