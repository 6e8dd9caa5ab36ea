"""Smoke-test an installed wheel: what a user gets from ``pip install pysky_async``.

    python -m tests.packaging.smoke_wheel --python /path/to/fresh-venv/bin/python

Run from the repository root (``nox -s build`` does, after installing the built wheel into a
fresh venv). Every check runs in that venv, from an empty temporary directory, with no
``PYTHONPATH``: the package, the ``pysky-async`` command and the alembic migrations must all come
from the installed wheel. Checks:

1. ``import pysky_async`` loads it from the venv's site-packages, ``py.typed`` is there;
2. ``pysky-async --help``;
3. ``pysky-async db upgrade`` on SQLite and on a real PostgreSQL (tests/realnet/postgres.py),
   with the migrations found inside the wheel;
4. one call against the reference PDS (tests/realnet/pds.py): log in and create a record, then
   read it back.

The servers are started here and stopped at the end; the exit code is 0 only if every check
passed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import tempfile
from pathlib import Path

from tests.realnet.pds import PdsServer
from tests.realnet.postgres import PostgresServer

WHERE = """
import sys, pysky_async
from pathlib import Path
from pysky_async._storage.migrate import migrations_dir
package = Path(pysky_async.__file__).parent
assert str(package).startswith(sys.prefix), f"imported from {package}, not the venv {sys.prefix}"
assert (package / "py.typed").is_file(), "py.typed is missing"
assert migrations_dir().is_relative_to(package), f"migrations from {migrations_dir()}, not the wheel"
print(pysky_async.__version__, package)
"""

ONE_CALL = """
import asyncio, os
from pysky_async import AsyncBskyClient

async def main():
    async with AsyncBskyClient(username=os.environ["SMOKE_HANDLE"], password=os.environ["SMOKE_PASSWORD"],
                               auth_host=os.environ["SMOKE_PDS"], plc_directory=os.environ["SMOKE_PLC"],
                               database_url=os.environ["SMOKE_DB"]) as bsky:
        ref = await bsky.create_record("app.bsky.feed.post", {"text": "from the wheel",
                                                               "createdAt": "2026-01-01T00:00:00.000Z"})
        record = await bsky.get_record(ref.uri)
        assert record.value.text == "from the wheel", record
        print(ref.uri)

asyncio.run(main())
"""


class Smoke:
    def __init__(self, python: Path, work: Path) -> None:
        self.python = python
        self.bin = python.parent
        self.work = work
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PYTHON", "PYSKY_", "BSKY_", "PG", "VIRTUAL_ENV"))}
        self.env["PATH"] = f"{self.bin}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["HOME"] = str(work)  # the default SQLite file and caches land here, not in the user's home

    def run(self, what: str, argv: list[str], extra_env: dict[str, str] | None = None) -> str:
        print(f"--- {what}: {' '.join(argv)[:160]}", flush=True)
        result = subprocess.run(argv, cwd=self.work, env={**self.env, **(extra_env or {})},
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise SystemExit(f"FAILED: {what} (exit {result.returncode})\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-5000:]}")
        print(result.stdout.strip()[-600:], flush=True)
        return result.stdout

    def upgrade(self, what: str, url: str) -> None:
        out = self.run(what, [str(self.bin / "pysky-async"), "--database-url", url, "db", "upgrade"])
        assert out.strip(), f"{what}: db upgrade printed no revision"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", type=Path, required=True, help="the fresh venv's python, the wheel installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pysky-smoke-") as tmp:
        smoke = Smoke(args.python.absolute(), Path(tmp))
        smoke.run("import from the wheel", [str(smoke.python), "-c", WHERE])
        help_text = smoke.run("pysky-async --help", [str(smoke.bin / "pysky-async"), "--help"])
        assert "db" in help_text, help_text
        smoke.upgrade("db upgrade on SQLite", f"sqlite+aiosqlite:///{tmp}/smoke.sqlite3")
        with PostgresServer.start() as postgres:
            smoke.upgrade("db upgrade on PostgreSQL", postgres.create_database(f"smoke_{secrets.token_hex(4)}"))
        pds = PdsServer.start()
        try:
            account = pds.create_account(f"smoke{secrets.token_hex(4)}.test", secrets.token_urlsafe(12))
            smoke.run("one call against the reference PDS", [str(smoke.python), "-c", ONE_CALL], {
                "SMOKE_HANDLE": account.handle, "SMOKE_PASSWORD": account.password,
                "SMOKE_PDS": pds.base_url.replace("localhost", "127.0.0.1"), "SMOKE_PLC": pds.plc_url,
                "SMOKE_DB": f"sqlite+aiosqlite:///{tmp}/call.sqlite3"})
        finally:
            pds.stop()
    print("wheel smoke test: all checks passed")


if __name__ == "__main__":
    main()
