"""A service that makes calls and then waits to be stopped (used by test_sigterm.py).

    python -m tests.reliability.sigterm_worker <public_host> <database_url> <calls> <install: 0|1>
"""

from __future__ import annotations

import asyncio
import sys

from pysky_async import AsyncBskyClient, install_signal_handlers


async def main(public_host: str, database_url: str, calls: int, install: bool) -> None:
    if install:
        install_signal_handlers()
    async with AsyncBskyClient(public_host=public_host, database_url=database_url) as bsky:
        await bsky.store.ensure_ready()
        bsky.call_log.interval = 3600  # the rows wait in memory until the client closes
        for _ in range(calls):
            await bsky.get("com.atproto.server.describeServer")
        print("ready", bsky.call_log.pending, flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"))
