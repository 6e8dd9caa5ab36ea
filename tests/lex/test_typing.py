"""mypy sees the typed entry point: the output type of each common endpoint, a misspelt keyword
and a wrongly typed one (tests/lex/typing_cases.py, checked with mypy --strict)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..typecheck import mypy, pyright

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
    report = mypy(CASES)
    for line, name in EXPECTED.items():
        assert report.revealed.get(line) == f"pysky_async.lex.{name}", (line, report.output)
    assert report.revealed[30] == "None"
    assert report.revealed[32].endswith("embed.RecordWithMediaView | pysky_async._response.JsonObject | None")
    assert report.revealed[33] == "str | None"
    assert [line for line, _ in report.errors] == [34, 35], report.output
    assert 'Unexpected keyword argument "actr"' in report.errors[0][1]
    assert 'incompatible type "str"; expected "int | None"' in report.errors[1][1]


@pytest.mark.slow
def test_pyright_reveals_the_same_types_and_rejects_the_same_calls() -> None:
    """Most editors run pyright: the same file, in strict mode."""
    report = pyright(CASES)
    for line, name in EXPECTED.items():
        assert report.revealed.get(line) == name.rsplit(".", 1)[1], (line, report.revealed.get(line))
    assert report.revealed[30] == "None"
    assert report.revealed[32].endswith("RecordWithMediaView | JsonObject | None")
    assert report.revealed[33] == "str | None"
    assert report.error_lines == [34, 35], report.output
