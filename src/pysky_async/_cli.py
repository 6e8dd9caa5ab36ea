"""pysky-async (or python -m pysky_async): call XRPC methods, manage the session and the database.

examples:
  pysky-async get app.bsky.actor.getProfile actor=bsky.app
  pysky-async post com.atproto.repo.createRecord repo=me.bsky.social collection=... 'record={"text":"hi"}'
  pysky-async --auth-host http://localhost:2583 get com.atproto.server.describeServer
  pysky-async session show
  pysky-async db path
  pysky-async stream --source jetstream --collection app.bsky.feed.post --out posts.jsonl --consumer posts
  pysky-async stream --source firehose --out w1.jsonl --consumer w1 --group indexer --partitions 16
  pysky-async group status indexer
  pysky-async backfill --service https://bsky.network --did did:plc:... --out repos.jsonl --consumer repos

Credentials (BSKY_AUTH_USERNAME, BSKY_AUTH_PASSWORD), hosts (PYSKY_AUTH_HOST, PYSKY_PUBLIC_HOST ...)
and the database (PYSKY_DATABASE_URL ...) come from the same environment variables as the client.
Without an account, --auth-host is also where queries go. Calls that need no account
(createAccount, createSession, describeServer, resolveHandle, requestPasswordReset, ...; or any
call with --no-auth) go to --hostname or --auth-host without logging in.

Exit status: 0 done, 1 error, 130 interrupted (Ctrl-C), 141 output pipe closed (as `| head`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._cli_args import add_backfill_parser, add_group_parser, add_stream_parser
from ._exceptions import InvalidInput, NotAuthenticated, PyskyError

if TYPE_CHECKING:
    from ._client import AsyncBskyClient
    from ._response import XrpcResponse

# Each subcommand imports what it runs when it runs (the client, SQLAlchemy, alembic, the streams...):
# `pysky-async --help`, `db path` or a usage error start in a fraction of the time.

UNAUTHENTICATED = frozenset({
    "com.atproto.server.createAccount", "com.atproto.server.createSession", "com.atproto.server.describeServer",
    "com.atproto.server.requestPasswordReset", "com.atproto.server.resetPassword",
    "com.atproto.server.reserveSigningKey", "com.atproto.identity.resolveHandle", "com.atproto.identity.resolveDid",
    "com.atproto.identity.resolveIdentity",
})
"""Calls a server answers without an account: the CLI never logs in for them (a login would fail
for createAccount, and blame the password)."""

SIGPIPE_STATUS = 141
"""The status a shell reports for ``cat`` writing into a closed pipe (128 + SIGPIPE)."""


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
        sub.add_argument("--no-auth", action="store_true",
                         help="call without logging in (automatic for calls that need no account)")
    graph = commands.add_parser("graph", help="export the follow graph of the authors of matching posts")
    graph.add_argument("--query", required=True, help="the post search, e.g. '#databs'")
    graph.add_argument("--out", required=True, help="the CSV file to write (appended to when resumed)")
    graph.add_argument("--concurrency", type=int, default=8)
    graph.add_argument("--workers", type=int, help="run N worker PROCESSES of the export shared in the "
                       "database (job graph:QUERY): each writes the follows of the authors it claims to "
                       "OUT.partI, merged into --out at the end; the same command on other machines with "
                       "the same --query and a shared PostgreSQL --database-url joins it. Without it, one "
                       "process exports alone")
    graph.add_argument("--budget", action="append", metavar="NSID=LIMIT/SECONDS[/BURST]",
                       help="with --workers: the request budget per host shared by every worker (repeatable; "
                       "NSID * is any other method). Default: Bluesky's 3000 requests per 5 minutes per IP")
    graph.add_argument("--no-budget", action="store_true", help="with --workers: no shared request budget")
    graph.add_argument("--claim-ttl", type=float, default=60.0, help="with --workers: seconds a worker's "
                       "claims last after its last heartbeat")
    graph.add_argument("--relist", action="store_true", help="with --workers: search the posts again (a shared "
                       "export searches once; the authors new since join it, those done stay done)")
    graph.add_argument("--include-outsiders", action="store_true",
                       help="also write follows of accounts that are not among the authors")
    add_stream_parser(commands)
    add_group_parser(commands)
    add_backfill_parser(commands)
    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "downgrade", "current", "path"],
                    help="path: print the database URL in use (password hidden)")
    db.add_argument("revision", nargs="?")
    session = commands.add_parser("session", help="the stored login of the configured account")
    session.add_argument("action", choices=["show", "clear"],
                         help="show: who, where, until when (never the tokens); clear: forget it here")
    return parser


async def _run(args: argparse.Namespace) -> int:
    if args.command == "db" and args.action == "path":
        from sqlalchemy.engine import make_url

        from ._storage.store import resolve_database_url

        print(make_url(resolve_database_url(args.database_url)).render_as_string(hide_password=True))
        return 0
    if args.command == "stream":
        from ._streams import cli as stream_cli

        return await stream_cli.run(args)
    if args.command == "group":
        from ._streams import group_cli

        return await group_cli.run(args)
    if args.command == "backfill":
        from ._sync import backfill_cli

        return await backfill_cli.run(args)
    if args.command == "db":
        from ._storage import migrate
        from ._storage.store import Store

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
    from ._client import AsyncBskyClient

    public_host = args.public_host
    if public_host is None and args.auth_host and not os.environ.get("BSKY_AUTH_USERNAME"):
        public_host = args.auth_host  # no account: the server named is the one to ask
    async with AsyncBskyClient(auth_host=args.auth_host, public_host=public_host,
                               database_url=args.database_url) as bsky:
        if args.command == "session":
            return await _session_command(bsky, args.action)
        if args.command == "graph":
            return await _graph(bsky, args)
        response = await _call(bsky, args)
    print(json.dumps(response.raw, indent=2, ensure_ascii=False))
    return 0


async def _graph(bsky: AsyncBskyClient, args: argparse.Namespace) -> int:
    from ._graph import export_follow_graph

    if args.workers is None:
        if args.relist:
            raise InvalidInput("--relist applies to an export of --workers: without it the search resumes at "
                               "its saved cursor at every run (the posts new since are searched)")
        report = await export_follow_graph(bsky, args.query, args.out, concurrency=args.concurrency,
                                           include_outsiders=args.include_outsiders)
        print(report)
        return 0
    from ._crawl.middleware import SharedBudgetMiddleware
    from ._sync.backfill_workers import check_budgets

    budgets = check_budgets(args)
    await bsky.store.ensure_ready()
    if args.workers < 1:
        raise InvalidInput("--workers must be at least 1")
    if args.relist:
        from ._crawl.enumeration import relist

        await relist(bsky.store, f"graph:{args.query}")  # the workers (started below) search again
    if args.workers > 1:
        if bsky.store.dialect == "sqlite":
            raise InvalidInput("--workers above 1 needs a database every worker can write to at once: pass a "
                               "PostgreSQL --database-url (SQLite runs one worker: --workers 1)")
        from ._crawl.graph_workers import supervise

        return await supervise(args)
    crawler = bsky if budgets is None else bsky.with_options(
        middleware=[*bsky.config.middleware, SharedBudgetMiddleware(bsky.store, budgets)])
    report = await export_follow_graph(crawler, args.query, args.out, concurrency=args.concurrency,
                                       include_outsiders=args.include_outsiders, shared=True,
                                       claim_ttl=args.claim_ttl)
    print(report)
    return 0


async def _call(bsky: AsyncBskyClient, args: argparse.Namespace) -> XrpcResponse:
    from ._config import normalize_endpoint, normalize_host
    from ._request import XrpcRequest

    nsid = normalize_endpoint(args.nsid)
    if args.no_auth or nsid in UNAUTHENTICATED:
        host = normalize_host(args.hostname) if args.hostname else bsky.config.auth_host
        pairs = _pairs(args.args)
        request = (XrpcRequest("GET", nsid, host, params=pairs) if args.command == "get"
                   else XrpcRequest("POST", nsid, host, json=pairs))
        return await bsky.send(request)
    if args.command == "get":
        return await bsky.get(nsid, hostname=args.hostname, params=_pairs(args.args))
    return await bsky.post(nsid, hostname=args.hostname, data=_pairs(args.args))


async def _session_command(bsky: AsyncBskyClient, action: str) -> int:
    import datetime as dt

    from . import _jwt
    from ._session import SessionManager

    sessions = bsky.sessions
    if not isinstance(sessions, SessionManager) or not sessions.identifier:
        raise NotAuthenticated("no account configured: set BSKY_AUTH_USERNAME (the session is stored per account)")
    stored = await sessions.stored()
    if stored is None:
        print(f"no stored session for {sessions.account_key}")
        return 0
    if action == "clear":
        await sessions.forget()
        print(f"forgot the stored session of {stored.handle} ({stored.did}); the next call logs in again")
        return 0
    exp = _jwt.claims(stored.access_jwt).get("exp")
    expires = dt.datetime.fromtimestamp(exp, dt.timezone.utc).isoformat() if isinstance(exp, (int, float)) else None
    print(json.dumps({"account": sessions.account_key, "did": stored.did, "handle": stored.handle,
                      "pds": stored.pds_endpoint, "access_token_expires": expires}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "graph":
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        status = asyncio.run(_run(args))
        sys.stdout.flush()  # a closed pipe shows here, not in a traceback at exit
        return status
    except PyskyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pysky-async: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        quiet_stdout()
        return SIGPIPE_STATUS


def quiet_stdout() -> None:
    """After the reader of stdout went away (``| head``): send what is left to /dev/null, so the
    interpreter's final flush does not print a second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
