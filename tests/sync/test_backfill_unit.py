"""The backfill runner against an injected "fetch a verified repo": events, state, resume, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async import InvalidInput, VerificationError
from pysky_async._storage.repo_revs import RepoRevRepository
from pysky_async._storage.store import Store
from pysky_async._streams import CommitEvent, EventContext, FirehoseSource, StreamConsumer, StreamEvent
from pysky_async._sync.backfill import Backfill

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Record:
    collection: str
    rkey: str
    cid: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Repo:
    did: str
    rev: str
    records: list[Record] = field(default_factory=list)


def repo(did: str, rev: str, n: int) -> Repo:
    return Repo(did, rev, [Record("app.bsky.feed.post" if i % 2 else "app.bsky.feed.like", f"r{i}", f"bafy{did[-1]}{i}",
                                  {"n": i}) for i in range(n)])


REPOS = {"did:plc:a": repo("did:plc:a", "3kaaaaaaaaaa2", 5), "did:plc:b": repo("did:plc:b", "3kaaaaaaaaab2", 3),
         "did:plc:c": repo("did:plc:c", "3kaaaaaaaaac2", 4)}


class Fetch:
    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.calls: list[tuple[str, str | None]] = []

    async def __call__(self, did: str, host: str | None) -> Repo:
        self.calls.append((did, host))
        if did in self.bad:
            raise VerificationError(f"the commit of {did} is not signed by its #atproto key", reason="signature")
        return REPOS[did]


async def test_backfill_hands_records_on_once_and_resumes(store: Store) -> None:
    await store.execute_sql("CREATE TABLE effect (did VARCHAR(64), rkey VARCHAR(64), PRIMARY KEY (did, rkey))")
    events: list[CommitEvent] = []

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        assert isinstance(event, CommitEvent)
        events.append(event)
        (op,) = event.ops

        async def effect(session: AsyncSession) -> None:
            await session.execute(text("INSERT INTO effect VALUES (:d, :r)"), {"d": event.did, "r": op.rkey})

        ctx.on_commit(effect)

    fetch = Fetch(bad={"did:plc:b"})

    async def host_of(did: str) -> str:
        return "https://pds.example"

    job = Backfill(handler, store=store, name="job", fetch=fetch, dids=list(REPOS), host_of=host_of,
                   collections=["app.bsky.feed.post"], concurrency=2, per_host=1, rate=1000)
    stats = await job.run()
    assert (stats.repos, stats.done, stats.already_done, list(stats.failed)) == (3, 2, 0, ["did:plc:b"])
    assert "signature" in stats.failed["did:plc:b"] and "VerificationError" in stats.failed["did:plc:b"]
    assert stats.records == 2 + 2  # the posts of a (r1, r3) and c (r1, r3)
    assert all(e.live is False and e.cursor is None and e.ops[0].action == "create" for e in events)
    assert {(e.did, e.rev) for e in events} == {("did:plc:a", "3kaaaaaaaaaa2"), ("did:plc:c", "3kaaaaaaaaac2")}
    assert all(host == "https://pds.example" for _, host in fetch.calls)

    fetch.bad.clear()  # a rerun under the same name: a and c are skipped, b is retried
    again = await Backfill(handler, store=store, name="job", fetch=fetch, dids=list(REPOS),
                           collections=["app.bsky.feed.post"]).run()
    assert (again.done, again.already_done, again.failed) == (1, 2, {})
    assert [d for d, _ in fetch.calls].count("did:plc:a") == 1
    rows = await store.execute_sql("SELECT did, rkey FROM effect ORDER BY did, rkey")
    assert [tuple(r) for r in rows] == [("did:plc:a", "r1"), ("did:plc:a", "r3"), ("did:plc:b", "r1"),
                                        ("did:plc:c", "r1"), ("did:plc:c", "r3")]
    async with store.transaction() as session:
        state = await RepoRevRepository(session).backfilled("job")
    assert {d: (r.rev, r.backfill) for d, r in state.items()} == {d: (r.rev, "done") for d, r in REPOS.items()}


async def test_a_live_consumer_holds_backfilling_repos_and_skips_what_the_backfill_covered(store: Store) -> None:
    async def handler(event: StreamEvent, ctx: EventContext) -> None: ...

    live = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), handler, store=store, name="job")

    async def listing() -> AsyncIterator[str]:
        for did in REPOS:
            yield did

    job = Backfill(handler, store=store, name="job", fetch=Fetch(set()), listing=listing(), live=live)
    assert await job.prepare() == list(REPOS)
    assert live.revs.held == 3 and live.revs.gate("did:plc:a") is not None
    await job.run()
    assert live.revs.held == 0
    assert not await live.revs.admit("did:plc:a", "3kaaaaaaaaaa2")  # at the backfilled rev: skipped
    assert await live.revs.admit("did:plc:a", "3kaaaaaaaaaa3")  # above it: applies
    with pytest.raises(InvalidInput, match="same name"):
        Backfill(handler, store=store, name="other", fetch=Fetch(set()), dids=[], live=live)
    with pytest.raises(InvalidInput, match="dids="):
        Backfill(handler, store=store, name="job", fetch=Fetch(set()))


async def test_a_hosts_slot_is_held_for_the_download_only(store: Store) -> None:
    # per_host=1: the second repo's download must be able to start while the first one is still being
    # verified (here the first one's verification waits for it: with the slot held through the
    # verification, this deadlocks and the wait_for below fails)
    downloads: list[str] = []
    second = asyncio.Event()

    async def download(did: str, host: str | None) -> bytes:
        downloads.append(did)
        if len(downloads) == 2:
            second.set()
        return did.encode()

    async def verify(did: str, car: bytes) -> Repo:
        assert car == did.encode()
        if did == downloads[0]:
            await second.wait()
        return REPOS[did]

    async def handler(event: StreamEvent, ctx: EventContext) -> None: ...

    job = Backfill(handler, store=store, name="job", download=download, verify=verify, dids=list(REPOS),
                   per_host=1, concurrency=2)
    stats = await asyncio.wait_for(job.run(), 120)  # a deadlock guard, not a timing assertion
    assert stats.done == 3 and not stats.failed and sorted(downloads) == sorted(REPOS)
    with pytest.raises(InvalidInput, match="download= and verify="):
        Backfill(handler, store=store, name="job", download=download, dids=[])
    with pytest.raises(InvalidInput, match="download= and verify="):
        Backfill(handler, store=store, name="job", fetch=Fetch(set()), download=download, verify=verify, dids=[])


async def test_a_group_of_repos_is_marked_backfilled_in_one_statement(store: Store) -> None:
    # a failed repo becomes done (its reason cleared), a new one is inserted, a live-only rev is kept beside
    async with store.transaction() as session:
        revs = RepoRevRepository(session)
        await revs.mark_failed("job", "did:plc:a", "HTTP 502")
        await revs.advance("job", {"did:plc:c": "3kaaaaaaaaac9"})
    async with store.transaction() as session:
        await RepoRevRepository(session).mark_backfilled_many("job", {"did:plc:a": "3kaaaaaaaaaa2",
                                                                      "did:plc:b": "3kaaaaaaaaab2"})
        await RepoRevRepository(session).mark_backfilled_many("job", {})
    async with store.transaction() as session:
        rows = await RepoRevRepository(session).get_many("job", ["did:plc:a", "did:plc:b", "did:plc:c"])
    assert {did: (row.rev, row.backfill, row.reason) for did, row in rows.items()} == {
        "did:plc:a": ("3kaaaaaaaaaa2", "done", None), "did:plc:b": ("3kaaaaaaaaab2", "done", None),
        "did:plc:c": ("3kaaaaaaaaac9", None, None)}


def test_the_cli_drops_lines_of_repos_whose_backfill_did_not_commit(tmp_path: Any) -> None:
    from pysky_async._sync.backfill_cli import drop_uncommitted

    out = tmp_path / "repos.jsonl"
    out.write_text('{"did": "did:plc:a", "path": "x/1"}\n{"did": "did:plc:b", "path": "x/1"}\n'
                   '{"did": "did:plc:a", "path": "x/2"}\n{"did": "did:plc:b", "pa')  # b: killed mid-write
    assert drop_uncommitted(str(out), {"did:plc:a"}) == 2
    assert out.read_text() == '{"did": "did:plc:a", "path": "x/1"}\n{"did": "did:plc:a", "path": "x/2"}\n'
    assert drop_uncommitted(str(out), {"did:plc:a"}) == 0
    assert drop_uncommitted(str(tmp_path / "missing.jsonl"), set()) == 0
