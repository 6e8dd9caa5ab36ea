"""A throwaway PostgreSQL cluster for tests (no pytest dependency).

    pg = PostgresServer.start()
    url = pg.create_database("t1")   # postgresql+asyncpg://postgres@127.0.0.1:<port>/t1
    ...
    pg.drop_database("t1")
    pg.stop()

initdb into a fresh temp dir (trust auth, fsync off), listens on a free 127.0.0.1 port with
its unix socket inside that dir. PostgreSQL refuses to run as root: as root, initdb/pg_ctl
run as the ``postgres`` user via ``su`` and the temp dir is chowned to it.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PostgresError", "PostgresServer", "find_pg_bindir"]

_REQUIRED = ("initdb", "pg_ctl", "postgres", "psql")
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresError(RuntimeError):
    pass


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / exe, os.X_OK) for exe in _REQUIRED)


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([\d.]+)/", path)
    return tuple(int(p) for p in m.group(1).split(".")) if m else (0,)


def find_pg_bindir() -> Path | None:
    """PostgreSQL server binaries: $PYSKY_PG_BINDIR, `pg_config --bindir`, the newest
    /usr/lib/postgresql/*/bin, or PATH. None if no server binaries are installed."""
    candidates: list[Path] = []
    if os.environ.get("PYSKY_PG_BINDIR"):
        candidates.append(Path(os.environ["PYSKY_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin/"), key=_version_key, reverse=True):
        candidates.append(Path(d))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for c in candidates:
        if _has_server(c):
            return c
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    # PGHOST/PGSSLMODE/PGSERVICE... from the caller's shell must not redirect our commands
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    return env


@dataclass(eq=False)
class PostgresServer:
    bindir: Path
    base_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"
    _as_postgres: bool = field(default=False, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(cls) -> PostgresServer:
        bindir = find_pg_bindir()
        if bindir is None:
            raise PostgresError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found "
                "(apt-get install postgresql, or set PYSKY_PG_BINDIR)"
            )
        as_postgres = os.geteuid() == 0
        base_dir = Path(tempfile.mkdtemp(prefix="pysky-pg-"))
        if as_postgres:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(base_dir, ignore_errors=True)
                raise PostgresError(
                    "running as root, but there is no 'postgres' user to run the server as"
                ) from None
            os.chown(base_dir, pw.pw_uid, pw.pw_gid)
        server = cls(bindir=bindir, base_dir=base_dir, port=0, _as_postgres=as_postgres)
        _live_servers.add(server)
        try:
            server._initdb()
            for attempt in range(3):
                server.port = _free_port()
                try:
                    server._pg_ctl_start()
                    break
                except PostgresError as e:
                    if attempt == 2 or "could not bind" not in str(e).lower():
                        raise
        except BaseException:
            server.stop(keep_dir=True)
            raise
        return server

    def _run(self, argv: list[str], *, what: str, timeout: float = 120) -> str:
        cmd = shlex.join(argv)
        full = ["su", "postgres", "-s", "/bin/sh", "-c", cmd] if self._as_postgres else argv
        try:
            proc = subprocess.run(
                full, capture_output=True, text=True, env=_clean_env(),
                stdin=subprocess.DEVNULL, timeout=timeout, check=False,
                cwd=self.base_dir,
            )
        except subprocess.TimeoutExpired as e:
            raise PostgresError(f"{what} timed out after {timeout:.0f} s: {cmd}") from e
        if proc.returncode != 0:
            log = ""
            if self.log_path.exists():
                log = "\n--- server log:\n" + "\n".join(
                    self.log_path.read_text(errors="replace").splitlines()[-30:]
                )
            raise PostgresError(
                f"{what} failed (exit {proc.returncode}): {cmd}\n{proc.stdout}{proc.stderr}{log}"
            )
        return proc.stdout

    def _initdb(self) -> None:
        self._run(
            [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
             "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            what="initdb",
        )

    def _pg_ctl_start(self) -> None:
        opts = (
            f"-c listen_addresses={self.host} -p {self.port} "
            f"-c unix_socket_directories={self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 "
            # e.g. "-c shared_preload_libraries=pg_stat_statements" to profile a benchmark's statements
            + os.environ.get("PYSKY_PG_OPTIONS", "")
        )
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
             "-w", "-t", "60", "-o", opts, "start"],
            what="pg_ctl start",
        )

    def stop(self, *, keep_dir: bool = False) -> None:
        """Stop the server (immediate shutdown: the data is throwaway) and remove its dir."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _live_servers.discard(self)
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(
                    [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                     "-w", "stop"],
                    what="pg_ctl stop", timeout=60,
                )
        finally:
            if not keep_dir and os.environ.get("PYSKY_REALNET_KEEP") != "1":
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases
    def url(self, name: str, driver: str = "asyncpg") -> str:
        """SQLAlchemy URL of database `name` (``driver=""`` for a plain libpq URL)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{name}"

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL with psql over TCP (trust auth: works as any OS user)."""
        proc = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql],
            capture_output=True, text=True, env=_clean_env(), stdin=subprocess.DEVNULL,
            timeout=60, check=False,
        )
        if proc.returncode != 0:
            raise PostgresError(f"psql failed (exit {proc.returncode}): {sql}\n{proc.stderr}")
        return proc.stdout

    def create_database(self, name: str) -> str:
        """CREATE DATABASE; return its SQLAlchemy URL (``postgresql+asyncpg://...``)."""
        _check_name(name)
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ... WITH (FORCE): lingering connections are terminated."""
        _check_name(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _check_name(name: str) -> None:
    if not _DB_NAME.match(name):
        raise ValueError(f"invalid database name {name!r} (want [A-Za-z_][A-Za-z0-9_]*)")


_live_servers: set[PostgresServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_live_servers):
        try:
            server.stop()
        except PostgresError:
            pass


if __name__ == "__main__":  # quick manual check: python tests/realnet/postgres.py
    t0 = time.monotonic()
    with PostgresServer.start() as pg:
        print(f"started in {time.monotonic() - t0:.2f} s: {pg}")
        print(pg.create_database("smoke"))
        print(pg.psql("select 1", database="smoke").strip())
        pg.drop_database("smoke")
