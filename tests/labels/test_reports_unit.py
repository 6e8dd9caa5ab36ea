"""Reports, accept-labelers and self-labels against httpx.MockTransport: what goes on the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pysky_async import POST_SELF_LABELS, REASON_TYPES, AsyncBskyClient, InvalidInput, InvalidPost, Post, RecordRef
from pysky_async._config import ClientConfig

from ..test_client_unit import PDS, Server

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
LABELER = "did:plc:ar7c4by46qjdydhdevvrndac"
ALICE = "did:plc:aliceaaaaaaaaaaaaaaaaaaa"
POST_URI = f"at://{ALICE}/app.bsky.feed.post/3kabcdefghij2"
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


def reporting_server() -> Server:
    server = Server()
    server.routes["com.atproto.repo.getRecord"] = httpx.Response(
        200, json={"uri": POST_URI, "cid": CID, "value": {"$type": "app.bsky.feed.post", "text": "hi"}})
    server.routes["com.atproto.moderation.createReport"] = httpx.Response(200, json={
        "id": 42, "reasonType": "com.atproto.moderation.defs#reasonSpam", "reportedBy": "did:plc:me",
        "createdAt": "2026-12-04T00:00:00.000Z", "subject": {"$type": "com.atproto.repo.strongRef", "uri": POST_URI,
                                                             "cid": CID}})
    return server


def client(server: Server, **options: Any) -> AsyncBskyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:", http_client=http, username="me.test",
                           password="pw", **options)


def sent(server: Server, nsid: str) -> list[httpx.Request]:
    return [r for r in server.requests if r.url.path.endswith(f"/{nsid}")]


async def test_a_post_report_is_a_strong_ref_with_the_fetched_cid_sent_to_the_labeler() -> None:
    server = reporting_server()
    async with client(server) as bsky:
        report = await bsky.create_report(POST_URI, reason_type="spam", reason="bot replies", labeler=LABELER)
    [request] = sent(server, "com.atproto.moderation.createReport")
    assert str(request.url) == f"{PDS}/xrpc/com.atproto.moderation.createReport"
    assert request.headers["atproto-proxy"] == f"{LABELER}#atproto_labeler"
    assert request.headers["authorization"].startswith("Bearer ")
    assert json.loads(request.content) == {
        "reasonType": "com.atproto.moderation.defs#reasonSpam", "reason": "bot replies",
        "subject": {"$type": "com.atproto.repo.strongRef", "uri": POST_URI, "cid": CID}}
    assert report.id == 42 and report.reported_by == "did:plc:me"


async def test_an_account_report_is_a_repo_ref_and_no_labeler_sends_no_proxy() -> None:
    server = reporting_server()
    async with client(server) as bsky:
        await bsky.moderation.create_report(ALICE, reason_type="tools.ozone.report.defs#reasonHarassmentTroll",
                                            labeler=None)
        await bsky.create_report(f"at://{ALICE}", reason_type="com.atproto.moderation.defs#reasonRude",
                                 labeler=f"{LABELER}#atproto_labeler")
        await bsky.create_report(RecordRef(POST_URI, CID), reason_type="other", labeler=LABELER)
    first, second, third = sent(server, "com.atproto.moderation.createReport")
    assert "atproto-proxy" not in first.headers  # the PDS's own default moderation service
    assert json.loads(first.content)["subject"] == {"$type": "com.atproto.admin.defs#repoRef", "did": ALICE}
    assert second.headers["atproto-proxy"] == f"{LABELER}#atproto_labeler"
    assert json.loads(second.content)["subject"] == {"$type": "com.atproto.admin.defs#repoRef", "did": ALICE}
    assert json.loads(third.content)["subject"]["cid"] == CID
    assert sent(server, "com.atproto.repo.getRecord") == []  # a RecordRef carries its CID


async def test_bad_reports_fail_before_any_request() -> None:
    server = reporting_server()
    async with client(server) as bsky:
        with pytest.raises(InvalidInput, match=r"not a known com\.atproto\.moderation\.defs#reasonType"):
            await bsky.create_report(POST_URI, reason_type="reasonAnnoying", labeler=LABELER)
        with pytest.raises(InvalidInput, match="not a labeler's DID"):
            await bsky.create_report(POST_URI, reason_type="spam", labeler="mod.bsky.app")
        with pytest.raises(InvalidInput, match="2000 graphemes"):
            await bsky.create_report(POST_URI, reason_type="spam", reason="x" * 2001, labeler=LABELER)
        with pytest.raises(TypeError):
            await bsky.create_report(POST_URI, reason_type="spam")  # type: ignore[call-arg]
    assert sent(server, "com.atproto.moderation.createReport") == []


def test_reason_types_are_the_lexicons_known_values() -> None:
    lexicon = json.loads((ROOT / "lexicons/com/atproto/moderation/defs.json").read_text())
    assert list(REASON_TYPES) == lexicon["defs"]["reasonType"]["knownValues"]


async def test_accept_labelers_goes_on_appview_calls_only() -> None:
    server = Server()
    async with client(server, labelers=[LABELER, "did:web:labeler.example.com ; redact"]) as bsky:
        await bsky.get("app.bsky.feed.getPostThread", uri=POST_URI)
        await bsky.get("com.atproto.repo.getRecord", repo=ALICE, collection="app.bsky.feed.post", rkey="x")
        other = bsky.with_options(labelers=None)
        await other.get("app.bsky.actor.getProfile", actor=ALICE)
    thread, = sent(server, "app.bsky.feed.getPostThread")
    assert thread.headers["atproto-accept-labelers"] == f"{LABELER}, did:web:labeler.example.com;redact"
    assert "atproto-accept-labelers" not in sent(server, "com.atproto.repo.getRecord")[0].headers
    assert "atproto-accept-labelers" not in sent(server, "app.bsky.actor.getProfile")[0].headers


def test_accept_labelers_from_the_environment_and_refused_forms() -> None:
    config = ClientConfig.from_options(env={"PYSKY_LABELERS": f"{LABELER};redact, did:plc:other"})
    assert config.labelers == (f"{LABELER};redact", "did:plc:other")
    with pytest.raises(InvalidInput, match="only flag"):
        ClientConfig.from_options(labelers=[f"{LABELER};hide"], env={})
    with pytest.raises(InvalidInput, match="not a labeler's DID"):
        ClientConfig.from_options(labelers=["mod.bsky.app"], env={})


async def test_self_labels_go_into_the_post_record() -> None:
    server = Server()
    server.routes["com.atproto.repo.createRecord"] = httpx.Response(200, json={"uri": POST_URI, "cid": CID})
    async with client(server) as bsky:
        await bsky.create_post("spooky", labels=["graphic-media", "nudity"])
    [create] = sent(server, "com.atproto.repo.createRecord")
    assert json.loads(create.content)["record"]["labels"] == {
        "$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "graphic-media"}, {"val": "nudity"}]}


def test_self_labels_are_checked() -> None:
    assert set(POST_SELF_LABELS) == {"porn", "sexual", "nudity", "graphic-media"}
    with pytest.raises(InvalidPost, match="not a self-label a post can carry"):
        Post("x", labels=["!hide"])
    with pytest.raises(InvalidPost, match="repeated"):
        Post("x", labels=["porn", "porn"])
    with pytest.raises(InvalidPost, match="at most 10"):
        Post("x", labels=["porn"] * 11)
