"""Two worker processes share one backfill job of 200 repos on the real reference PDS, with its rate
limits on: with a budget shared in PostgreSQL the PDS never answers 429 and each repo is done once,
though a worker is SIGKILLed mid-job (its claims are taken over when they expire); the same two
workers each on a budget of their own do get 429s.

The PDS's getRepo limit (6,000 per 5 minutes per IP in production) is scaled in time to 32 per
4 s by a load hook (``scaled_limits.mjs``): the same limiter, reachable by 200 repos. Each phase
sends its own X-Forwarded-For, so each meets a fresh per-IP bucket on the PDS.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pysky_async._storage.store import Store

from ..realnet.pds import PdsServer
from ..streams.workload import wait_for

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REPOS = 200
RECORDS = 3
BYPASS = secrets.token_hex(16)
POST = "app.bsky.feed.post"


@pytest.fixture(scope="module")
def limited_pds() -> Iterator[PdsServer]:
    server = PdsServer.start(rate_limits=True, extra_env={
        "NODE_OPTIONS": f"--import {HERE / 'scaled_limits.mjs'}",
        "PYSKY_GETREPO_POINTS": "32", "PYSKY_GETREPO_WINDOW_MS": "4000",
        "PDS_RATE_LIMIT_BYPASS_KEY": BYPASS})  # account set-up only: the workers never send it
    yield server
    server.stop()


async def create_accounts(pds: PdsServer, n: int) -> list[str]:
    """``n`` accounts with ``RECORDS`` posts each (past the PDS's limits with the bypass key)."""
    semaphore = asyncio.Semaphore(8)

    async def one(http: httpx.AsyncClient) -> str:
        async with semaphore:
            handle = f"c{secrets.token_hex(5)}.test"
            r = await http.post("/xrpc/com.atproto.server.createAccount", json={
                "handle": handle, "password": secrets.token_urlsafe(12), "email": f"{handle[:-5]}@example.com"})
            r.raise_for_status()
            account = r.json()
            writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": f"p{i}",
                       "value": {"$type": POST, "text": f"post {i}", "createdAt": "2026-12-04T00:00:00Z"}}
                      for i in range(RECORDS)]
            r = await http.post("/xrpc/com.atproto.repo.applyWrites", json={
                "repo": account["did"], "writes": writes, "validate": False},
                headers={"authorization": f"Bearer {account['accessJwt']}"})
            r.raise_for_status()
            return str(account["did"])

    async with httpx.AsyncClient(base_url=pds.listen_url, headers={"x-ratelimit-bypass": BYPASS},
                                 timeout=120) as http:
        return list(await asyncio.gather(*(one(http) for _ in range(n))))


def get_repo_statuses(pds: PdsServer, ip: str) -> dict[int, int]:
    """The PDS's own log: how many getRepo requests from ``ip`` it answered with each status."""
    counts: dict[int, int] = {}
    for raw in pds.log_path.read_bytes().splitlines():
        if b"com.atproto.sync.getRepo" not in raw or ip.encode() not in raw:
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        req, res = line.get("req"), line.get("res")
        if not (isinstance(req, dict) and isinstance(res, dict) and str(req.get("url", "")).startswith(
                "/xrpc/com.atproto.sync.getRepo") and ip in json.dumps(req.get("headers", {}))):
            continue
        status = int(res.get("statusCode", 0))
        counts[status] = counts.get(status, 0) + 1
    return counts


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for worker in started:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def start_worker(pds: PdsServer, database_url: str, job: str, ip: str, budget: str, label: str,
                 log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.crawl.crawl_worker", pds.listen_url, pds.plc_url,
                                 database_url, job, ip, budget, label], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


async def test_two_workers_share_a_job_and_a_budget_no_429_each_repo_once_despite_a_sigkill(
        limited_pds: PdsServer, pg_database_url: str, tmp_path: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    pds = limited_pds
    phases = [("start", time.monotonic())]
    dids = await create_accounts(pds, REPOS)
    phases.append(("accounts", time.monotonic()))
    store = Store(pg_database_url, auto_migrate=True)
    await store.ensure_ready()
    await store.execute_sql("CREATE TABLE mirror (did VARCHAR(64) NOT NULL, path VARCHAR(255) NOT NULL, "
                            "cid VARCHAR(128) NOT NULL, live INTEGER NOT NULL, PRIMARY KEY (did, path))")
    log = tmp_path / "workers.log"

    async def job_counts(job: str) -> dict[str, int]:
        rows = await store.execute_sql(f"SELECT state, count(*) FROM bsky_crawl_job WHERE job = '{job}' "
                                       "GROUP BY state")
        return {state: n for state, n in rows}

    try:
        # without sharing: each worker keeps to its own budget (an SQLite file of its own)
        unshared_ip = "10.23.0.1"
        for n in (1, 2):
            workers.append(start_worker(pds, pg_database_url, "unshared", unshared_ip,
                                        f"sqlite+aiosqlite:///{tmp_path}/own{n}.sqlite3", f"own{n}", log))
        await wait_for(lambda: get_repo_statuses(pds, unshared_ip).get(429, 0) > 0
                       or all(w.poll() is not None for w in workers), timeout=120)
        unshared = get_repo_statuses(pds, unshared_ip)
        for worker in workers:
            worker.kill()
            worker.wait()
        assert unshared.get(429, 0) > 0, (unshared, log.read_text()[-3000:])
        await store.execute_sql("DELETE FROM mirror")
        phases.append(("unshared", time.monotonic()))

        # shared: one budget in PostgreSQL; worker 1 SIGKILLed while it holds claims, a new one joins
        shared_ip = "10.23.0.2"
        first = start_worker(pds, pg_database_url, "crawl", shared_ip, "shared", "w1", log)
        workers.append(first)
        workers.append(start_worker(pds, pg_database_url, "crawl", shared_ip, "shared", "w2", log))
        killed: list[str] = []

        async def w1_holds_claims_midway() -> bool:
            nonlocal killed
            done = (await job_counts("crawl")).get("done", 0)
            rows = await store.execute_sql("SELECT did FROM bsky_crawl_job WHERE job = 'crawl' AND "
                                           f"state = 'claimed' AND claimant LIKE '%:{first.pid}:%'")
            killed = [did for (did,) in rows]
            return done >= 40 and len(killed) > 0

        for _ in range(1200):
            if await w1_holds_claims_midway():
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert killed and (await job_counts("crawl")).get("done", 0) < REPOS
        phases.append(("kill", time.monotonic()))
        workers.append(start_worker(pds, pg_database_url, "crawl", shared_ip, "shared", "w3", log))
        for _ in range(1800):
            if (await job_counts("crawl")).get("done", 0) == REPOS:
                break
            await asyncio.sleep(0.1)
        assert await job_counts("crawl") == {"done": REPOS}, log.read_text()[-3000:]
        phases.append(("shared", time.monotonic()))
        mirror = await store.execute_sql("SELECT did, count(*) FROM mirror GROUP BY did")
        taken_over = await store.execute_sql(
            "SELECT did, done_by, attempts FROM bsky_crawl_job WHERE job = 'crawl' AND did IN ("
            + ", ".join(f"'{did}'" for did in killed) + ")")
    finally:
        await store.aclose()
    shared = get_repo_statuses(pds, shared_ip)
    output = log.read_text(errors="replace")
    assert "IntegrityError" not in output and "UniqueViolation" not in output, output[-3000:]
    assert sorted(mirror) == sorted((did, RECORDS) for did in dids)  # every repo, each record once
    assert all(by in ("w2", "w3") and attempts >= 2 for _, by, attempts in taken_over)  # the dead worker's
    assert shared.get(429, 0) == 0 and shared.get(200, 0) >= REPOS, shared
    print(f"\nunshared budgets: getRepo statuses {unshared}; shared budget: {shared}; "
          f"{len(killed)} claims of the SIGKILLed worker taken over; seconds: "
          + ", ".join(f"{name} {at - before:.1f}" for (_, before), (name, at) in itertools.pairwise(phases)))
