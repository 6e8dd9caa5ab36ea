"""CommitVerifier(processes=N): commits proven in worker processes, with the same verdicts as on the loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import StreamError
from pysky_async._streams import CommitVerifier

from .forged_commits import DID, consume, dropped_op, event, forged_record, history, make_verifier, tampered
from .repo_builder import RepoWriter, did_document, frame

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
        forged = forged_record(repo.commit([("create", "app.bsky.feed.post/x", {"text": "x"})]))
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


async def test_a_consumer_with_a_worker_drops_forged_commits_and_keeps_each_repos_order() -> None:
    """Through StreamConsumer: repos interleaved, commits proven in the worker or on the loop; the forged
    ones (a record's bytes changed, an op dropped) never reach the handler, the rest arrive in order."""
    repos = [RepoWriter(f"did:plc:{n:024d}") for n in range(3)]
    keys = {repo.did: repo.key for repo in repos}
    bodies: list[dict[str, Any]] = []
    forged: set[int] = set()
    for round_ in range(12):
        for repo in repos:
            body = repo.commit([("create", f"app.bsky.feed.post/{round_:04d}a", {"text": "a"}),
                                ("create", f"app.bsky.feed.post/{round_:04d}b", {"text": "b"})])
            if round_ in (4, 9) and repo is repos[1]:
                forged.add(len(bodies) + 1)
                body = forged_record(body) if round_ == 4 else dropped_op(body)
            bodies.append(body)
    frames = [frame({**body, "seq": seq}) for seq, body in enumerate(bodies, 1)]

    async def resolve(did: str) -> dict[str, Any]:
        return did_document(did, keys[did])

    async with CommitVerifier(resolve, verify="inductive", chain=False, processes=1) as verifier:
        seen, consumer = await consume(frames, verifier)
    assert sorted(e.cursor or 0 for e in seen) == [seq for seq in range(1, len(frames) + 1) if seq not in forged]
    for repo in repos:
        cursors = [e.cursor or 0 for e in seen if e.did == repo.did]
        assert cursors == sorted(cursors)
    assert verifier.failures == {"block-cid": 1, "prev-data": 1} and consumer.stats.bad_signatures == 2
    assert verifier.offloaded > 0 and verifier.verified == len(frames) - 2


async def test_workers_that_cannot_start_leave_the_proofs_to_the_loop(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    repo = RepoWriter(DID)
    with caplog.at_level(logging.WARNING, "pysky_async.streams"):
        async with make_verifier(repo, processes=1) as verifier:
            for body in history(repo):
                assert await verifier.check(event(body))
    assert verifier.verified == 11 and verifier.offloaded == 0
    assert any("cannot start proof worker processes" in r.getMessage() for r in caplog.records)
