"""CommitVerifier: modes, drop/flag policy, counting by reason, chain breaks queued for a resync."""

from __future__ import annotations

import logging
from typing import Any

import libipld
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async._storage.repo_sync import DESYNCHRONIZED, RepoSyncStateRepository
from pysky_async._storage.store import Store
from pysky_async._streams import CommitEvent, SyncEvent, decode_frame
from pysky_async._sync.blocks import cid_str

from .forged_commits import DID, consume, event, history, make_verifier, tampered
from .repo_builder import RepoWriter, frame, replace_block

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["signature", "proofs", "inductive"])
async def test_genuine_commits_verify_in_every_mode(mode: Any) -> None:
    repo = RepoWriter(DID, key=ec.generate_private_key(ec.SECP256R1()))  # P-256 repos too
    verifier = make_verifier(repo, verify=mode)
    for body in history(repo):
        assert await verifier.check(event(body))
    assert (verifier.verified, verifier.failed, len(verifier.desynchronized)) == (11, 0, 0)


async def test_each_tampering_is_dropped_counted_and_logged_by_reason(caplog: pytest.LogCaptureFixture) -> None:
    repo = RepoWriter(DID)
    verifier = make_verifier(repo, verify="inductive", chain=False)
    cases = tampered(repo)
    with caplog.at_level(logging.WARNING, "pysky_async.streams"):
        for reason, body in cases.items():
            assert not await verifier.check(event(body)), reason
    assert verifier.failures == {reason: 1 for reason in cases}
    assert verifier.verified == 0 and verifier.failed == len(cases)
    logged = [r.getMessage() for r in caplog.records if "failed verification" in r.getMessage()]
    assert len(logged) == len(cases) and all(DID in line and "dropped" in line for line in logged)
    assert all(f"[{reason}]" in line for reason, line in zip(cases, logged, strict=True))


async def test_flag_policy_hands_the_event_on_marked() -> None:
    repo = RepoWriter(DID)
    verifier = make_verifier(repo, verify="inductive", policy="flag", chain=False)
    bad = event(tampered(repo)["prev-data"])
    assert not await verifier.check(bad)
    assert isinstance(bad, CommitEvent) and bad.invalid == "prev-data"
    good = event(repo.commit([("create", "app.bsky.feed.post/c", {})]))
    assert await verifier.check(good) and isinstance(good, CommitEvent) and good.invalid is None


async def test_proofs_mode_cannot_see_a_dropped_op_but_inductive_can() -> None:
    repo = RepoWriter(DID)
    dropped = tampered(repo)["prev-data"]
    assert await make_verifier(repo, verify="proofs").check(event(dropped))
    assert not await make_verifier(repo, verify="inductive").check(event(dropped))


async def test_a_commit_without_its_blocks_or_too_big_fails() -> None:
    repo = RepoWriter(DID)
    body = repo.commit([("create", "app.bsky.feed.post/a", {})])
    verifier = make_verifier(repo)
    assert not await verifier.check(decode_frame(frame(body)))  # keep_commit off: nothing to prove
    assert not await verifier.check(event({**body, "tooBig": True}))
    assert verifier.failures == {"no-blocks": 1, "too-big": 1}


async def test_a_chain_gap_marks_the_repo_desynchronized_in_the_store(store: Store) -> None:
    repo = RepoWriter(DID)
    verifier = make_verifier(repo, verify="inductive", store=store)
    bodies = history(repo)
    for body in bodies[:3]:
        assert await verifier.check(event(body))
    assert not verifier.desynchronized
    # one commit lost in transit: the next one's since/prevData do not follow the last verified head
    assert await verifier.check(event(bodies[4]))  # proven on its own: still delivered
    assert verifier.desynchronized == {DID: 1}
    async with store.transaction() as session:
        state = await RepoSyncStateRepository(session).get(DID)
        queued = await RepoSyncStateRepository(session).desynchronized()
    assert state is not None and state.status == DESYNCHRONIZED and state.rev == bodies[4]["rev"]
    assert state.data_cid is not None and "gap" in (state.reason or "")
    assert [q.did for q in queued] == [DID]
    assert not await verifier.check(event(bodies[3]))  # an older rev now is a replay
    assert verifier.failures == {"stale-rev": 1}
    await verifier.mark_active(DID)
    async with store.transaction() as session:
        assert await RepoSyncStateRepository(session).desynchronized() == []


async def test_a_sync_event_resets_the_head_and_a_different_root_desynchronizes() -> None:
    repo = RepoWriter(DID)
    verifier = make_verifier(repo, verify="inductive")
    bodies = history(repo)
    assert await verifier.check(event(bodies[0]))
    sync = event(repo.sync(), "#sync")
    assert isinstance(sync, SyncEvent)
    assert await verifier.check(sync)  # the repo moved on (commits we never saw): a new root
    assert verifier.desynchronized == {DID: 1}
    after = repo.commit([("create", "app.bsky.feed.post/after-sync", {})])
    assert await verifier.check(event(after))  # follows the #sync's head: no new break
    assert verifier.desynchronized == {DID: 1}
    forged = {**repo.sync(), "did": "did:plc:someoneelse00000000000"}
    assert not await verifier.check(event(forged, "#sync"))
    assert verifier.failures == {"commit": 1}
    assert cid_str(repo.data).startswith("bafyrei")


async def test_the_consumer_verifies_sync_events_and_drops_forged_ones() -> None:
    """#sync frames reach the verifier through StreamConsumer: a forged one is dropped, a new root desyncs."""
    repo = RepoWriter(DID)
    stranger = RepoWriter(DID)  # the same DID, another key: a forged #sync
    bodies = [("#commit", b) for b in history(repo)[:3]]
    bodies.append(("#sync", {**stranger.sync(), "seq": 0}))
    repo.commit([("create", "app.bsky.feed.post/unseen", {})])  # a commit the stream never carried
    bodies.append(("#sync", repo.sync()))
    frames = [frame({**body, "seq": seq}, kind) for seq, (kind, body) in enumerate(bodies, 1)]
    verifier = make_verifier(repo, verify="inductive")
    seen, consumer = await consume(frames, verifier)
    assert [e.cursor for e in seen] == [1, 2, 3, 5]  # the forged #sync (4) never reached the handler
    assert verifier.failures == {"signature": 1} and consumer.stats.bad_signatures == 1
    assert verifier.desynchronized == {DID: 1}  # the genuine #sync declared a root we had not seen


async def test_a_large_commit_is_proven_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio.to_thread

    calls: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    repo = RepoWriter(DID)
    verifier = make_verifier(repo, verify="inductive")
    small = repo.commit([("create", "app.bsky.feed.post/small", {"text": "x"})])
    big = repo.commit([("create", f"app.bsky.feed.post/big{i}", {"text": "x" * 60_000}) for i in range(5)])
    assert await verifier.check(event(small)) and not calls
    assert await verifier.check(event(big)) and len(calls) == 1
    assert not await verifier.check(event(replace_block(big, big["ops"][0]["cid"], libipld.encode_dag_cbor({}))))
    assert verifier.failures == {"block-cid": 1}
