"""A handler that mirrors repos into a table: each (did, path) once with its cid (a primary key), so
an effect applied twice fails its transaction; live updates and deletes change the mirror."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pysky_async._storage.store import Store
from pysky_async._streams import CommitEvent, EventContext, StreamEvent
from pysky_async._streams.consumer import Handler

TABLE = ("CREATE TABLE IF NOT EXISTS mirror (did VARCHAR(64) NOT NULL, path VARCHAR(255) NOT NULL, "
         "cid VARCHAR(128) NOT NULL, live INTEGER NOT NULL, PRIMARY KEY (did, path))")


async def create_table(store: Store) -> None:
    await store.execute_sql(TABLE)


def mirror_handler(dids: set[str], *, delay: float = 0.0,
                   log: Callable[[str, str, bool], None] | None = None) -> Handler:
    """The handler; ``log(did, rev, live)`` is called when a live event reaches it and when a
    backfilled record's effect runs (inside its repo's transaction)."""

    async def handler(event: StreamEvent, ctx: EventContext) -> None:
        if not isinstance(event, CommitEvent) or event.did not in dids:
            return
        if delay:
            await asyncio.sleep(delay)
        if log is not None and event.live:
            log(event.did, event.rev, True)
        for op in event.ops:
            async def effect(session: AsyncSession, did: str = event.did, path: str = op.path,
                             cid: str | None = op.cid, action: str = op.action, live: bool = event.live,
                             rev: str = event.rev) -> None:
                if log is not None and not live:
                    log(did, rev, False)
                values = {"did": did, "path": path, "cid": cid, "live": int(live)}
                if action == "delete":
                    await session.execute(text("DELETE FROM mirror WHERE did = :did AND path = :path"), values)
                elif action == "update":
                    await session.execute(text("UPDATE mirror SET cid = :cid, live = :live WHERE did = :did AND "
                                               "path = :path"), values)
                else:
                    await session.execute(text("INSERT INTO mirror (did, path, cid, live) VALUES (:did, :path, "
                                               ":cid, :live)"), values)

            ctx.on_commit(effect)

    return handler


async def mirrored(store: Store) -> dict[str, set[tuple[str, str]]]:
    """The mirror: per DID, its (path, cid) pairs."""
    rows = await store.execute_sql("SELECT did, path, cid FROM mirror")
    out: dict[str, set[tuple[str, str]]] = {}
    for did, path, cid in rows:
        out.setdefault(did, set()).add((path, cid))
    return out
