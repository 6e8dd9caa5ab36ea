"""Genuine and forged commits for the CommitVerifier tests (on the loop and in worker processes), and a
consumer run over their frames.

Each forgery changes one thing of a signed commit body: a record's bytes (``block-cid``), an op
dropped (``prev-data``: only the inductive check sees it), another key's signature (``signature``),
an op pointing at another record (``op-mismatch``).
"""

from __future__ import annotations

from typing import Any

import libipld
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async._streams import CommitVerifier, EventContext, FirehoseSource, StreamConsumer, StreamEvent, decode_frame

from .firehose_server import FakeFirehose
from .repo_builder import RepoWriter, did_document, frame, replace_block
from .workload import run_until

DID = "did:plc:abcdefghijklmnopqrstuvwx"


def make_verifier(repo: RepoWriter, **options: Any) -> CommitVerifier:
    """A verifier that resolves every DID to a document with ``repo``'s key."""
    async def resolve(did: str) -> dict[str, Any]:
        return did_document(did, repo.key)

    return CommitVerifier(resolve, **options)


def event(body: dict[str, Any], kind: str = "#commit") -> StreamEvent:
    """The event of a frame body, its CAR slice kept (what the verifier proves)."""
    return decode_frame(frame(body, kind), keep_commit=True)


def history(repo: RepoWriter) -> list[dict[str, Any]]:
    """11 genuine commits of ``repo``: 20 creates in one, then 5 updates and 5 deletes."""
    bodies = [repo.commit([("create", f"app.bsky.feed.post/{i:013d}", {"text": str(i)}) for i in range(20)])]
    bodies += [repo.commit([("update", f"app.bsky.feed.post/{i:013d}", {"text": "x"})]) for i in range(5)]
    bodies += [repo.commit([("delete", f"app.bsky.feed.post/{i:013d}", None)]) for i in range(5, 10)]
    return bodies


def forged_record(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its first op's record bytes changed (``block-cid``)."""
    return replace_block(body, body["ops"][0]["cid"], libipld.encode_dag_cbor({"text": "forged"}))


def dropped_op(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its first op left out (``prev-data``)."""
    return {**body, "ops": body["ops"][1:]}


def tampered(repo: RepoWriter) -> dict[str, dict[str, Any]]:
    """One forgery of a fresh two-record commit of ``repo`` per reason the verifier gives."""
    body = repo.commit([("create", "app.bsky.feed.post/a", {"text": "a"}), ("create", "app.bsky.feed.post/b", {})])
    return {
        "block-cid": forged_record(body),
        "prev-data": dropped_op(body),
        "signature": repo.resign(body, ec.generate_private_key(ec.SECP256K1())),
        "op-mismatch": {**body, "ops": [{**body["ops"][0], "cid": body["ops"][1]["cid"]}, body["ops"][1]]},
    }


async def consume(frames: list[bytes], verifier: CommitVerifier) -> tuple[list[StreamEvent], StreamConsumer]:
    """Run a ``StreamConsumer`` with ``verifier`` from cursor 0 over ``frames`` (a loopback firehose,
    seqs 1..n) until its cursor reaches the last; returns the events its handler got, and the consumer."""
    server = FakeFirehose(frames)
    await server.start()
    seen: list[StreamEvent] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        seen.append(event)

    consumer = StreamConsumer(FirehoseSource(server.url), handler, start_cursor=0, verifier=verifier)
    try:
        await run_until(consumer, lambda: (consumer.cursor or 0) >= len(frames))
    finally:
        await server.stop()
    return seen, consumer
