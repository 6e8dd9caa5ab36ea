"""Record values checked with the atproto formats before any request: Post langs and createdAt,
video alt text as the current app.bsky.embed.video lexicon has it (no length limit)."""

from __future__ import annotations

import datetime as dt

import pytest

from pysky_async import Datetime, InvalidInput, InvalidPost, Post, Video
from pysky_async._posts import _created_at


@pytest.mark.parametrize("langs", [["english"], ["EN"], ["en", "en_US"], ["de-DE-1901-1901"], [" en"]])
def test_post_langs_must_be_language_tags(langs: list[str]) -> None:
    with pytest.raises(InvalidPost, match="langs"):
        Post("hi", langs=langs)


def test_post_langs_checked_again_after_a_change() -> None:
    post = Post("hi", langs=["en", "pt-BR", "zh-Hant"])
    post.langs = ["english"]
    with pytest.raises(InvalidPost, match="BCP 47"):
        post.check()


def test_created_at_is_an_atproto_datetime_in_utc_with_milliseconds() -> None:
    moment = dt.datetime(999, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    value = _created_at(moment)
    assert value == "0999-01-02T10:04:05.600Z" and Datetime(value) == value


def test_video_alt_text_has_no_length_limit_but_must_be_text() -> None:
    assert Video(data=b"x", alt="a" * 20_000).alt == "a" * 20_000
    with pytest.raises(InvalidInput, match="must be a string"):
        Video(data=b"x", alt=123)  # type: ignore[arg-type]
