"""``pysky-async backfill --workers N`` on the real reference PDS and PostgreSQL: N worker processes
of one shared job write each record once; a second command on the same job (another machine's)
finds nothing left; SQLite refuses more than one worker; a malformed --budget is named."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from pysky_async._storage.store import Store

from ..realnet.pds import PdsServer
from ..streams.conftest import new_accounts
from ..sync.test_backfill_cli import lines
from ..sync.test_backfill_cli import pysky_cli as cli
from ..sync.test_backfill_realnet import POST, seed

pytestmark = pytest.mark.anyio


async def test_workers_share_one_job_and_write_each_record_once(
        pds: PdsServer, pg_database_url: str, tmp_path: Path) -> None:
    accounts = await asyncio.to_thread(new_accounts, pds, 12)
    await seed(pds, accounts, 4)
    store = Store(pg_database_url, auto_migrate=True)
    await store.ensure_ready()
    out = tmp_path / "repos.jsonl"
    args = ["--database-url", pg_database_url, "backfill", "--service", pds.listen_url,
            *[x for a in accounts for x in ("--did", a.did)], "--collection", POST, "--out", str(out),
            "--consumer", "shared", "--workers", "2", "--concurrency", "2"]
    try:
        done = await cli(pds, tmp_path, *args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "12/12 repos done, 0 failed, 0 left" in done.stdout
        written = lines(out)
        assert sorted((w["did"], w["path"]) for w in written) == sorted(
            (a.did, f"{POST}/seed{i:04d}") for a in accounts for i in range(4))  # each record once
        workers = await store.execute_sql("SELECT count(DISTINCT claimant), count(DISTINCT done_by) FROM "
                                          "bsky_crawl_job WHERE job = 'shared'")
        assert workers == [(0, 1)]  # no claim left; one output file
        again = await cli(pds, tmp_path, *args[:-2], "--workers", "1")  # another machine joins: nothing left
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(lines(out)) == len(written)
    finally:
        await store.aclose()


async def test_sqlite_runs_one_worker_and_a_bad_budget_is_named(pds: PdsServer, tmp_path: Path) -> None:
    base = ["backfill", "--service", pds.listen_url, "--did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "--out",
            str(tmp_path / "x.jsonl"), "--consumer", "x"]
    many = await cli(pds, tmp_path, *base, "--workers", "2")
    assert many.returncode == 1 and "PostgreSQL --database-url" in many.stderr, many.stderr
    bad = await cli(pds, tmp_path, *base, "--workers", "1", "--budget", "com.atproto.sync.getRepo=lots")
    assert bad.returncode == 1 and "NSID=LIMIT/SECONDS[/BURST]" in bad.stderr, bad.stderr
    relist = await cli(pds, tmp_path, *base, "--relist")
    assert relist.returncode == 1 and "--relist applies to a job of --workers" in relist.stderr, relist.stderr


async def test_workers_list_the_pds_repos_once(pds: PdsServer, pg_database_url: str, tmp_path: Path) -> None:
    """Without --did the job's repos are the PDS's listRepos: one of the two workers lists them (each worker
    used to list them all), the other works on what is listed; a second command lists nothing again."""
    accounts = await asyncio.to_thread(new_accounts, pds, 6)
    await seed(pds, accounts, 2)
    store = Store(pg_database_url, auto_migrate=True)
    await store.ensure_ready()
    out = tmp_path / "repos.jsonl"
    args = ["--database-url", pg_database_url, "backfill", "--service", pds.listen_url, "--collection", POST,
            "--out", str(out), "--consumer", "listed", "--workers", "2", "--concurrency", "2"]
    try:
        done = await cli(pds, tmp_path, *args)
        assert done.returncode == 0, done.stderr[-3000:]
        async with httpx.AsyncClient(base_url=pds.listen_url, timeout=60) as http:
            hosted = (await http.get("/xrpc/com.atproto.sync.listRepos", params={"limit": 1000})).json()["repos"]
        active = sorted(r["did"] for r in hosted if r.get("active", True))
        assert {a.did for a in accounts} <= set(active)
        job = await store.execute_sql("SELECT did, state FROM bsky_crawl_job WHERE job = 'listed' ORDER BY did")
        assert [tuple(row) for row in job] == [(did, "done") for did in active]
        listing = await store.execute_sql("SELECT listed, finished_at IS NOT NULL, claimant FROM "
                                          "bsky_crawl_enumeration WHERE job = 'listed'")
        assert [tuple(row) for row in listing] == [(len(active), True, None)]
        calls = ("SELECT cursor_passed, cursor_received FROM bsky_api_call_log "
                 "WHERE endpoint = 'com.atproto.sync.listRepos' ORDER BY timestamp")
        pages = [tuple(row) for row in await store.execute_sql(calls)]
        # one listing by the two workers: the first page once, each next page at the cursor before it
        assert [passed for passed, _ in pages] == [None, *[received for _, received in pages[:-1]]]
        assert pages[-1][1] is None
        assert {(w["did"], w["path"]) for w in lines(out)} >= {
            (a.did, f"{POST}/seed{i:04d}") for a in accounts for i in range(2)}
        again = await cli(pds, tmp_path, *args[:-4], "--workers", "1")  # another machine joins: nothing to list
        assert again.returncode == 0, again.stderr[-3000:]
        assert [tuple(row) for row in await store.execute_sql(calls)] == pages

        # a repo created since: --relist lists the PDS again and backfills it; the repos done stay done
        newcomer = (await asyncio.to_thread(new_accounts, pds, 1))[0]
        await seed(pds, [newcomer], 2)
        before = lines(out)
        relisted = await cli(pds, tmp_path, *args[:-4], "--workers", "1", "--relist")
        assert relisted.returncode == 0, relisted.stderr[-3000:]
        assert len(await store.execute_sql(calls)) > len(pages)
        added = lines(out)[len(before):]
        assert sorted((w["did"], w["path"]) for w in added) == [(newcomer.did, f"{POST}/seed{i:04d}") for i in range(2)]
    finally:
        await store.aclose()
