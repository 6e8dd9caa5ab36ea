"""``pysky-async group status|drop GROUP``: a consumer group's leader, cursors, partitions and lag; dropping it."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from typing import Any

from .._exceptions import StreamError
from .._group.drop import DroppedGroup, drop_group
from .._group.status import GroupStatus, group_status
from .._storage.store import Store


async def run(args: argparse.Namespace) -> int:
    """Print the group's status (a table, or JSON with ``--json``), or drop it."""
    store = Store(args.database_url)
    try:
        if args.action == "drop":
            return await _drop(store, args)
        status = await group_status(store, args.group)
    except StreamError as exc:  # which database was read: the usual mistake is another --database-url
        url = store.engine.url.render_as_string(hide_password=True)
        raise StreamError(f"{exc}. Database read: {url} (--database-url or PYSKY_DATABASE_URL)") from exc
    finally:
        await store.aclose()
    print(json.dumps(as_json(status), indent=2) if args.json else table(status, dt.datetime.now(dt.timezone.utc)))
    return 0


async def _drop(store: Store, args: argparse.Namespace) -> int:
    if not args.yes:
        status = await group_status(store, args.group)  # an unknown group fails here, before the question
        if not sys.stdin.isatty():
            raise StreamError(f"dropping group {args.group!r} deletes its partitions' watermarks for good: "
                              "pass --yes to confirm (no terminal to ask on)")
        question = (f"drop group {status.group} on {status.source} ({len(status.partitions)} partitions, "
                    f"resume cursor {status.resume_cursor})? [y/N] ")
        answer = await asyncio.to_thread(input, question)
        if answer.strip().lower() not in ("y", "yes"):
            print("not dropped")
            return 1
    dropped = await drop_group(store, args.group, force=args.force)
    print(json.dumps(dataclasses.asdict(dropped), indent=2) if args.json else dropped_text(dropped))
    return 0


def dropped_text(dropped: DroppedGroup) -> str:
    """What a drop deleted, in words."""
    others = ", ".join(dropped.remaining)
    if not dropped.shared_log:
        return (f"dropped group {dropped.group} on {dropped.source}: its cursor and {dropped.revs} repo revs "
                "deleted (SQLite: one process, no shared log)")
    return (f"dropped group {dropped.group} on {dropped.source}: {dropped.partitions} partitions, "
            f"{dropped.members} members, {dropped.revs} repo revs deleted; {dropped.trimmed} log events trimmed\n"
            + (f"the log stays for the other groups on it: {others}" if others else
               "no group reads the log now; it stays (with its upstream cursor) for a group to join"))


def as_json(status: GroupStatus) -> dict[str, Any]:
    """The status as JSON values (times as ISO 8601 strings)."""
    def value(v: Any) -> Any:
        return v.isoformat() if isinstance(v, dt.datetime) else v

    out = {f.name: value(getattr(status, f.name)) for f in dataclasses.fields(status) if f.name != "partitions"}
    out["members"] = list(status.members)
    out.update(lag=status.lag, resume_cursor=status.resume_cursor)
    out["partitions"] = [{f.name: value(getattr(p, f.name)) for f in dataclasses.fields(p)}
                         for p in status.partitions]
    return out


def table(status: GroupStatus, now: dt.datetime) -> str:
    """The status as a readable table: a header of the group's state, then one row per partition."""
    def text(v: object) -> str:
        return "-" if v is None else str(v)

    def lease(expires: dt.datetime | None) -> str:
        if expires is None:
            return "-"
        left = (expires - now).total_seconds()
        return f"{left:.0f} s" if left >= 0 else f"expired {-left:.0f} s ago"

    lines = [f"group {status.group} on {status.source}",
             f"  leader          {status.leader or '- (no process ingests now)'}",
             f"  upstream cursor {text(status.upstream_cursor)} (log position {status.log_position})",
             f"  resume cursor   {text(status.resume_cursor)} (the lowest partition watermark)",
             f"  backlog         {status.backlog} events, lag {status.lag}",
             f"  members         {', '.join(status.members) or '-'}", ""]
    rows = [("partition", "owner", "lease", "watermark", "cursor", "lag")]
    rows += [(str(p.partition), text(p.owner), lease(p.lease_expires), str(p.position), text(p.cursor), str(p.lag))
             for p in status.partitions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 1 or i == 2 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
