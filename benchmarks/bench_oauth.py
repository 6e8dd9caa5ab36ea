"""What DPoP costs per call: an OAuth user vs an app-password session, against the real
reference PDS (tests/realnet), plus the CPU of one DPoP proof. Prints a markdown table.

    .venv/bin/python benchmarks/bench_oauth.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.oauth.conftest import REDIRECT_URI, query
from tests.oauth.provider_ui import approve
from tests.realnet.pds import PdsServer

from pysky_async import AsyncBskyClient, OAuthApp
from pysky_async._oauth._dpop import generate_key, make_proof


async def timed_calls(client: AsyncBskyClient, calls: int) -> tuple[float, float]:
    """(wall ms, this process's CPU ms) per call."""
    await client.get("com.atproto.server.getSession")  # warm up (login / nonce)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await client.get("com.atproto.server.getSession")
    return (time.perf_counter() - start) / calls * 1000, (time.process_time() - cpu) / calls * 1000


async def main(calls: int) -> None:
    pds = PdsServer.start()
    try:
        account = pds.create_account("bench.test", "bench-pass-123")
        with tempfile.TemporaryDirectory() as tmp:
            options = {"database_url": f"sqlite+aiosqlite:///{tmp}/b.sqlite3", "public_host": pds.base_url,
                       "plc_directory": pds.plc_url, "request_limit": None}
            async with AsyncBskyClient(**options) as bsky:  # type: ignore[arg-type]
                bsky.oauth.configure(OAuthApp.loopback(REDIRECT_URI))
                started = time.perf_counter()
                url = await bsky.oauth.start(account.handle)
                back = await approve(url, account.handle, account.password)
                login = await bsky.oauth.callback(query(back))
                login_ms = (time.perf_counter() - started) * 1000
                user = await bsky.oauth.client_for(login.did)
                before = pds.request_count("com.atproto.server.getSession")
                oauth_ms, oauth_cpu = await timed_calls(user, calls)
                oauth_requests = (pds.request_count("com.atproto.server.getSession") - before) / (calls + 1)
            async with AsyncBskyClient(username=account.handle, password=account.password,
                                       auth_host=pds.base_url, **options) as bsky:  # type: ignore[arg-type]
                bearer_ms, bearer_cpu = await timed_calls(bsky, calls)
    finally:
        pds.stop()
    key = generate_key()
    n = 2000
    proof_us = timeit.timeit(lambda: make_proof(key, "GET", f"{pds.base_url}/xrpc/x.y.z", nonce="n",
                                                access_token="t" * 600), number=n) / n * 1e6
    print(f"| measure ({calls} sequential getSession calls, reference PDS on loopback) | value |")
    print("|---|---|")
    print(f"| app-password session (Bearer), ms per call (client CPU ms) | {bearer_ms:.2f} ({bearer_cpu:.2f}) |")
    print(f"| OAuth user (DPoP proof per call), ms per call (client CPU ms) | {oauth_ms:.2f} ({oauth_cpu:.2f}) |")
    print(f"| DPoP overhead per call | {oauth_ms - bearer_ms:+.2f} ms ({oauth_ms / bearer_ms:.2f}×) |")
    print(f"| requests reaching the PDS per OAuth call (nonce retries included) | {oauth_requests:.2f} |")
    print(f"| one DPoP proof (ES256 sign, joserfc), µs CPU | {proof_us:.0f} |")
    print(f"| whole login (PAR, sign-in + consent via the UI's API, token exchange, issuer check), ms | "
          f"{login_ms:.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))
