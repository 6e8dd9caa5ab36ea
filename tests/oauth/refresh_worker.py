"""A separate worker process acting for an OAuth user, for the cross-process refresh test.

    python -m tests.oauth.refresh_worker <json config>

Opens the shared database, prints ``ready``, waits for a line on stdin, then makes
``calls`` concurrent calls as the user and prints ``done <ok count> <sha256 of the token>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

from pysky_async import AsyncBskyClient, OAuthApp


async def main(config: dict[str, str]) -> None:
    async with AsyncBskyClient(database_url=config["database_url"], public_host=config["public_host"],
                               plc_directory=config["plc_directory"], auto_migrate=True) as bsky:
        bsky.oauth.configure(OAuthApp.loopback(config["redirect_uri"]), encryption_key=config["encryption_key"])
        await bsky.store.ensure_ready()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        user = await bsky.oauth.client_for(config["did"])
        calls = int(config["calls"])
        results = await asyncio.gather(*(user.get("com.atproto.server.getSession") for _ in range(calls)))
        token = (await bsky.oauth.session(config["did"])).access_token
        print("done", sum(r.did == config["did"] for r in results), hashlib.sha256(token.encode()).hexdigest(),
              flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
