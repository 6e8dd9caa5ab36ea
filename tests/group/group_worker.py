"""A worker process of the consumer group ``indexer`` for the SIGKILL test: one insert per event, on commit.

    python -m tests.group.group_worker <service> <database_url> <worker name> <partitions>

The effect table ``effect`` (created by the test) has a unique constraint on ``seq``: an event applied
twice makes its commit fail (logged), so duplicates cannot hide. Each event's on-commit work adds its
row to the transaction, and the rows are inserted in one executemany just before it commits (a handler
that batches its writes; the commit holds them with the watermark all the same).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pysky_async._storage.store import Store
from pysky_async._streams import EventContext, FirehoseSource, StreamConsumer, StreamEvent
from pysky_async._streams.events import CommitEvent

INSERT = text("INSERT INTO effect (seq, did, rev, worker) VALUES (:seq, :did, :rev, :worker)")


ROWS = "effect_rows"


@sa_event.listens_for(Session, "before_commit")
def _insert_rows(session: Session) -> None:
    rows: list[dict[str, Any]] | None = session.info.pop(ROWS, None)
    if rows:
        session.execute(INSERT, rows)


async def main(service: str, database_url: str, name: str, partitions: int) -> None:
    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        rev = event.rev if isinstance(event, CommitEvent) else ""
        values = {"seq": event.cursor, "did": event.did, "rev": rev, "worker": name}

        async def write(session: AsyncSession) -> None:
            session.info.setdefault(ROWS, []).append(values)

        ctx.on_commit(write)

    store = Store(database_url)
    consumer = StreamConsumer(FirehoseSource(service), handler, store=store, name=name, group="indexer",
                              partitions=partitions, start_cursor=0, heartbeat_interval=1.0, lease_duration=4.0,
                              commit_interval=0.2, commit_every=1000, max_pending=4000)
    try:
        await consumer.run()
    finally:
        await store.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
