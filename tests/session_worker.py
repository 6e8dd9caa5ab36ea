"""A separate process using AsyncBskyClient, for the cross-process session tests.

    python -m tests.session_worker <json config>

Logs in (or reuses the stored session), prints ``ready <did>``, waits for a line on stdin,
then makes ``calls`` concurrent authenticated calls and prints ``done <ok count>``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from pysky_async import AsyncBskyClient


async def main(config: dict[str, object]) -> None:
    async with AsyncBskyClient(
        username=str(config["username"]),
        password=str(config["password"]),
        auth_host=str(config["auth_host"]),
        database_url=str(config["database_url"]),
        auto_migrate=True,
    ) as bsky:
        await bsky.login()
        print("ready", bsky.did, flush=True)
        calls = int(config.get("calls", 0))  # type: ignore[call-overload]
        if calls:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            results = await asyncio.gather(
                *(bsky.get("com.atproto.server.getSession") for _ in range(calls))
            )
            print("done", sum(r.did == bsky.did for r in results), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
