"""Record helpers with models against the real reference PDS: create_record(Post(...)) and
get_record(uri, model=Post) round-trip, and put_record(model, rkey) replaces a record."""

from __future__ import annotations

from pathlib import Path

import pytest

from pysky_async import AsyncBskyClient, InvalidInput, lex

from ..realnet.pds import Account, PdsServer
from ..test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio


def client(pds: PdsServer, account: Account, tmp_path: Path) -> AsyncBskyClient:
    return AsyncBskyClient(username=account.handle, password=account.password, auth_host=listen_host(pds),
                           database_url=f"sqlite+aiosqlite:///{tmp_path}/typed.sqlite3", plc_directory=pds.plc_url,
                           auto_migrate=True)


async def test_a_post_model_round_trips_through_the_pds(pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    feed, richtext = lex.app.bsky.feed, lex.app.bsky.richtext
    post = feed.Post(text="typed #hello", created_at="2026-01-01T00:00:00.000Z", langs=["en"],
                     facets=[richtext.Facet(index=richtext.FacetByteSlice(byte_start=6, byte_end=12),
                                            features=[richtext.FacetTag(tag="hello")])])
    async with client(pds, pds_account, tmp_path) as bsky:
        ref = await bsky.create_record(post, validate=True)
        record = await bsky.get_record(ref.uri, model=feed.Post)
        raw = await bsky.get_record(ref.uri)
        with pytest.raises(InvalidInput, match=r"\$\.text"):
            await bsky.create_record(feed.Post(text="x" * 3001, created_at="2026-01-01T00:00:00.000Z"),
                                     validate=True)
        await bsky.put_record(lex.app.bsky.actor.Profile(display_name="Typed", description="put as a model"),
                              "self", validate=True)
        profile = await bsky.get_record(f"at://{bsky.did}/app.bsky.actor.profile/self",
                                        model=lex.app.bsky.actor.Profile)
    assert record.value == post  # the same model back: every field, the facet's nested objects too
    assert record.ref == ref and ref.uri.startswith(f"at://{pds_account.did}/app.bsky.feed.post/")
    assert raw.value.raw == {"$type": "app.bsky.feed.post", "text": "typed #hello", "langs": ["en"],
                             "createdAt": "2026-01-01T00:00:00.000Z",
                             "facets": [{"$type": "app.bsky.richtext.facet",
                                         "index": {"$type": "app.bsky.richtext.facet#byteSlice", "byteStart": 6,
                                                   "byteEnd": 12},
                                         "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "hello"}]}]}
    assert profile.value.display_name == "Typed" and profile.value.description == "put as a model"
