"""The committed models are exactly what scripts/generate_models.py makes of lexicons/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEX = ROOT / "src" / "pysky_async" / "lex"
HAND_WRITTEN = {"__init__.py", "_base.py", "_call.py", "_validate.py"}


def generated_files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in [*root.rglob("*.py"), root / "_lexicons.json"]
            if path.name not in HAND_WRITTEN or path.parent != root}


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_models.py"), "--out", str(tmp_path)],
                   check=True)
    fresh, committed = generated_files(tmp_path), generated_files(LEX)
    assert fresh == committed, f"added {sorted(fresh - committed)}, missing {sorted(committed - fresh)}"
    changed = [name for name in sorted(fresh) if not filecmp.cmp(tmp_path / name, LEX / name, shallow=False)]
    assert not changed, f"regenerate with `python scripts/generate_models.py`: {changed} differ"


def test_every_lexicon_group_has_a_module() -> None:
    groups = {".".join(path.relative_to(ROOT / "lexicons").parts[:-1])
              for path in (ROOT / "lexicons").rglob("*.json")}
    groups.discard("app.bsky")  # the permission sets (app.bsky.authFullApp, ...) are not models
    groups.discard("chat.bsky")
    modules = {str(path.relative_to(LEX).with_suffix("")).replace("/", ".")
               for path in LEX.rglob("*.py") if path.name != "__init__.py" and not path.name.startswith("_")}
    assert groups == modules
