"""``python -m pysky_async`` / ``pysky-async``: call XRPC methods and manage the database.

    pysky-async get app.bsky.actor.getProfile actor=bsky.app
    pysky-async post com.atproto.repo.createRecord repo=me.bsky.social collection=... 'record={"text":"hi"}'
    pysky-async db upgrade
    pysky-async stream --source jetstream --collection app.bsky.feed.post --out posts.jsonl --consumer posts

Credentials and the database come from the same environment variables as the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from ._client import AsyncBskyClient
from ._exceptions import PyskyError
from ._storage import migrate
from ._storage.store import Store
from ._streams import cli as stream_cli


def _pairs(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` arguments; a value that parses as JSON is taken as JSON."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected key=value, got {item!r}")
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            parsed = value
        # keep numeric-looking strings (handles, rkeys) as strings for query params
        result[key] = parsed if isinstance(parsed, (dict, list, bool)) or parsed is None else value
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pysky-async", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--auth-host", help="where to log in (default https://bsky.social)")
    parser.add_argument("--public-host", help="the public AppView (default https://public.api.bsky.app)")
    parser.add_argument("--database-url", help="SQLAlchemy async URL (default: see README)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("get", "post"):
        sub = commands.add_parser(name, help=f"XRPC {'query' if name == 'get' else 'procedure'}")
        sub.add_argument("nsid")
        sub.add_argument("args", nargs="*", metavar="key=value")
        sub.add_argument("--hostname", help="host to call (default: the account's PDS or the public AppView)")
    graph = commands.add_parser("graph", help="export the follow graph of the authors of matching posts")
    graph.add_argument("--query", required=True, help="the post search, e.g. '#databs'")
    graph.add_argument("--out", required=True, help="the CSV file to write (appended to when resumed)")
    graph.add_argument("--concurrency", type=int, default=8)
    graph.add_argument("--include-outsiders", action="store_true",
                       help="also write follows of accounts that are not among the authors")
    stream_cli.add_parser(commands)
    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")
    return parser


async def _run(args: argparse.Namespace) -> int:
    if args.command == "stream":
        return await stream_cli.run(args)
    if args.command == "db":
        store = Store(args.database_url, auto_migrate=False)
        try:
            if args.action == "upgrade":
                await migrate.upgrade(store.engine, args.revision or "head")
            elif args.action == "downgrade":
                await migrate.downgrade(store.engine, args.revision or "base")
            print(await migrate.current_revision(store.engine) or "empty")
        finally:
            await store.aclose()
        return 0
    async with AsyncBskyClient(auth_host=args.auth_host, public_host=args.public_host,
                               database_url=args.database_url) as bsky:
        if args.command == "graph":
            from ._graph import export_follow_graph

            report = await export_follow_graph(bsky, args.query, args.out, concurrency=args.concurrency,
                                               include_outsiders=args.include_outsiders)
            print(report)
            return 0
        if args.command == "get":
            response = await bsky.get(args.nsid, hostname=args.hostname, params=_pairs(args.args))
        else:
            response = await bsky.post(args.nsid, hostname=args.hostname, data=_pairs(args.args))
    print(json.dumps(response.raw, indent=2, ensure_ascii=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "graph":
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return asyncio.run(_run(args))
    except PyskyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
