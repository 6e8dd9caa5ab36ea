"""CommitVerifier(processes=N): commits proven in worker processes, with the same verdicts as on the loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import libipld
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import StreamError
from pysky_async._streams import CommitVerifier

from .repo_builder import RepoWriter, did_document, replace_block
from .test_verify_policy import DID, event, history, make_verifier, tampered

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["signature", "proofs", "inductive"])
@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.SECP256R1()], ids=["secp256k1", "p256"])
async def test_genuine_commits_are_proven_in_the_worker(mode: Any, curve: ec.EllipticCurve) -> None:
    repo = RepoWriter(DID, key=ec.generate_private_key(curve))
    async with make_verifier(repo, verify=mode, processes=1) as verifier:
        for body in history(repo):
            assert await verifier.check(event(body))
    assert (verifier.verified, verifier.failed, len(verifier.desynchronized)) == (11, 0, 0)
    assert verifier.offloaded == 11  # each one went to the worker: the pool was used, not bypassed


async def test_each_tampering_is_refused_by_the_worker_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    repo = RepoWriter(DID)
    cases = tampered(repo)
    cases["op-invalid"] = {**cases["prev-data"], "ops": [{**cases["prev-data"]["ops"][0], "path": "no-slash"}]}
    async with make_verifier(repo, verify="inductive", chain=False, processes=1) as verifier:
        with caplog.at_level(logging.WARNING, "pysky_async.streams"):
            for reason, body in cases.items():
                assert not await verifier.check(event(body)), reason
    assert verifier.failures == {reason: 1 for reason in cases}
    assert verifier.offloaded == len(cases) and verifier.verified == 0
    assert verifier.key_refreshes == 1  # the re-signed commit: the key was fetched again, as on the loop
    logged = [r.getMessage() for r in caplog.records if "failed verification" in r.getMessage()]
    assert all(f"[{reason}]" in line for reason, line in zip(cases, logged, strict=True))


async def test_a_rotated_key_is_fetched_again_and_the_commit_verifies() -> None:
    repo = RepoWriter(DID)
    body = repo.commit([("create", "app.bsky.feed.post/a", {"text": "a"})])
    served = iter([ec.generate_private_key(ec.SECP256K1()), repo.key])  # a stale key first, then the new one

    async def resolve(did: str) -> dict[str, Any]:
        return did_document(did, next(served))

    async with CommitVerifier(resolve, processes=1) as verifier:
        assert await verifier.check(event(body))
    assert verifier.key_refreshes == 1 and verifier.offloaded == 1 and verifier.failed == 0


async def test_when_a_worker_dies_the_loop_proves_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    repo = RepoWriter(DID)
    bodies = history(repo)
    async with make_verifier(repo, verify="inductive", processes=1) as verifier:
        assert await verifier.check(event(bodies[0])) and verifier.offloaded == 1
        pool = verifier._pool
        assert pool is not None
        with caplog.at_level(logging.WARNING, "pysky_async.streams"):
            pool._workers[0].process.kill()
            await asyncio.wait_for(pool._workers[0].process.wait(), 30)
            for _ in range(100):  # the reader sees the pipe close
                if pool.broken:
                    break
                await asyncio.sleep(0.05)
            for body in bodies[1:]:
                assert await verifier.check(event(body))
        forged = repo.commit([("create", "app.bsky.feed.post/x", {"text": "x"})])
        forged = replace_block(forged, forged["ops"][0]["cid"], libipld.encode_dag_cbor({"text": "forged"}))
        assert not await verifier.check(event(forged))
    assert verifier.offloaded == 1 and verifier.verified == len(bodies) and verifier.failures == {"block-cid": 1}
    assert any("proof worker process ended" in r.getMessage() for r in caplog.records)


async def test_aclose_stops_the_workers_and_processes_must_not_be_negative() -> None:
    repo = RepoWriter(DID)
    verifier = make_verifier(repo, processes=2)
    async with verifier:
        pool = verifier._pool
        assert pool is not None and len(pool._workers) == 2
        processes = [w.process for w in pool._workers]
    assert verifier._pool is None and all(p.returncode is not None for p in processes)
    with pytest.raises(StreamError, match="processes must be 0"):
        make_verifier(repo, processes=-1)
