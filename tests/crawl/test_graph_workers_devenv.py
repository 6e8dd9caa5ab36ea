"""``pysky-async graph --workers 2`` against the real AppView (dev-env) on PostgreSQL: two worker
processes share the authors of one export (job ``graph:<query>``), each writes its part, the merge
holds exactly the expected edges once; each author was done by one worker; the search was listed once."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from pysky_async._storage.store import Store

from ..realnet.devenv import DevEnv
from ..test_graph_and_bot import read_edges, seed_community

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def test_two_graph_workers_share_the_authors_and_the_merge_has_each_edge_once(
        devenv: DevEnv, pg_database_url: str, tmp_path: Path) -> None:
    query = f"#dataBS{secrets.token_hex(3)}"
    members, expected = await asyncio.to_thread(seed_community, devenv, query)
    runner, _ = devenv.new_account("r")
    store = Store(pg_database_url, auto_migrate=True)
    await store.ensure_ready()
    out = tmp_path / "graph.csv"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG"))},
           "BSKY_AUTH_USERNAME": runner.handle, "BSKY_AUTH_PASSWORD": runner.password,
           "PYSKY_PLC_DIRECTORY": devenv.plc_url,
           "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "pysky_async", "--auth-host", devenv.pds_listen_url, "--database-url",
               pg_database_url, "graph", "--query", query, "--out", str(out), "--concurrency", "2", "--workers", "2"]
    try:
        done = await asyncio.to_thread(subprocess.run, command, cwd=ROOT, env=env, capture_output=True, text=True,
                                       timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = await store.execute_sql(f"SELECT state, count(*), count(DISTINCT done_by) FROM bsky_crawl_job "
                                       f"WHERE job = 'graph:{query}' GROUP BY state")
        searched = ("SELECT cursor_passed, cursor_received FROM bsky_api_call_log "
                    "WHERE endpoint = 'app.bsky.feed.searchPosts' ORDER BY timestamp")
        searches = [tuple(row) for row in await store.execute_sql(searched)]

        # a rerun does not search again; --relist does, once, and no edge is written twice
        for extra, calls in (([], len(searches)), (["--relist"], 2 * len(searches))):
            again = await asyncio.to_thread(subprocess.run, [*command[:-1], "1", *extra], cwd=ROOT, env=env,
                                            capture_output=True, text=True, timeout=600)
            assert again.returncode == 0, again.stderr[-3000:]
            assert len(await store.execute_sql(searched)) == calls, extra
    finally:
        await store.aclose()
    edges = read_edges(out)
    assert set(edges) == expected and len(edges) == len(expected)
    assert rows[0][:2] == ("done", len(members)) and len(rows) == 1
    # the search was listed once for both workers (each one used to search it all): one chain of pages
    assert [passed for passed, _ in searches] == [None, *[received for _, received in searches[:-1]]], searches
    assert searches[-1][1] is None and [passed for passed, _ in searches].count(None) == 1, searches
    parts = [read_edges(Path(f"{out}.part{i}")) for i in (0, 1)]
    assert sum(len(p) for p in parts) == len(expected)  # no edge written by both workers
    print(f"\n{len(members)} authors, {len(expected)} edges; by worker: {[len(p) for p in parts]}; "
          f"{rows[0][2]} workers did authors")
