"""A real AT Protocol PDS for tests: the reference ``@atproto/pds`` + an in-memory PLC directory.

No pytest dependency: usable from fixtures, scripts and a REPL::

    pds = PdsServer.start(access_ttl="3s")
    alice = pds.create_account("alice.test", "alice-pass")
    ...
    pds.request_count("com.atproto.server.createSession")
    pds.stop()

``start()`` runs ``install-pds.sh`` (once per process; a fast no-op once installed into
``${PYSKY_REALNET_DIR:-~/.cache/pysky-realnet}``), picks free loopback ports, uses a fresh
temporary data directory and starts ``node run-pds.mjs`` with node 22 first on PATH. Several
instances can run at once. Everything binds 127.0.0.1 only; the PDS advertises
``http://localhost:<port>`` (``base_url``), which is what clients following DID documents use.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Account", "PdsError", "PdsServer", "install_pds", "realnet_dir"]

HERE = Path(__file__).resolve().parent
INSTALL_SCRIPT = HERE / "install-pds.sh"
START_TIMEOUT = 60.0
_BARRIER_PARAM = "pysky_log_barrier"

_install_lock = threading.Lock()
_installed_dir: Path | None = None


class PdsError(RuntimeError):
    """Installing, starting or talking to the test PDS failed."""


def realnet_dir() -> Path:
    """Where install-pds.sh installs node 22 and the PDS."""
    env = os.environ.get("PYSKY_REALNET_DIR")
    return Path(env) if env else Path.home() / ".cache" / "pysky-realnet"


def install_pds() -> Path:
    """Run install-pds.sh once per process; return the install directory."""
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
                raise PdsError(
                    f"{INSTALL_SCRIPT} failed with exit code {proc.returncode} after "
                    f"{time.monotonic() - t0:.0f} s:\n{_tail(proc.stderr + proc.stdout, 60)}"
                )
            lines = proc.stdout.strip().splitlines()
            _installed_dir = Path(lines[-1]) if lines else realnet_dir()
        return _installed_dir


@dataclass(frozen=True)
class Account:
    handle: str
    did: str
    password: str
    email: str = ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


def _read_tail(path: Path, n: int = 40) -> str:
    try:
        return _tail(path.read_text(errors="replace"), n)
    except OSError as e:
        return f"(could not read {path}: {e})"


@dataclass(eq=False)
class PdsServer:
    base_url: str
    """``http://localhost:<port>``: the URL the PDS advertises (DID documents, service URL)."""
    plc_url: str
    """``http://localhost:<plc_port>``."""
    listen_url: str
    """``http://127.0.0.1:<listen port>``: where the PDS process really listens (differs from
    ``base_url`` only when started with ``listen_port=``)."""
    log_path: Path
    admin_password: str
    jwt_secret: str
    port: int
    listen_port: int
    plc_port: int
    data_dir: Path
    _proc: subprocess.Popen[bytes] = field(repr=False)
    _stopped: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _log_offset: int = field(default=0, repr=False)
    _counts: Counter[str] = field(default_factory=Counter, repr=False)
    _seen_barriers: set[str] = field(default_factory=set, repr=False)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def service_did(self) -> str:
        return "did:web:localhost"

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(
        cls,
        *,
        access_ttl: str | None = None,
        refresh_ttl: str | None = None,
        rate_limits: bool = False,
        listen_port: int | None = None,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> PdsServer:
        """Install if needed and start a fresh PDS + PLC; return once ``/xrpc/_health`` answers.

        access_ttl / refresh_ttl: token lifetimes such as ``"3s"`` (defaults 120mins / 90days).
        rate_limits: ``PDS_RATE_LIMITS_ENABLED`` with the production limits.
        port: the advertised port (``base_url``); free port if None.
        listen_port: if given, the PDS listens there but still advertises ``port`` (put a proxy
            of your own on ``port``); ``request_count`` and health checks use the listen port.
        extra_env: any further PDS_* / PDSLAB_* variables (override everything else).
        """
        install_dir = install_pds()
        node_bin = install_dir / "node22" / "node-v22" / "bin"
        app_dir = install_dir / "pds"
        attempts = 1 if (port is not None or listen_port is not None) else 3
        last_error: PdsError | None = None
        for _ in range(attempts):
            try:
                return cls._start_once(
                    node_bin=node_bin,
                    app_dir=app_dir,
                    access_ttl=access_ttl,
                    refresh_ttl=refresh_ttl,
                    rate_limits=rate_limits,
                    listen_port=listen_port,
                    port=port,
                    extra_env=extra_env,
                )
            except _PortInUse as e:  # lost a race for a free port: try other ports
                last_error = e
        assert last_error is not None
        raise last_error

    @classmethod
    def _start_once(
        cls,
        *,
        node_bin: Path,
        app_dir: Path,
        access_ttl: str | None,
        refresh_ttl: str | None,
        rate_limits: bool,
        listen_port: int | None,
        port: int | None,
        extra_env: dict[str, str] | None,
    ) -> PdsServer:
        pds_port = port if port is not None else _free_port()
        plc_port = _free_port()
        while plc_port in (pds_port, listen_port):
            plc_port = _free_port()
        real_port = listen_port if listen_port is not None else pds_port
        admin_password = "admin-" + secrets.token_hex(8)
        jwt_secret = "jwt-" + secrets.token_hex(16)
        data_dir = Path(tempfile.mkdtemp(prefix="pysky-pds-"))
        log_path = data_dir / "pds.log"

        # a deterministic environment: nothing PDS-related leaks in from the caller's shell
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PDS_", "PDSLAB_", "LOG_", "NODE_OPTIONS"))
        }
        env.update(
            PATH=f"{node_bin}{os.pathsep}{env.get('PATH', '')}",
            NODE_NO_WARNINGS="1",
            LOG_ENABLED="true",
            LOG_LEVEL="info",
            PDS_PORT=str(pds_port),
            PDSLAB_PLC_PORT=str(plc_port),
            PDSLAB_DATA=str(data_dir / "data"),
            PDS_ADMIN_PASSWORD=admin_password,
            PDS_JWT_SECRET=jwt_secret,
            PDS_RATE_LIMITS_ENABLED="true" if rate_limits else "false",
            PDS_ENABLE_DID_DOC_WITH_SESSION="true",
        )
        if listen_port is not None:
            env["PDSLAB_LISTEN_PORT"] = str(listen_port)
        if access_ttl is not None:
            env["PDSLAB_ACCESS_TTL"] = access_ttl
        if refresh_ttl is not None:
            env["PDSLAB_REFRESH_TTL"] = refresh_ttl
        if extra_env:
            env.update(extra_env)

        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [str(node_bin / "node"), "run-pds.mjs"],
                cwd=app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal goes to pytest, which stops us
            )
        server = cls(
            base_url=f"http://localhost:{pds_port}",
            plc_url=f"http://localhost:{plc_port}",
            listen_url=f"http://127.0.0.1:{real_port}",
            log_path=log_path,
            admin_password=admin_password,
            jwt_secret=jwt_secret,
            port=pds_port,
            listen_port=real_port,
            plc_port=plc_port,
            data_dir=data_dir,
            _proc=proc,
        )
        _live_servers.add(server)
        try:
            server._wait_healthy(START_TIMEOUT)
        except BaseException:
            server.stop(keep_log=True)
            raise
        return server

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                tail = _read_tail(self.log_path)
                cls = _PortInUse if "EADDRINUSE" in tail else PdsError
                raise cls(f"PDS exited with code {rc} during startup; log {self.log_path}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.listen_url}/xrpc/_health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise PdsError(
                    f"PDS not healthy at {self.listen_url}/xrpc/_health after {timeout:.0f} s; "
                    f"log {self.log_path}:\n{_read_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self, *, keep_log: bool = False) -> None:
        """SIGTERM (SIGKILL after 10 s), then remove the data dir. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _live_servers.discard(self)
        stop_process(self._proc, grace=10)
        if not keep_log and os.environ.get("PYSKY_REALNET_KEEP") != "1":
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> PdsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    def xrpc(
        self, nsid: str, body: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """Minimal stdlib XRPC call to the listen port: GET when ``body`` is None, else POST;
        an empty ``body`` (``{}``) POSTs with no request body (procedures without input, such
        as ``com.atproto.server.deleteSession``, reject one)."""
        headers = {"accept": "application/json"}
        data = None
        if body:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if token:
            headers["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            f"{self.listen_url}/xrpc/{nsid}", data=data, headers=headers,
            method="POST" if body is not None else "GET",
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                result: dict[str, Any] = json.loads(r.read() or b"{}")
                return result
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            e.close()
            raise PdsError(f"{nsid} -> HTTP {e.code}: {detail}") from None

    def create_account(self, handle: str, password: str) -> Account:
        """Create an account (no invite needed). Handles must end in ``.test``, with a first
        label of 3-18 characters [a-z0-9-]."""
        if not handle.endswith(".test"):
            raise ValueError(f"handle {handle!r} must end in '.test' on this PDS")
        email = f"{handle.removesuffix('.test')}@example.com"
        out = self.xrpc(
            "com.atproto.server.createAccount",
            {"handle": handle, "password": password, "email": email},
        )
        return Account(handle=out["handle"], did=out["did"], password=password, email=email)

    def request_count(self, nsid: str) -> int:
        """How many requests for ``/xrpc/<nsid>`` reached the server (any method, any status).

        Counted from the PDS's own pino-http log lines (``"msg":"request completed"`` etc. with
        ``"req":{"url":"/xrpc/<nsid>..."}``). pino writes asynchronously here (sonic-boom with
        ``sync: false``, and the line is written on the response's ``finish`` event, which can
        come after the client has its response). So this method first sends a barrier request
        (``GET /xrpc/_health?pysky_log_barrier=<random>``) and waits until that line is in the
        log: requests whose responses the caller already has were logged before it, since
        sonic-boom keeps write order. Barrier requests are not counted.
        """
        return self.path_request_count(f"/xrpc/{nsid}")

    def path_request_count(self, path: str) -> int:
        """How many requests for ``path`` (any path, e.g. ``/oauth/token``) reached the server;
        see ``request_count``."""
        barrier = secrets.token_hex(8)
        with urllib.request.urlopen(
            f"{self.listen_url}/xrpc/_health?{_BARRIER_PARAM}={barrier}", timeout=10
        ) as r:
            r.read()
        deadline = time.monotonic() + 10
        with self._lock:
            while True:
                self._scan_log()
                if barrier in self._seen_barriers:
                    return self._counts[path]
                if time.monotonic() > deadline:
                    raise PdsError(
                        f"log barrier {barrier} not seen in {self.log_path} after 10 s"
                    )
                time.sleep(0.01)

    def _scan_log(self) -> None:
        """Parse the complete log lines written since the last scan."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            chunk = f.read()
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self._log_offset += end + 1
        for raw in chunk[: end + 1].splitlines():
            if b'"req"' not in raw:
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            # one "request completed/errored/aborted" line per request from pino-http (logger
            # "pds"); skip xrpc-server's extra error lines and the PLC's own request lines
            msg = line.get("msg")
            req = line.get("req")
            if line.get("name") != "pds" or not isinstance(req, dict):
                continue
            if not (isinstance(msg, str) and msg.startswith("request ")):
                continue
            url = str(req.get("url", ""))
            url_path, _, query = url.partition("?")
            if _BARRIER_PARAM in query:
                self._seen_barriers.update(urllib.parse.parse_qs(query).get(_BARRIER_PARAM, []))
                continue
            self._counts[urllib.parse.unquote(url_path)] += 1


def stop_process(proc: subprocess.Popen[Any], *, grace: float) -> None:
    """SIGTERM, then SIGKILL to its process group after ``grace`` seconds; reaps it."""
    if proc.poll() is not None:
        proc.wait()
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


class _PortInUse(PdsError):
    pass


_live_servers: set[PdsServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_live_servers):
        server.stop()
