"""The server's answer wins: PostgreSQL stopped for a few seconds while creates run against the
real PDS. A create the PDS executed is returned even if the write budget's ledger or the call
log cannot record it; one that could not reserve its points is not sent; a read that finds
nothing raises RecordNotFound, not a database error."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from pysky_async import AsyncBskyClient, PyskyError, RecordNotFound, RecordRef, StorageError

from ..realnet.pds import Account, PdsServer
from ..test_pds_sessions import listen_host
from .pg_outage import OwnPostgres

pytestmark = pytest.mark.anyio

POST = "app.bsky.feed.post"


@dataclass
class Outcomes:
    """What each create returned or raised, by its record's unique text."""

    returned: dict[str, RecordRef] = field(default_factory=dict)
    raised: dict[str, BaseException] = field(default_factory=dict)

    @property
    def attempted(self) -> int:
        return len(self.returned) + len(self.raised)


def pds_texts(pds: PdsServer, did: str) -> dict[str, str]:
    """text -> AT-URI of every post in the account's repo, read from the PDS itself."""
    texts: dict[str, str] = {}
    cursor = None
    while True:
        query = {"repo": did, "collection": POST, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = pds.xrpc("com.atproto.repo.listRecords?" + urllib.parse.urlencode(query))
        for record in page["records"]:
            texts[record["value"]["text"]] = record["uri"]
        cursor = page.get("cursor")
        if not page["records"] or not cursor:
            return texts


def create_record(bsky: AsyncBskyClient) -> Callable[[str], Awaitable[RecordRef]]:
    """A post made with ``create_record``, given its text."""
    def create(text: str) -> Awaitable[RecordRef]:
        return bsky.create_record(POST, {"text": text, "createdAt": dt.datetime.now(dt.timezone.utc).isoformat()})

    return create


async def create_under_outage(create: Callable[[str], Awaitable[RecordRef]], pg: OwnPostgres, *, workers: int = 12,
                              before: float = 1.5, down_for: float = 3.0, after: float = 1.5,
                              during_outage: asyncio.Future[None] | None = None) -> tuple[Outcomes, float]:
    """``workers`` concurrent loops of ``create(unique text)``; PostgreSQL is stopped ``before`` s
    into the run for ``down_for`` s, then the loops go on ``after`` s. Returns the outcomes and
    how long the database was down. ``during_outage`` (if given) is set once PostgreSQL is down."""
    outcomes = Outcomes()
    run = secrets.token_hex(4)
    stop = asyncio.Event()
    numbers = iter(range(1_000_000))

    async def worker() -> None:
        while not stop.is_set():
            text = f"outage create {run} {next(numbers)}"
            try:
                outcomes.returned[text] = await create(text)
            except Exception as exc:
                outcomes.raised[text] = exc
                await asyncio.sleep(0.02)  # as a caller backing off; no busy loop while the database is down

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    await asyncio.sleep(before)
    await asyncio.to_thread(pg.down)
    stopped = asyncio.get_running_loop().time()
    if during_outage is not None:
        during_outage.set_result(None)
    await asyncio.sleep(down_for)
    await asyncio.to_thread(pg.up)
    outage = asyncio.get_running_loop().time() - stopped
    await asyncio.sleep(after)
    stop.set()
    await asyncio.gather(*tasks)
    return outcomes, outage


def assert_the_server_answer_won(outcomes: Outcomes, on_pds: dict[str, str], *, before: set[str]) -> None:
    """No create raised whose record the PDS has; every returned one is there; only StorageError raised."""
    raised_but_exist = sorted(text for text in outcomes.raised if text in on_pds)
    assert raised_but_exist == [], f"{len(raised_but_exist)} of {outcomes.attempted} creates raised although " \
        f"the PDS made the record: {[repr(outcomes.raised[t]) for t in raised_but_exist]}"
    assert {type(e) for e in outcomes.raised.values()} == {StorageError}, \
        [repr(e) for e in outcomes.raised.values() if not isinstance(e, StorageError)]
    assert all(isinstance(e, PyskyError) for e in outcomes.raised.values())
    assert {text: ref.uri for text, ref in outcomes.returned.items()} == \
        {text: uri for text, uri in on_pds.items() if text in outcomes.returned}
    assert set(on_pds) == {*before, *outcomes.returned}
    assert len(outcomes.returned) > 20 and len(outcomes.raised) > 20, "the run must see the database up and down"


async def test_creates_the_pds_executed_are_returned_while_postgresql_goes_down(
        own_postgres: OwnPostgres, pds: PdsServer, pds_account: Account,
        caplog: pytest.LogCaptureFixture) -> None:
    bsky = AsyncBskyClient(username=pds_account.handle, password=pds_account.password, auth_host=listen_host(pds),
                           database_url=own_postgres.url("creates"), auto_migrate=True)
    existing = await bsky.create_record(POST, {"text": "there before", "createdAt": "2026-01-01T00:00:00Z"})
    missing = existing.uri.rsplit("/", 1)[0] + "/3zzzzzzzzzzzz"
    reads: list[object] = []

    async def read_while_down(down: asyncio.Future[None]) -> None:
        await down
        for uri in (missing, existing.uri):
            try:
                reads.append(await bsky.get_record(uri))
            except Exception as exc:
                reads.append(exc)

    down: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with caplog.at_level(logging.WARNING, logger="pysky_async"):
        reader = asyncio.create_task(read_while_down(down))
        outcomes, _ = await create_under_outage(create_record(bsky), own_postgres, during_outage=down)
        await reader
    await bsky.aclose()

    assert_the_server_answer_won(outcomes, pds_texts(pds, pds_account.did), before={"there before"})
    unrecorded = [r for r in caplog.records if "could not record the outcome" in r.getMessage()]
    assert unrecorded, "the stop must catch creates in flight (their ledger settlement fails), or nothing was tested"

    not_found, found = reads
    assert isinstance(not_found, RecordNotFound), repr(not_found)
    assert getattr(found, "uri", None) == existing.uri and found.value.text == "there before"  # type: ignore[attr-defined]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_posts_the_pds_executed_are_returned_while_postgresql_goes_down(
        own_postgres: OwnPostgres, pds: PdsServer, pds_account: Account) -> None:
    bsky = AsyncBskyClient(username=pds_account.handle, password=pds_account.password, auth_host=listen_host(pds),
                           database_url=own_postgres.url("posts"), auto_migrate=True)
    await bsky.login()
    outcomes, _ = await create_under_outage(bsky.create_post, own_postgres)
    await bsky.aclose()
    assert_the_server_answer_won(outcomes, pds_texts(pds, pds_account.did), before=set())
