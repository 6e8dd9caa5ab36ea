"""A lexicon ``unknown`` field (``PostView.record``) is kept as raw JSON by the decoder and becomes
its ``dict`` on first access: typed as a dict, behaving as one decoded eagerly."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pysky_async import InvalidResponse, lex

feed, repo = lex.app.bsky.feed, lex.com.atproto.repo
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
RECORD = {"$type": "app.bsky.feed.post", "text": "héllo", "createdAt": "2026-01-01T00:00:00Z",
          "facets": [{"index": {"byteStart": 0, "byteEnd": 2}, "features": []}]}


def view_body(record: Any = RECORD, **extra: Any) -> bytes:
    return json.dumps({"uri": "at://did:plc:a/app.bsky.feed.post/1", "cid": CID,
                       "author": {"did": "did:plc:a", "handle": "a.test"}, "record": record,
                       "indexedAt": "2026-01-01T00:00:00Z", **extra}).encode()


def slot(model: Any, name: str) -> Any:
    """What the model holds in the field's slot, without the lazy descriptor decoding it."""
    return type(model).__dict__[name].slot.__get__(model, type(model))


def test_a_record_stays_raw_json_until_it_is_read() -> None:
    post = lex.decode(view_body(), feed.PostView)
    assert type(slot(post, "record")) is msgspec.Raw
    assert post.record == RECORD
    assert post.record is post.record  # decoded once: the dict replaced the raw JSON
    assert type(slot(post, "record")) is dict


def test_a_record_decoded_from_a_bytearray_does_not_pin_or_follow_the_buffer() -> None:
    buffer = bytearray(view_body())
    post = lex.decode(buffer, feed.PostView)  # type: ignore[arg-type]
    buffer[:] = b"x" * 10  # neither refused (a live export) nor seen by the record
    assert post.record == RECORD


def test_the_quoted_record_and_get_record_value_are_lazy_too() -> None:
    value = lex.decode(json.dumps({"uri": "at://did:plc:a/app.bsky.feed.post/1", "value": RECORD}).encode(),
                       repo.GetRecordOutput)
    assert type(slot(value, "value")) is msgspec.Raw
    assert value.value["text"] == "héllo"


def test_a_lazy_model_encodes_back_unchanged_before_and_after_reading() -> None:
    body = view_body()
    before = lex.decode(body, feed.PostView)
    after = lex.decode(body, feed.PostView)
    after.record  # noqa: B018
    assert json.loads(lex.encode(before)) == json.loads(lex.encode(after))
    assert json.loads(lex.encode(before))["record"] == RECORD


def test_equality_and_repr_are_those_of_the_decoded_dict() -> None:
    read, unread = lex.decode(view_body(), feed.PostView), lex.decode(view_body(), feed.PostView)
    read.record  # noqa: B018
    spaced = lex.decode(view_body().replace(b'": ', b'":   '), feed.PostView)
    assert read == unread == spaced
    assert read != lex.decode(view_body({**RECORD, "text": "other"}), feed.PostView)
    assert "'text': 'héllo'" in repr(lex.decode(view_body(), feed.PostView))


def test_an_optional_unknown_field_is_none_when_absent_or_null() -> None:
    assert lex.decode(view_body(), feed.PostView).debug is None
    assert lex.decode(view_body(debug=None), feed.PostView).debug is None
    assert lex.decode(view_body(debug={"score": 1}), feed.PostView).debug == {"score": 1}


def test_a_record_that_is_not_an_object_raises_invalid_response_when_read() -> None:
    post = lex.decode(view_body([1, 2]), feed.PostView)
    with pytest.raises(InvalidResponse, match=r"PostView\.record is not a JSON object"):
        post.record  # noqa: B018
    with pytest.raises(InvalidResponse, match=r"PostView\.record"):
        lex.decode(view_body(None), feed.PostView).record  # noqa: B018  # required: null is not allowed


def test_models_built_in_python_or_converted_from_dicts_hold_the_dict() -> None:
    author = lex.app.bsky.actor.ProfileViewBasic(did="did:plc:a", handle="a.test")
    post = feed.PostView(uri="at://x", cid="bafy", author=author, record=dict(RECORD), indexed_at="2026")
    assert post.record == RECORD
    post.record = {"text": "changed"}
    assert post.record == {"text": "changed"}
    converted = lex.convert(json.loads(view_body()), feed.PostView)
    assert converted.record == RECORD
    assert converted == lex.decode(view_body(), feed.PostView)
    with pytest.raises(msgspec.ValidationError):
        lex.convert(json.loads(view_body("text")), feed.PostView)


def test_a_model_with_a_raw_record_validates() -> None:
    lex.validate(lex.decode(view_body(), feed.PostView))


TYPING_CASES = '''from pysky_async import lex


def check(post: lex.app.bsky.feed.PostView, got: lex.com.atproto.repo.GetRecordOutput) -> None:
    reveal_type(post.record)
    reveal_type(post.debug)
    reveal_type(got.value)
    post.record = "text"
    lex.com.atproto.repo.GetRecordOutput(uri="at://x", valeu={})
    lex.com.atproto.repo.GetRecordOutput(uri="at://x", value={"text": "a decorated model keeps its typed init"})
'''


@pytest.mark.slow  # two type checkers: once, in the full suite, not on every Python
def test_mypy_and_pyright_see_a_lazy_field_as_the_dict_it_becomes(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    cases = tmp_path / "lazy_cases.py"
    cases.write_text(TYPING_CASES)
    # in its own process: mypy in this one would leave its program graph for every later test's
    # gc.collect() to walk (seconds per test)
    stdout = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(cases)],
                            capture_output=True, text=True, check=False).stdout
    assert re.findall(r':(\d+): note: Revealed type is "([^"]+)"', stdout) == [
        ("5", "dict[str, Any]"), ("6", "dict[str, Any] | None"),
        ("7", "dict[str, Any]")], stdout
    assert [line for line, _ in re.findall(r":(\d+): error: (.*)", stdout)] == ["8", "9"], stdout

    pyright = shutil.which("pyright", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    assert pyright is not None, "pyright is missing: pip install -e '.[test]' installs it"
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({
        "include": ["lazy_cases.py"], "extraPaths": [str(Path(__file__).parents[2] / "src")],
        "pythonVersion": "3.10", "typeCheckingMode": "strict"}))
    result = subprocess.run([pyright, "--outputjson", "--pythonpath", sys.executable, "-p", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path)
    diagnostics = json.loads(result.stdout)["generalDiagnostics"]
    revealed = [(d["range"]["start"]["line"] + 1, d["message"]) for d in diagnostics if d["severity"] == "information"]
    assert [(line, message.rsplit(" is ", 1)[1]) for line, message in revealed] == [
        (5, '"dict[str, Any]"'), (6, '"dict[str, Any] | None"'), (7, '"dict[str, Any]"')], diagnostics
    assert sorted({d["range"]["start"]["line"] + 1 for d in diagnostics if d["severity"] == "error"}) == [8, 9]
