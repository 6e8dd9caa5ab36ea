"""Try pysky_async against a local server, no account anywhere needed.

    python -m examples.local_pds          (from the repository root)

Starts the reference AT Protocol PDS with its PLC directory on loopback (tests/realnet/pds.py;
the first run installs node 22 and ``@atproto/pds`` into ~/.cache/pysky-realnet, which needs npm),
creates an account on it, then, as a user would: logs in, posts, reads the post back and lists
the account's posts, keeping the session and the call log in a throwaway SQLite file. Stops the
PDS at the end.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from pathlib import Path

from tests.realnet.pds import PdsServer

from pysky_async import AsyncBskyClient


async def main(pds: PdsServer, handle: str, password: str, database: Path) -> None:
    async with AsyncBskyClient(username=handle, password=password, database_url=f"sqlite+aiosqlite:///{database}",
                               auth_host=pds.base_url.replace("localhost", "127.0.0.1"),
                               plc_directory=pds.plc_url) as bsky:
        ref = await bsky.create_post("Hello from pysky_async, on a local PDS #python")
        post = await bsky.get_record(ref.uri)
        print(f"posted {ref.uri}\n  text: {post.value.text}")
        async for record in bsky.list_records("app.bsky.feed.post", max_items=10):
            print(f"  listed: {record.uri}")
        await bsky.call_log.flush()
        calls = await bsky.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
        print(f"the call log holds {calls[0][0]} calls; the session is stored for the next run")


if __name__ == "__main__":
    print("starting the reference PDS (the first run installs it: a few minutes) ...", flush=True)
    with PdsServer.start() as server, tempfile.TemporaryDirectory() as tmp:
        account = server.create_account(f"me{secrets.token_hex(3)}.test", secrets.token_urlsafe(12))
        print(f"PDS at {server.base_url}, account {account.handle}")
        asyncio.run(main(server, account.handle, account.password, Path(tmp) / "pysky.sqlite3"))
