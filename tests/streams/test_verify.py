"""Commit signatures checked against the repo's #atproto key from its DID document (real PDS + PLC)."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from pathlib import Path
from typing import Any

import libipld
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import AsyncBskyClient
from pysky_async._streams import CommitEvent, EventContext, FirehoseSource, StreamConsumer, StreamEvent, SyncEvent
from pysky_async._streams.verify import SignatureVerifier, signing_key

from ..realnet.pds import PdsServer
from .conftest import Written
from .workload import wait_for

pytestmark = pytest.mark.anyio


def other_key_document(document: dict[str, Any]) -> dict[str, Any]:
    """The same DID document with a different (fresh) secp256k1 #atproto key, as a Multikey."""
    point = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    forged = copy.deepcopy(document)
    for method in forged["verificationMethod"]:
        if method["id"].endswith("#atproto"):
            method["type"] = "Multikey"
            method["publicKeyMultibase"] = libipld.encode_multibase("z", b"\xe7\x01" + point)
    return forged


async def consume(pds: PdsServer, did: str, verifier: SignatureVerifier, last_seq: int) -> list[StreamEvent]:
    seen: list[StreamEvent] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        seen.append(event)

    consumer = StreamConsumer(FirehoseSource(pds.listen_url), handler, dids=[did], start_cursor=0, verifier=verifier)
    task = asyncio.create_task(consumer.run())
    await wait_for(lambda: (consumer.cursor or 0) >= last_seq)
    await consumer.stop()
    await task
    assert consumer.stats.bad_signatures == verifier.failed
    return seen


async def test_signatures_verify_and_a_rotated_key_is_refetched(pds: PdsServer, written: Written,
                                                               tmp_path: Path) -> None:
    did = written.accounts[3].did
    commits = sum(1 for s in written.reading.seqs[did] if s in written.reading.ops)
    async with AsyncBskyClient(auth_host=pds.listen_url, plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/v.sqlite3") as bsky:
        document = await bsky.identity.resolve_did(did)
        assert signing_key(document).curve.name == "secp256k1"  # the PDS's legacy key encoding
        forged_document = other_key_document(document)
        assert signing_key(forged_document).public_numbers() != signing_key(document).public_numbers()  # Multikey
        verifier = SignatureVerifier(bsky.identity.resolve_did)
        seen = await consume(pds, did, verifier, written.reading.last_seq)
        syncs = sum(isinstance(e, SyncEvent) for e in seen)  # #sync events carry a signed commit too
        stale = sum(d == did for d in written.reading.stale_syncs.values())  # verified, then skipped by rev
        checked = commits + syncs + stale
        assert (verifier.verified, verifier.failed) == (checked, 0)
        assert sum(isinstance(e, CommitEvent) for e in seen) == commits

        calls: Counter[str] = Counter()

        async def rotated(d: str) -> dict[str, Any]:  # the first answer carries an old key
            calls[d] += 1
            document = await bsky.identity.resolve_did(d)
            return other_key_document(document) if calls[d] == 1 else document

        verifier = SignatureVerifier(rotated)
        await consume(pds, did, verifier, written.reading.last_seq)
        assert (verifier.verified, verifier.failed, verifier.key_refreshes, calls[did]) == (checked, 0, 1, 2)

        async def forged(d: str) -> dict[str, Any]:
            return other_key_document(await bsky.identity.resolve_did(d))

        dropping = SignatureVerifier(forged, policy="drop")
        seen = await consume(pds, did, dropping, written.reading.last_seq)
        assert dropping.failed == checked and dropping.verified == 0
        assert not any(isinstance(e, CommitEvent) for e in seen)  # the handler never saw one
        assert seen  # identity and account events carry no signature and pass

        passing = SignatureVerifier(forged, policy="pass")
        seen = await consume(pds, did, passing, written.reading.last_seq)
        assert passing.failed == checked
        assert sum(isinstance(e, CommitEvent) for e in seen) == commits
