"""A consumer process for the SIGKILL test: appends each handled seq to a file, durable cursor on.

    python -m tests.streams.worker <service> <database_url> <out file> <did,did,...>
"""

from __future__ import annotations

import asyncio
import os
import sys

from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent


async def main(service: str, database_url: str, out: str, dids: list[str]) -> None:
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        await asyncio.sleep(0.003)
        os.write(fd, f"{event.cursor}\n".encode())  # one unbuffered write: survives SIGKILL

    store = Store(database_url, auto_migrate=True)
    consumer = StreamConsumer(FirehoseSource(service), handler, store=store, name="killed", dids=dids,
                              start_cursor=0, concurrency=8, commit_every=20, commit_interval=0.2)
    await consumer.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")))
