"""What the wheel ships must pass ``check-wheel-contents`` without a warning (``nox -s build``
runs it on the built wheel); these checks catch the usual causes from the source tree, fast."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_migration_scripts_have_importable_module_names() -> None:
    """The wheel ships migrations/ as ``pysky_async/_migrations``: a script named ``0004_x.py`` is
    not an importable path (check-wheel-contents W004). Alembic reads the revision id from inside
    the file, so the file name is free: ``m<revision>_<slug>.py`` (alembic.ini's file_template)."""
    scripts = sorted((ROOT / "migrations" / "versions").glob("*.py"))
    assert scripts
    bad = [path.name for path in scripts if not path.stem.isidentifier()]
    assert bad == [], f"rename {bad} to m<revision>_<slug>.py (an importable module name; see alembic.ini)"


def test_the_wheel_ships_a_licence_file() -> None:
    assert (ROOT / "LICENSE").is_file()
