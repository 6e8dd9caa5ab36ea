"""mypy sees the typed entry point: the output type of each common endpoint, a misspelt keyword
and a wrongly typed one (tests/lex/typing_cases.py, checked with mypy --strict)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("typing_cases.py")
EXPECTED = {
    10: "app.bsky.feed.GetTimelineOutput", 11: "app.bsky.actor.ProfileViewDetailed",
    12: "app.bsky.actor.GetProfilesOutput", 13: "app.bsky.feed.GetPostThreadOutput",
    14: "app.bsky.feed.GetAuthorFeedOutput", 15: "app.bsky.graph.GetFollowsOutput",
    16: "app.bsky.graph.GetFollowersOutput", 17: "app.bsky.notification.ListNotificationsOutput",
    18: "app.bsky.actor.SearchActorsOutput", 19: "app.bsky.feed.GetPostsOutput",
    20: "app.bsky.feed.GetLikesOutput", 21: "app.bsky.feed.GetRepostedByOutput",
    22: "app.bsky.feed.SearchPostsOutput", 23: "app.bsky.feed.GetFeedOutput", 24: "app.bsky.graph.GetListsOutput",
    25: "com.atproto.repo.GetRecordOutput", 26: "com.atproto.repo.ListRecordsOutput",
    27: "com.atproto.identity.ResolveHandleOutput", 28: "com.atproto.repo.CreateRecordOutput",
}


@pytest.mark.slow  # mypy over every model (~1 min): once, in the full suite, not on every Python
def test_mypy_reveals_the_typed_outputs_and_rejects_wrong_keywords() -> None:
    # in its own process: mypy in this one would leave its whole program graph for every later test's
    # gc.collect() to walk (3-5 s per test on Python 3.10)
    import subprocess
    import sys

    stdout = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-absolute-path",
                             "--no-incremental", str(CASES)], capture_output=True, text=True, check=False).stdout
    revealed = {int(line): kind for line, kind in re.findall(r":(\d+): note: Revealed type is \"([^\"]+)\"", stdout)}
    for line, name in EXPECTED.items():
        assert revealed.get(line) == f"pysky_async.lex.{name}", (line, stdout)
    assert revealed[30] == "None"
    assert revealed[32].endswith("embed.RecordWithMediaView | pysky_async._response.JsonObject | None")
    assert revealed[33] == "str | None"
    errors = re.findall(r":(\d+): error: (.*)", stdout)
    assert [int(line) for line, _ in errors] == [34, 35], stdout
    assert 'Unexpected keyword argument "actr"' in errors[0][1]
    assert 'incompatible type "str"; expected "int | None"' in errors[1][1]


@pytest.mark.slow
def test_pyright_reveals_the_same_types_and_rejects_the_same_calls(tmp_path: Path) -> None:
    """Most editors run pyright: the same file, in strict mode. pyright comes with the test
    extra (the ``pyright[nodejs]`` package on PyPI; the npm one on PATH also does)."""
    import json
    import shutil
    import subprocess
    import sys

    pyright = shutil.which("pyright", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    assert pyright is not None, "pyright is missing: pip install -e '.[test]' installs it"
    (tmp_path / "typing_cases.py").write_text(CASES.read_text())
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({
        "include": ["typing_cases.py"], "extraPaths": [str(CASES.parents[2] / "src")],
        "pythonVersion": "3.10", "typeCheckingMode": "strict"}))
    result = subprocess.run([pyright, "--outputjson", "--pythonpath", sys.executable, "-p", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path)
    diagnostics = json.loads(result.stdout)["generalDiagnostics"]
    revealed = {d["range"]["start"]["line"] + 1: re.sub(r'^Type of ".*" is "(.*)"$', r"\1", d["message"], flags=re.S)
                for d in diagnostics if d["severity"] == "information"}
    for line, name in EXPECTED.items():
        assert revealed.get(line) == name.rsplit(".", 1)[1], (line, revealed.get(line))
    assert revealed[30] == "None"
    assert revealed[32].endswith("RecordWithMediaView | JsonObject | None")
    assert revealed[33] == "str | None"
    errors = sorted({d["range"]["start"]["line"] + 1 for d in diagnostics if d["severity"] == "error"})
    assert errors == [34, 35], diagnostics
