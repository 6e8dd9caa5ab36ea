"""Resumed listRecords in its own process, for the SIGKILL test.

    python -m tests.pagination_worker <json config>

Prints each record's rkey as it handles it (slowly), flushing every line.
"""

from __future__ import annotations

import asyncio
import json
import sys

from pysky_async import AsyncBskyClient


async def main(config: dict[str, str | float]) -> None:
    async with AsyncBskyClient(username=str(config["username"]), password=str(config["password"]),
                               auth_host=str(config["auth_host"]), database_url=str(config["database_url"])) as bsky:
        async for record in bsky.list_records(str(config["collection"]), reverse=True, limit=50, resume=True):
            print(record.uri.rsplit("/", 1)[1], flush=True)
            await asyncio.sleep(float(config["delay"]))
    print("end", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
