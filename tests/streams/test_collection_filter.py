"""Collection filters are checked as an NSID or ``prefix.*`` wherever they enter: consumer, Jetstream, factory."""

from __future__ import annotations

import pytest

from pysky_async import InvalidInput
from pysky_async._streams import EventContext, FirehoseSource, JetstreamSource, StreamConsumer, StreamEvent
from pysky_async._streams.collection_filter import check_collection
from pysky_async._streams.factory import Streams

pytestmark = pytest.mark.anyio
GOOD = ["app.bsky.feed.post", "com.example.fooBar", "app.bsky.feed.*", "app.*", "com.example-host.*"]
BAD = ["app.bsky.feed.post/", "post", "*", ".*", "app.bsky.feed.*.post", "app.bsky..post", "app.bsky.feed.**",
       "app.bsky.feed.post ", "app.bsky.feed*", "-app.bsky.*", "1app.bsky.post", ""]


async def ignore(event: StreamEvent, ctx: EventContext) -> None:
    pass


@pytest.mark.parametrize("value", GOOD)
def test_nsids_and_prefixes_pass(value: str) -> None:
    assert check_collection(value) == value
    consumer = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), ignore, collections=[value])
    assert consumer.source.key.startswith("firehose:")


@pytest.mark.parametrize("value", BAD)
def test_anything_else_is_refused_naming_the_value_and_the_form(value: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        StreamConsumer(FirehoseSource("http://127.0.0.1:1"), ignore, collections=[value])
    assert repr(value) in str(raised.value) and "'app.bsky.feed.*'" in str(raised.value)
    with pytest.raises(InvalidInput, match="expected an NSID"):
        JetstreamSource(["ws://127.0.0.1:1"], collections=[value])


def test_a_lone_string_is_refused_not_split_into_letters() -> None:
    with pytest.raises(InvalidInput, match=r"not one string: collections=\['app.bsky.feed.post'\]"):
        StreamConsumer(FirehoseSource("http://127.0.0.1:1"), ignore, collections="app.bsky.feed.post")


async def test_live_filter_updates_and_the_client_factory_check_too() -> None:
    consumer = StreamConsumer(FirehoseSource("http://127.0.0.1:1"), ignore)
    with pytest.raises(InvalidInput, match="'app/bsky'"):
        await consumer.update_filters(collections=["app/bsky"])
    await consumer.update_filters(collections=["app.bsky.graph.*"])
    source = JetstreamSource(["ws://127.0.0.1:1"])
    with pytest.raises(InvalidInput, match="'app bsky'"):
        await source.update_filters(None, collections=["app bsky"], dids=None)

    streams = Streams(store=None, resolve_did=None)  # type: ignore[arg-type]  # neither is used here
    with pytest.raises(InvalidInput, match="'nope'"):
        streams.jetstream(ignore, instances=["ws://127.0.0.1:1"], collections=["nope"])
    with pytest.raises(InvalidInput, match="'nope'"):
        streams.firehose(ignore, service="http://127.0.0.1:1", collections=["nope"])
