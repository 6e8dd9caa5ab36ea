"""The README and the documentation site are tests: every code block in README.md and in the
pages under docs/ runs here, as written, against the real reference servers (dev-env: PLC, PDS
and the bsky AppView; the fake video service for the video snippet, since Bluesky's video service
is not open source).

What the test injects, and nothing else:
- environment variables for hosts (``PYSKY_AUTH_HOST``, ``PYSKY_PUBLIC_HOST``,
  ``PYSKY_PLC_DIRECTORY``, ``PYSKY_VIDEO_HOST``, ``PYSKY_VIDEO_SERVICE_DID``) and the database
  (``PYSKY_DATABASE_URL``), with the virtualenv first on ``PATH``; for the Python blocks, which the
  README says run with an account configured, ``BSKY_AUTH_USERNAME``/``BSKY_AUTH_PASSWORD`` of a
  fresh dev-env account;
- values that only exist on the real network: the actor ``bsky.app`` and ``alice.bsky.social``
  become dev-env accounts' handles, ``you.bsky.social``/``xxxx-xxxx-xxxx-xxxx`` the fresh account's
  credentials, ``http://localhost:2583`` the dev-env PDS, Bluesky's moderation service
  (``did:plc:ar7c4by46qjdydhdevvrndac`` at ``https://mod.bsky.app``) dev-env's ozone;
- a working directory holding the files the snippets open (``photo.jpg``, ``photo.png``,
  ``clip.mp4``, ``en.vtt``, ``notes.txt``);
- ``sign_in(url)``, which the OAuth section says stands for the user's browser: the test's driver
  of the PDS's own sign-in and consent pages (tests/oauth/provider_ui.py), signing in as the
  ``alice.bsky.social`` stand-in.

Each document runs on its own (its own fresh accounts and working directory), with the same
mechanism: the README is the short tour, the guide pages under docs/guide/ hold the details and run
their own blocks. A guide page that includes a README section (``<!-- readme: ... -->``,
docs/hooks.py) adds no block of its own: that section's blocks run as the README's. A ``text`` block
is shown, not run (e.g. ``pip install pysky_async``, which needs the package on PyPI).

Python blocks: a block that runs its own event loop (``asyncio.run(...)``) is a whole program and
runs as one. The other blocks are fragments: they run in order, in one program, inside the
``async with AsyncBskyClient() as bsky:`` that the README says they assume. Shell blocks run in
bash from the root of a clone (where a newcomer runs them), each command as written: a copy of this
checkout's files (``git ls-files``, tracked and new) with a ``.venv`` of its own, first on ``PATH``,
which sees the test virtualenv's packages (a ``.pth`` file), so ``pip install -e .`` there needs no
download and never reinstalls the virtualenv that runs the tests (``.ci/run`` runs them on two
pytest-xdist workers: the other one imports from it meanwhile). The test command block is what
``.ci/run`` runs: this test checks that .ci/run runs exactly it instead of recursing into it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pysky_async import OAuth

from .realnet.devenv import DevEnv

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide"
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
"""Every document whose code blocks run: the README and the documentation site's pages."""
VENV_BIN = Path(sys.executable).parent
TEST_COMMAND = ".venv/bin/python -m pytest"
CI_COMMAND = "bash .ci/run"
"""The one command that sets everything up and runs the tests: it is what runs this test."""
FIRST_SCREEN_LINES = 40

_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<code>.*?)^```", re.M | re.S)


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int

    @property
    def is_program(self) -> bool:
        return "asyncio.run(" in self.code


def doc_blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    return [Block(m["lang"], m["code"], text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]


def readme_blocks() -> list[Block]:
    return doc_blocks(README)


def name(document: Path) -> str:
    return document.relative_to(ROOT).as_posix()


def documents_with(lang: str) -> list[Any]:
    return [pytest.param(d, id=name(d)) for d in DOCUMENTS if any(b.lang == lang for b in doc_blocks(d))]


def test_the_readme_links_resolve_and_reach_every_guide_page() -> None:
    """The README is the short tour: its links into the clone point at files that exist, and every
    guide page is reachable from it."""
    text = README.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:|#", t)]
    assert [t for t in targets if not (ROOT / t).exists()] == []
    linked = {(ROOT / t).resolve() for t in targets}
    assert [name(p) for p in sorted(GUIDE.glob("*.md")) if p.resolve() not in linked] == []


def test_every_block_has_a_known_language() -> None:
    assert readme_blocks(), "README.md has no code blocks?"
    unknown = [(name(d), b.line, b.lang) for d in DOCUMENTS for b in doc_blocks(d)
               if b.lang not in ("python", "bash", "text")]
    assert not unknown, f"code blocks without python/bash/text language: {unknown}"


def test_ci_runs_the_readme_test_command() -> None:
    commands = [b for b in readme_blocks() if b.lang == "bash" and TEST_COMMAND in b.code]
    assert commands, f"README must show the test command {TEST_COMMAND!r}"
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()


def test_the_first_screen_shows_install_and_run_and_the_test_command() -> None:
    """A newcomer's two commands, before any scrolling: install and run something against a local
    server (run by test_readme_shell_blocks_run), and the one command for the tests."""
    first = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES])
    commands = [c for b in readme_blocks() if b.lang == "bash" and b.line <= FIRST_SCREEN_LINES
                for c in _shell_commands(b.code)]
    assert CI_COMMAND in commands, f"README's first {FIRST_SCREEN_LINES} lines must show {CI_COMMAND!r}"
    assert any("pip install" in c and "examples.local_pds" in c for c in commands), first


# ---------------------------------------------------------------- running against real servers

SUBSTITUTIONS = {"bsky.app": "actor_handle", "alice.bsky.social": "other_handle", "you.bsky.social": "my_handle",
                 "xxxx-xxxx-xxxx-xxxx": "my_password", "http://localhost:2583": "pds_url",
                 "did:plc:ar7c4by46qjdydhdevvrndac": "labeler_did", "https://mod.bsky.app": "labeler_url"}


@dataclass
class ReadmeWorld:
    env: dict[str, str]
    cwd: Path
    values: dict[str, str]

    def substitute(self, code: str) -> str:
        for literal, key in SUBSTITUTIONS.items():
            code = re.sub(rf"(?<![\w/.]){re.escape(literal)}(?![\w.])", self.values[key], code)
        return code

    async def run(self, argv: list[str], *, timeout: float = 300, cwd: Path | None = None,
                  account: bool = True) -> subprocess.CompletedProcess[str]:
        """Run without blocking the loop: the fake video service in this process must answer."""
        env = self.env if account else {k: v for k, v in self.env.items() if not k.startswith("BSKY_AUTH_")}
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd or self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise
        return subprocess.CompletedProcess(argv, process.returncode or 0, out.decode(), err.decode())


def _fixture_files(directory: Path) -> None:
    from PIL import Image

    from .videos import h264_aac_mp4

    Image.new("RGB", (640, 480), (30, 120, 200)).save(directory / "photo.jpg", quality=90)
    Image.new("RGBA", (64, 64), (200, 30, 30, 128)).save(directory / "photo.png")
    h264_aac_mp4(directory, "clip.mp4")
    (directory / "en.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n", encoding="utf-8")
    (directory / "notes.txt").write_text(" ".join(f"word{n}" for n in range(200)), encoding="utf-8")


@pytest.fixture(scope="session")
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the snippets open, made once (a video takes a while) and copied for each document."""
    directory = tmp_path_factory.mktemp("readme-files")
    _fixture_files(directory)
    return directory


@pytest.fixture(scope="session")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the shell blocks run: this checkout's files (tracked and new, as ``git ls-files`` lists
    them) copied, with a virtualenv ``.venv`` of its own that sees the test virtualenv's packages."""
    root = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():  # a tracked file deleted in this checkout is not copied
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / relative)
    subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True, capture_output=True)
    site = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True, text=True)
    # last on sys.path (after the clone's own editable install): the packages of the venv running the tests
    (Path(site.stdout.strip()) / "zz_pysky_test_venv.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n")
    return root


@pytest.fixture
async def world(devenv: DevEnv, tmp_path: Path, fixture_files: Path) -> AsyncIterator[ReadmeWorld]:
    from .realnet.fake_video_service import FakeVideoService

    me, _ = devenv.new_account("me")
    actor, _ = devenv.new_account("actor")
    other, _ = devenv.new_account("alice")
    devenv.process_all()
    cwd = tmp_path / "work"
    shutil.copytree(fixture_files, cwd)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG"))}
    async with FakeVideoService(plc_url=devenv.plc_url, step_delay=0.01) as video:
        env = {
            **clean,
            "PATH": f"{VENV_BIN}{os.pathsep}{clean.get('PATH', '')}",
            "BSKY_AUTH_USERNAME": me.handle,
            "BSKY_AUTH_PASSWORD": me.password,
            "PYSKY_AUTH_HOST": devenv.pds_url,
            "PYSKY_PUBLIC_HOST": devenv.appview_url,
            "PYSKY_PLC_DIRECTORY": devenv.plc_url,
            "PYSKY_VIDEO_HOST": video.url,
            "PYSKY_VIDEO_SERVICE_DID": video.service_did,
            "PYSKY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/readme.sqlite3",
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",  # this checkout's code first, whatever is installed
            "BSKY_OAUTH_ENCRYPTION_KEY": OAuth.generate_encryption_key(),  # kept in the environment, as README says
            "README_OAUTH_USER": other.handle,
            "README_OAUTH_PASSWORD": other.password,
        }
        yield ReadmeWorld(env, cwd, {"actor_handle": actor.handle, "other_handle": other.handle,
                                     "my_handle": me.handle, "my_password": me.password,
                                     "pds_url": devenv.pds_url, "labeler_did": _ozone_did(devenv),
                                     "labeler_url": devenv.ozone_url})


def _ozone_did(devenv: DevEnv) -> str:
    """dev-env's ozone: its service DID is the moderation account ``mod-authority.test``."""
    return str(devenv.xrpc("com.atproto.identity.resolveHandle", params={"handle": "mod-authority.test"})["did"])


SIGN_IN = """
import os
from urllib.parse import parse_qsl, urlsplit
from tests.oauth.provider_ui import approve

async def sign_in(url):  # injected: the user's browser on the PDS's sign-in and consent pages
    back = await approve(url, os.environ["README_OAUTH_USER"], os.environ["README_OAUTH_PASSWORD"])
    return dict(parse_qsl(urlsplit(back).query))
"""


def _fragment_program(blocks: list[Block], document: str = "README.md") -> str:
    body = "\n".join(f"# {document} line {b.line}\n{b.code}" for b in blocks)
    return (f"import asyncio\nfrom pysky_async import AsyncBskyClient\n{SIGN_IN}\n"
            "async def readme():\n    async with AsyncBskyClient() as bsky:\n"
            f"{textwrap.indent(body, ' ' * 8)}\n\nasyncio.run(readme())\n")


def _shell_commands(code: str) -> Iterator[str]:
    """Commands of a shell block, continuation lines joined, comments dropped."""
    for command in code.replace("\\\n", " ").splitlines():
        command = command.strip()
        if command and not command.startswith("#"):
            yield command



@pytest.mark.anyio
@pytest.mark.parametrize("document", documents_with("python"))
async def test_readme_python_blocks_run(world: ReadmeWorld, document: Path) -> None:
    blocks = [b for b in doc_blocks(document) if b.lang == "python"]
    programs = [b for b in blocks if b.is_program]
    fragments = [b for b in blocks if not b.is_program]
    for program in programs:
        result = await world.run([sys.executable, "-c", world.substitute(program.code)])
        assert result.returncode == 0, f"{name(document)} line {program.line} failed:\n{result.stderr}"
    if not fragments:
        return
    source = world.substitute(_fragment_program(fragments, name(document)))
    (world.cwd / "readme_fragments.py").write_text(source, encoding="utf-8")
    result = await world.run([sys.executable, "readme_fragments.py"])
    assert result.returncode == 0, f"{name(document)} fragments failed (see readme_fragments.py):\n{result.stderr}"


@pytest.mark.anyio
@pytest.mark.parametrize("document", documents_with("bash"))
async def test_readme_shell_blocks_run(world: ReadmeWorld, clone: Path, document: Path) -> None:
    before = _test_venv_state()
    world.env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{world.env['PATH']}"
    world.env["PYTHONPATH"] = f"{clone / 'src'}{os.pathsep}{clone}"
    for block in (b for b in doc_blocks(document) if b.lang == "bash"):
        for command in _shell_commands(block.code):
            if command in (TEST_COMMAND, CI_COMMAND):
                continue  # what .ci/run runs, and .ci/run itself (it is running this test)
            result = await world.run(["bash", "-euo", "pipefail", "-c", world.substitute(command)], cwd=clone,
                                     account=False)
            assert result.returncode == 0, (
                f"{name(document)} line {block.line}: {shlex.quote(command)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    assert _test_venv_state() == before, "the blocks changed the virtualenv running the tests (and other workers)"


def _test_venv_state() -> dict[str, tuple[int, str]]:
    """What a ``venv`` or ``pip install -e .`` into the virtualenv running the tests would change: its
    interpreter links, its configuration and this project's installation (modification time, content)."""
    venv = VENV_BIN.parent
    site = Path(sysconfig.get_paths()["purelib"])
    paths = [*VENV_BIN.glob("python*"), *VENV_BIN.glob("pysky-async*"), venv / "pyvenv.cfg",
             *site.glob("*pysky_async*"), *site.glob("pysky_async-*.dist-info/*")]
    return {str(p): (p.lstat().st_mtime_ns, os.readlink(p) if p.is_symlink() else p.read_text(errors="replace")
                     if p.is_file() else "") for p in paths}


def test_the_error_tree_names_every_exported_exception() -> None:
    import pysky_async

    tree = next(b.code for b in doc_blocks(GUIDE / "errors.md") if b.code.startswith("PyskyError"))
    exported = {name for name in pysky_async.__all__
                if isinstance(getattr(pysky_async, name), type) and issubclass(getattr(pysky_async, name), Exception)}
    missing = sorted(name for name in exported if not re.search(rf"\b{name}\b", tree))
    assert not missing, f"the error tree of docs/guide/errors.md misses {missing}"


def test_the_configuration_table_lists_every_option_and_variable() -> None:
    import inspect

    from pysky_async import AsyncBskyClient
    from pysky_async._config import ENVIRONMENT

    table = (GUIDE / "configuration.md").read_text(encoding="utf-8")
    options = [name for name in inspect.signature(AsyncBskyClient).parameters]
    assert [o for o in options if f"`{o}=`" not in table] == []
    variables = [*ENVIRONMENT.values(), "PYSKY_AUTH_HOST", "PYSKY_PUBLIC_HOST", "PYSKY_DATABASE_URL",
                 "BSKY_AUTH_USERNAME", "BSKY_AUTH_PASSWORD"]
    assert [v for v in variables if v not in table] == []
