"""A real Bluesky network for tests: ``@atproto/dev-env`` (PLC, PDS, the bsky AppView, ozone).

No pytest dependency: usable from fixtures, scripts and a REPL::

    pg = PostgresServer.start()
    env = DevEnv.start(pg.create_database("devenv"))
    alice = env.create_account("alice.test", "alice-pass")
    ...                       # write records through env.pds_url
    env.process_all()         # returns once the AppView has indexed everything
    ...                       # read app.bsky.* from env.appview_url (or through the PDS)
    env.stop()

``start()`` runs ``install-devenv.sh`` (once per process; a fast no-op once installed into
``${PYSKY_REALNET_DIR:-~/.cache/pysky-realnet}``) and starts ``node --import ./loopback.mjs
run-devenv.mjs`` with node 22 first on PATH, in a fresh temporary directory (``TMPDIR``: the
PDS's sqlite files and blobs go there). The PLC, PDS, AppView, ozone and control ports are free
loopback ports picked here; dev-env picks free ports itself for its internal services (the
AppView's dataplane, bsync, a short-lived second PDS). Everything binds 127.0.0.1 only.

The database must be fresh and used by one DevEnv only: dev-env creates its own schemas in it
(``bsky``, ``bsync_devenv``, ``ozone_devenv``).

Fixed by dev-env (not configurable): the admin password of PDS, AppView and ozone is
``admin-pass`` (``DevEnv.admin_password``); handles must end in ``.test``.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pds import Account, _free_port, _read_tail, _tail, realnet_dir, stop_process

__all__ = ["DevEnv", "DevEnvError", "install_devenv", "devenv_installed"]

HERE = Path(__file__).resolve().parent
INSTALL_SCRIPT = HERE / "install-devenv.sh"
# its start takes 5-15 s here, but over 2 minutes under the CI load of two xdist workers and the version matrix
START_TIMEOUT = 300.0
ADMIN_PASSWORD = "admin-pass"  # hard-coded in @atproto/dev-env (const.js, TestBsky forces it)

_install_lock = threading.Lock()
_installed_dir: Path | None = None


class DevEnvError(RuntimeError):
    """Installing, starting or talking to the dev-env network failed."""


class _PortInUse(DevEnvError):
    pass


def devenv_installed() -> bool:
    """Whether install-devenv.sh has completed (then node/npm are no longer needed)."""
    return (realnet_dir() / ".installed-devenv").is_file()


def install_devenv() -> Path:
    """Run install-devenv.sh once per process; return the install directory."""
    global _installed_dir
    with _install_lock:
        if _installed_dir is None:
            t0 = time.monotonic()
            proc = subprocess.run(
                ["bash", str(INSTALL_SCRIPT)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise DevEnvError(
                    f"{INSTALL_SCRIPT} failed with exit code {proc.returncode} after "
                    f"{time.monotonic() - t0:.0f} s:\n{_tail(proc.stderr + proc.stdout, 60)}"
                )
            lines = proc.stdout.strip().splitlines()
            _installed_dir = Path(lines[-1]) if lines else realnet_dir()
        return _installed_dir


def _libpq_url(url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy) -> ``postgresql://...`` (node-postgres)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres")):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql://{rest}"


@dataclass(eq=False)
class DevEnv:
    pds_url: str
    """``http://localhost:<port>``: the URL the PDS advertises (DID documents, service URL)."""
    pds_listen_url: str
    """``http://127.0.0.1:<port>``: the same PDS by IP address."""
    appview_url: str
    """``http://127.0.0.1:<port>``: the bsky AppView (unauthenticated app.bsky.* reads)."""
    appview_did: str
    """The AppView's service DID (the PDS proxies app.bsky.* to it)."""
    plc_url: str
    """``http://localhost:<port>``: the PLC directory."""
    ozone_url: str
    ctl_url: str
    """``http://127.0.0.1:<port>``: the runner's control endpoint (POST /processAll)."""
    pg_url: str
    log_path: Path
    tmp_dir: Path
    startup_seconds: float
    admin_password: str = ADMIN_PASSWORD
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(cls, pg_url: str, *, timeout: float = START_TIMEOUT) -> DevEnv:
        """Install if needed and start the network on the fresh database ``pg_url`` (SQLAlchemy
        ``postgresql+asyncpg://`` or libpq ``postgresql://``); return once it serves."""
        install_dir = install_devenv()
        node_bin = install_dir / "node22" / "node-v22" / "bin"
        app_dir = install_dir / "devenv"
        last_error: DevEnvError | None = None
        for _ in range(3):
            try:
                return cls._start_once(node_bin, app_dir, _libpq_url(pg_url), timeout)
            except _PortInUse as e:  # lost a race for a free port: try other ports
                last_error = e
        assert last_error is not None
        raise last_error

    @classmethod
    def _start_once(cls, node_bin: Path, app_dir: Path, pg_url: str, timeout: float) -> DevEnv:
        ports: list[int] = []
        while len(ports) < 5:
            p = _free_port()
            if p not in ports:
                ports.append(p)
        plc_port, pds_port, bsky_port, ozone_port, ctl_port = ports
        tmp_dir = Path(tempfile.mkdtemp(prefix="pysky-devenv-"))
        log_path = tmp_dir / "devenv.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PDS_", "PDSLAB_", "DEVENV_", "BSKY_", "OZONE_", "DB_", "LOG_",
                                 "NODE_OPTIONS", "REDIS_"))
        }
        env.update(
            PATH=f"{node_bin}{os.pathsep}{env.get('PATH', '')}",
            TMPDIR=str(tmp_dir),
            NODE_NO_WARNINGS="1",
            LOG_ENABLED="false",
            REDIS_HOST="unused",  # dev-env only asserts that it is set
            DB_POSTGRES_URL=pg_url,
            DB_POSTGRES_SCHEMA="devenv",
            DEVENV_PLC_PORT=str(plc_port),
            DEVENV_PDS_PORT=str(pds_port),
            DEVENV_BSKY_PORT=str(bsky_port),
            DEVENV_OZONE_PORT=str(ozone_port),
            DEVENV_CTL_PORT=str(ctl_port),
        )
        t0 = time.monotonic()
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [str(node_bin / "node"), "--import", "./loopback.mjs", "run-devenv.mjs"],
                cwd=app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal goes to pytest, which stops us
            )
        server = cls(
            pds_url=f"http://localhost:{pds_port}",
            pds_listen_url=f"http://127.0.0.1:{pds_port}",
            appview_url=f"http://127.0.0.1:{bsky_port}",
            appview_did="",
            plc_url=f"http://localhost:{plc_port}",
            ozone_url=f"http://127.0.0.1:{ozone_port}",
            ctl_url=f"http://127.0.0.1:{ctl_port}",
            pg_url=pg_url,
            log_path=log_path,
            tmp_dir=tmp_dir,
            startup_seconds=0.0,
            _proc=proc,
        )
        _live.add(server)
        try:
            started = server._wait_started(timeout)
        except BaseException:
            server.stop(keep_dir=True)
            raise
        server.appview_did = str(started.get("bskyDid", ""))
        server.startup_seconds = time.monotonic() - t0
        return server

    def _wait_started(self, timeout: float) -> dict[str, Any]:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                tail = _read_tail(self.log_path, 60)
                cls = _PortInUse if "EADDRINUSE" in tail else DevEnvError
                raise cls(f"dev-env exited with code {rc} during startup; log {self.log_path}:\n{tail}")
            try:
                for line in self.log_path.read_text(errors="replace").splitlines():
                    if line.startswith("{") and '"event":"started"' in line:
                        return dict(json.loads(line))
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise DevEnvError(
                    f"dev-env not started after {timeout:.0f} s; log {self.log_path}:\n"
                    f"{_read_tail(self.log_path, 60)}"
                )
            time.sleep(0.1)

    def stop(self, *, keep_dir: bool = False) -> None:
        """SIGTERM (SIGKILL of the process group after 20 s), then remove the temp dir. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _live.discard(self)
        proc = self._proc
        if proc is not None:
            stop_process(proc, grace=20)
        if not keep_dir and os.environ.get("PYSKY_REALNET_KEEP") != "1":
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> DevEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    def process_all(self, timeout: float = 60) -> None:
        """Wait until the AppView has indexed everything the PDS has emitted (POST /processAll)."""
        req = urllib.request.Request(f"{self.ctl_url}/processAll", data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                r.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            e.close()
            raise DevEnvError(f"processAll -> HTTP {e.code}: {detail}") from None

    def xrpc(
        self,
        nsid: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        admin: bool = False,
        host: str | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Minimal stdlib XRPC call (to the PDS unless ``host`` is given): GET when ``body`` is
        None, else POST. ``token``: a bearer token; ``admin``: basic auth ``admin:admin-pass``."""
        headers = {"accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if token:
            headers["authorization"] = f"Bearer {token}"
        elif admin:
            basic = base64.b64encode(f"admin:{self.admin_password}".encode()).decode()
            headers["authorization"] = f"Basic {basic}"
        url = f"{host or self.pds_listen_url}/xrpc/{nsid}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=data, headers=headers,
                                     method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                result: dict[str, Any] = json.loads(r.read() or b"{}")
                return result
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            e.close()
            raise DevEnvError(f"{nsid} -> HTTP {e.code}: {detail}") from None

    def create_account(self, handle: str, password: str) -> Account:
        """Create an account on the PDS (no invite needed). Handles must end in ``.test``, with a
        first label of 3-18 characters [a-z0-9-]."""
        return self.create_account_with_session(handle, password)[0]

    def create_account_with_session(self, handle: str, password: str) -> tuple[Account, str]:
        """Like ``create_account``, also returning the new account's access token (to write
        records for many accounts without logging each one in)."""
        if not handle.endswith(".test"):
            raise ValueError(f"handle {handle!r} must end in '.test' on this PDS")
        email = f"{handle.removesuffix('.test')}@example.com"
        out = self.xrpc(
            "com.atproto.server.createAccount",
            {"handle": handle, "password": password, "email": email},
        )
        account = Account(handle=out["handle"], did=out["did"], password=password, email=email)
        return account, str(out["accessJwt"])

    def new_account(self, prefix: str = "u") -> tuple[Account, str]:
        """A fresh account with a random handle and password, and its access token."""
        return self.create_account_with_session(
            f"{prefix}{secrets.token_hex(5)}.test", secrets.token_urlsafe(12))


_live: set[DevEnv] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()


if __name__ == "__main__":  # manual check: python -m tests.realnet.devenv
    from .postgres import PostgresServer

    t0 = time.monotonic()
    with PostgresServer.start() as pg:
        with DevEnv.start(pg.create_database("devenv")) as env:
            print(f"dev-env up in {env.startup_seconds:.1f} s ({time.monotonic() - t0:.1f} s with PostgreSQL)")
            print(env)
            acct = env.create_account("alice.test", "alice-pass")
            env.process_all()
            print(env.xrpc("app.bsky.actor.getProfile", host=env.appview_url, params={"actor": acct.did}))
