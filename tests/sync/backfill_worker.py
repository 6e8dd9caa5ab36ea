"""A process for the SIGKILL tests: backfill and live together into the mirror table, until killed.

    python -m tests.sync.backfill_worker <pds url> <plc url> <database url> <did,did,...>
"""

from __future__ import annotations

import asyncio
import sys

from pysky_async import AsyncBskyClient

from .mirror import create_table, mirror_handler


async def main(service: str, plc: str, database_url: str, dids: list[str]) -> None:
    async with AsyncBskyClient(auth_host=service, plc_directory=plc, database_url=database_url,
                               auto_migrate=True) as bsky:
        await create_table(bsky.store)
        follow = bsky.sync.follow(mirror_handler(set(dids), delay=0.004), name="killed", service=service,
                                  dids=dids, concurrency=2, per_host=2)
        await follow.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")))
