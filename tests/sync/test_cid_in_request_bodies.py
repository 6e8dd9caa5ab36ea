"""A record read from a verified repo can be written back as it is: its ``CID`` values (a blob's
``ref``) go out as ``{"$link": ...}`` and its bytes as ``{"$bytes": ...}``, on both HTTP paths
(the client's own aiohttp transport and an injected httpx client), through ``create_record``,
``put_record`` and ``apply_writes``, and the call log records the call. Against the real PDS."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from pysky_async import CID, AsyncBskyClient, Create

from ..realnet.pds import Account, PdsServer
from ..test_pds_sessions import listen_host

pytestmark = pytest.mark.anyio

POST = "app.bsky.feed.post"
NOTE = "com.example.copied"


@pytest.fixture(params=["own transport", "httpx client"])
async def bsky(request: pytest.FixtureRequest, pds: PdsServer, pds_account: Account,
               tmp_path: object) -> Any:
    http = httpx.AsyncClient() if request.param == "httpx client" else None
    async with AsyncBskyClient(username=pds_account.handle, password=pds_account.password,
                               auth_host=listen_host(pds), plc_directory=pds.plc_url, http_client=http,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/cid.sqlite3") as client:
        yield client
    if http is not None:
        await http.aclose()


async def a_post_with_an_image(bsky: AsyncBskyClient) -> dict[str, Any]:
    """The post as the verified repo gives it: the image's ``ref`` is a ``CID``."""
    blob = await bsky.upload_blob(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
    embed = {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]}
    ref = await bsky.create_record(POST, {"text": "copy me", "createdAt": "2026-01-01T00:00:00Z",
                                          "embed": embed})
    did = (await bsky.sessions.current()).did
    repo = await bsky.sync.get_repo(did, collections=[POST])
    [record] = [r.record for r in repo.records if r.rkey == ref.uri.rsplit("/", 1)[1]]
    assert isinstance(record["embed"]["images"][0]["image"]["ref"], CID)
    return record


async def test_a_record_from_a_verified_repo_is_written_back(bsky: AsyncBskyClient) -> None:
    record = await a_post_with_an_image(bsky)
    link = str(record["embed"]["images"][0]["image"]["ref"])
    original = copy.deepcopy(record)

    created = await bsky.create_record(POST, record)
    put = await bsky.put_record(POST, "3kcopiedpost2", record)
    note = {"$type": NOTE, "link": record["embed"]["images"][0]["image"]["ref"], "raw": b"\x00\xffbytes"}
    result = await bsky.apply_writes([Create(POST, record), Create(NOTE, note)], validate=False)

    for uri in (created.uri, put.uri, result.results[0]["uri"]):
        copied = await bsky.get_record(uri)
        assert copied.value.raw["embed"]["images"][0]["image"]["ref"] == {"$link": link}
    stored = (await bsky.get_record(result.results[1]["uri"])).value.raw
    assert stored["link"] == {"$link": link}
    assert stored["raw"] == {"$bytes": "AP9ieXRlcw"}  # unpadded base64, as the data model says
    assert record == original  # the caller's dict is left as it was

    await bsky.call_log.flush()
    rows = await bsky.store.execute_sql(
        "SELECT params FROM bsky_api_call_log WHERE endpoint = 'com.atproto.repo.applyWrites'")
    assert any(link in str(params) for (params,) in rows)  # the call log kept the body, links as $link
