"""``pysky-async backfill --workers N`` on the real reference PDS and PostgreSQL: N worker processes
of one shared job write each record once; a second command on the same job (another machine's)
finds nothing left; SQLite refuses more than one worker; a malformed --budget is named."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
