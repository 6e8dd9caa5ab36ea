"""The single entry point for tests, typing, lint, docs and release checks.

    nox -s tests typing lint          # the full suite (real servers), mypy strict, ruff
    nox -s fast                       # the fast tests on every supported Python (fast-3.10 ... fast-3.13)
    nox -s build                      # sdist + wheel, twine + check-wheel-contents, the wheel smoke-tested
    nox -s docs                       # mkdocs build --strict
    nox -s changelog                  # towncrier: render changelog.d/ into CHANGELOG.md (a release step)
    nox -s release_dry_run            # everything the release workflow checks, nothing uploaded

Sessions create their venvs with uv (``uv`` is in the ``release`` extra). The Pythons are found on
PATH and in pyenv's versions directory.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DIST_TOOLS = nox.project.load_toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]["dist"]
"""build, twine, check-wheel-contents, towncrier: pyproject's ``dist`` extra, in the sessions' own venvs."""
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
FAST_TESTS = [
    "-m", "not realnet and not slow", "-k", "not postgresql",
    # these start servers themselves (PostgreSQL outages, a PDS restart, the node oracle, a fault
    # proxy) without the realnet fixtures: they run in the full suite, on the CI venv's Python
    "--ignore=tests/realnet", "--ignore=tests/reliability", "--ignore=tests/streams/test_restart.py",
    "--ignore=tests/conformance/test_differential.py", "--ignore=tests/conformance/test_tid_rkeys.py",
    "--ignore=tests/oauth/test_oauth_confidential.py", "--ignore=tests/test_fault_proxy.py",
]
"""The fast tests: no real server (reference PDS, PostgreSQL, AppView, node), not marked ``slow``
(``slow``: a type checker's run, a site build, a 24-megapixel photo... the same on every Python,
so once, in the full suite)."""

nox.options.sessions = ["tests", "typing", "lint"]
nox.options.default_venv_backend = "uv|virtualenv"

# pyenv's interpreters (CI and this machine keep every supported Python there)
_pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin")))
if _pyenv:
    os.environ["PATH"] = os.pathsep.join([*_pyenv, os.environ.get("PATH", "")])


@nox.session
def tests(session: nox.Session) -> None:
    """The full suite (real servers: set PYSKY_REQUIRE_REALNET=1 to fail rather than skip)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS)
def fast(session: nox.Session) -> None:
    """The fast tests (no real server) on one Python: ``nox -s fast-3.10``."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *FAST_TESTS, "-q", "-p", "no:cacheprovider", *session.posargs,
                env={"PYSKY_REQUIRE_REALNET": ""})


@nox.session
def typing(session: nox.Session) -> None:
    """mypy strict (src, tests, benchmarks, examples) and pyright over src (pyproject's settings)."""
    session.install("-e", ".[test]")
    session.run("mypy")
    session.run("pyright")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "examples", "benchmarks", "noxfile.py")


def _build(session: nox.Session) -> Path:
    """sdist + wheel into a fresh directory, checked by twine and check-wheel-contents."""
    session.install(*DIST_TOOLS)
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist))
    session.run("twine", "check", "--strict", *map(str, sorted(dist.iterdir())))
    wheel = next(dist.glob("*.whl"))
    session.run("check-wheel-contents", str(wheel))  # any warning is a failure
    return wheel


@nox.session
def build(session: nox.Session) -> None:
    """Build and check the distributions, then smoke-test the wheel installed in a fresh venv."""
    _smoke(session, _build(session))


def _smoke(session: nox.Session, wheel: Path) -> None:
    venv = Path(session.create_tmp()) / "wheel-venv"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("uv", "venv", "--quiet", "--python", str(Path(session.bin) / "python"), str(venv))
    python = venv / "bin" / "python"
    session.run("uv", "pip", "install", "--quiet", "--python", str(python), str(wheel))
    session.run("python", "-m", "tests.packaging.smoke_wheel", "--python", str(python))


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors (``--serve`` to preview instead)."""
    session.install("-e", ".[docs]")
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    if "--serve" in session.posargs:
        session.run("mkdocs", "serve")
    else:
        session.run("mkdocs", "build", "--strict", "--site-dir", str(Path(session.create_tmp()) / "site"))


@nox.session
def changelog(session: nox.Session) -> None:
    """Render changelog.d/ into CHANGELOG.md for this version (``--draft`` to only print it)."""
    session.install(*DIST_TOOLS)
    version = _version()
    draft = ["--draft"] if "--draft" in session.posargs else ["--yes"]
    session.run("towncrier", "build", "--version", version, *draft)


def _version() -> str:
    text = (ROOT / "src" / "pysky_async" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    assert match, "src/pysky_async/_version.py has no __version__"
    return match[1]


@nox.session
def release_dry_run(session: nox.Session) -> None:
    """What the release workflow checks before it uploads, with nothing uploaded: the tag (if one
    is given: ``nox -s release_dry_run -- v0.1.0``) names this version, CHANGELOG.md has its
    section, the distributions build and pass the checks, the wheel works installed, the docs build."""
    version = _version()
    tag = session.posargs[0] if session.posargs else ""
    if tag and tag.removeprefix("v") != version:
        session.error(f"tag {tag} does not match the version {version} in src/pysky_async/_version.py")
    if not re.search(rf"^## .*\b{re.escape(version)}\b", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M):
        session.error(f"CHANGELOG.md has no section for {version}: run `nox -s changelog` and commit it")
    wheel = _build(session)
    _smoke(session, wheel)
    dist = ROOT / "dist"  # what the release workflow uploads: exactly the distributions checked here
    shutil.rmtree(dist, ignore_errors=True)
    shutil.copytree(wheel.parent, dist)
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(Path(session.create_tmp()) / "site"))
    session.log(f"dry run of {version}: everything checked, nothing uploaded; the distributions are in dist/")
