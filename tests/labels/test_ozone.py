"""Labels and reports against dev-env's ozone (the reference labeler and moderation service).

- a report made with ``labeler=`` reaches ozone: it is in ozone's moderation queue
  (``tools.ozone.moderation.queryStatuses`` as the admin), with its reason;
- the PDS routes the report by the ``atproto-proxy`` header: ``labeler=`` an account that is no
  labeler is refused by the PDS (it names no ``#atproto_labeler`` service);
- labels ozone emits (``emitEvent`` ``#modEventLabel``) arrive through ``bsky.streams.labels`` with
  valid signatures (ozone's ``#atproto_label`` key from its DID document on dev-env's PLC), a
  negation after its label; the same stream through a proxy that changes ``val`` and keeps ``sig``
  delivers nothing and counts every label as a bad signature;
- a post's self-labels are what the AppView shows on it;
- ``labelers=`` (``atproto-accept-labelers``) decides whether the AppView applies ozone's labels
  (a label put in the AppView's database: dev-env's AppView does not follow ozone's stream).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from pysky_async import APIError, AsyncBskyClient, LabelEvent
from pysky_async._streams import EventContext

from ..realnet.devenv import DevEnv
from ..streams.workload import wait_for
from .tamper_proxy import TamperingProxy

pytestmark = pytest.mark.anyio


def ozone_did(devenv: DevEnv) -> str:
    """Ozone's service DID: dev-env's moderation account ``mod-authority.test`` (its DID document
    names ozone as ``#atproto_labeler`` and holds the ``#atproto_label`` key)."""
    return str(devenv.xrpc("com.atproto.identity.resolveHandle", params={"handle": "mod-authority.test"})["did"])


def iso_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def client(devenv: DevEnv, tmp_path: Path, account: Any = None, **options: Any) -> AsyncBskyClient:
    credentials = {"username": account.handle, "password": account.password} if account is not None else {}
    return AsyncBskyClient(**credentials, auth_host=devenv.pds_listen_url, public_host=devenv.appview_url,
                           plc_directory=devenv.plc_url, database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
                           **options)


def write_post(devenv: DevEnv, token: str, did: str, text: str) -> tuple[str, str]:
    out = devenv.xrpc("com.atproto.repo.createRecord", {
        "repo": did, "collection": "app.bsky.feed.post",
        "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso_now()}}, token=token)
    return str(out["uri"]), str(out["cid"])


def emit_label(devenv: DevEnv, labeler: str, uri: str, cid: str, *, create: list[str],
               negate: list[str] | None = None) -> None:
    devenv.xrpc("tools.ozone.moderation.emitEvent", {
        "event": {"$type": "tools.ozone.moderation.defs#modEventLabel", "createLabelVals": create,
                  "negateLabelVals": negate or []},
        "subject": {"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cid},
        "createdBy": labeler}, admin=True, host=devenv.ozone_url)


@pytest.fixture(autouse=True)
def no_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BSKY_AUTH_USERNAME", "BSKY_AUTH_PASSWORD", "PYSKY_LABELERS"):
        monkeypatch.delenv(name, raising=False)


async def test_a_report_with_labeler_reaches_ozones_queue(devenv: DevEnv, tmp_path: Path) -> None:
    labeler = ozone_did(devenv)
    reporter = devenv.new_account("rep")[0]
    author, token = devenv.new_account("auth")
    uri, cid = write_post(devenv, token, author.did, "buy followers now")
    async with client(devenv, tmp_path, reporter) as bsky:
        report = await bsky.create_report(uri, reason_type="spam", reason="a follower shop", labeler=labeler)
        assert report.subject == {"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cid}
        assert report.reported_by == reporter.did
        # the PDS routes by our header: an account that is no labeler is refused, and the error says why
        with pytest.raises(APIError, match=f"no #atproto_labeler service in the DID document of {author.did}"):
            await bsky.create_report(uri, reason_type="spam", labeler=author.did)
    statuses = devenv.xrpc("tools.ozone.moderation.queryStatuses", admin=True, host=devenv.ozone_url,
                           params={"subject": uri})["subjectStatuses"]
    assert [(s["subject"]["uri"], s["reviewState"]) for s in statuses] == [
        (uri, "tools.ozone.moderation.defs#reviewOpen")]
    events = devenv.xrpc("tools.ozone.moderation.queryEvents", admin=True, host=devenv.ozone_url,
                         params={"subject": uri, "types": "tools.ozone.moderation.defs#modEventReport"})["events"]
    assert [(e["createdBy"], e["event"].get("comment"), e["event"]["reportType"]) for e in events] == [
        (reporter.did, "a follower shop", "com.atproto.moderation.defs#reasonSpam")]


async def test_ozone_labels_arrive_verified_and_tampered_ones_are_refused(
        devenv: DevEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labeler = ozone_did(devenv)
    author, token = devenv.new_account("lab")
    uri, cid = write_post(devenv, token, author.did, "a post to label")
    emit_label(devenv, labeler, uri, cid, create=["spam"])  # before the consumer: replayed from cursor 0
    mine: list[LabelEvent] = []
    tampered: list[LabelEvent] = []

    async def collect(label: LabelEvent, ctx: EventContext) -> None:
        if label.uri == uri:
            mine.append(label)

    async def collect_tampered(label: LabelEvent, ctx: EventContext) -> None:
        tampered.append(label)

    async with client(devenv, tmp_path) as bsky:
        service = await bsky.moderation.labeler_url(labeler)  # ozone's URL, from its DID document
        assert service.split(":")[-1] == devenv.ozone_url.split(":")[-1]
        consumer = bsky.streams.labels(collect, service=service, name="ozone", commit_interval=0.1)
        task = asyncio.create_task(consumer.run())
        try:
            await wait_for(lambda: len(mine) == 1, timeout=120)
            emit_label(devenv, labeler, uri, cid, create=["rude"])  # live
            await wait_for(lambda: len(mine) == 2, timeout=120)
            emit_label(devenv, labeler, uri, cid, create=[], negate=["rude"])
            await wait_for(lambda: len(mine) == 3, timeout=120)
            await wait_for(lambda: consumer.cursor == mine[-1].cursor, timeout=120)
        finally:
            await consumer.stop()
            await task
        assert [(label.src, label.val, label.neg, label.cid) for label in mine] == [
            (labeler, "spam", False, cid), (labeler, "rude", False, cid), (labeler, "rude", True, cid)]
        assert all(label.sig is not None and label.invalid is None for label in mine)
        assert consumer.stats.bad_signatures == 0 and consumer.label_verifier is not None
        assert consumer.label_verifier.verified >= 3

        async with TamperingProxy(devenv.ozone_url) as proxy:
            fooled = bsky.streams.labels(collect_tampered, service=proxy.url, commit_interval=0.1)
            task = asyncio.create_task(fooled.run())
            try:
                with caplog.at_level(logging.WARNING, "pysky_async.streams"):
                    await wait_for(lambda: fooled.stats.bad_signatures >= 2, timeout=120)
            finally:
                await fooled.stop()
                await task
        assert proxy.relayed >= 2 and tampered == []
        assert fooled.label_verifier is not None and fooled.label_verifier.verified == 0
        assert set(fooled.label_verifier.failures) == {"signature"}
        assert f"from labeler {labeler}" in caplog.text and "[signature]" in caplog.text


async def test_accept_labelers_decides_whose_labels_the_appview_applies(devenv: DevEnv, tmp_path: Path) -> None:
    labeler = ozone_did(devenv)
    author, token = devenv.new_account("acc")
    uri, cid = write_post(devenv, token, author.did, "labelled for the AppView")
    devenv.process_all()
    # dev-env's AppView does not follow ozone's label stream (its own tests write labels into its
    # database, as here): the label it holds is then applied or not by the header alone
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(devenv.pg_url)
    try:
        await conn.execute("INSERT INTO bsky.label (src, uri, cid, val, neg, cts) "
                           "VALUES ($1, $2, $3, 'spam', false, $4)", labeler, uri, cid, iso_now())
    finally:
        await conn.close()

    async def labels_seen(bsky: AsyncBskyClient) -> tuple[list[str], str]:
        response = await bsky.get("app.bsky.feed.getPosts", uris=[uri])
        [post] = response.raw["posts"]
        return ([f"{lab['src']}:{lab['val']}" for lab in post.get("labels", [])],
                response.http.headers.get("atproto-content-labelers", ""))

    async with client(devenv, tmp_path, labelers=[labeler]) as bsky:
        seen, applied = await labels_seen(bsky)
        assert seen == [f"{labeler}:spam"] and labeler in applied
        other = bsky.with_options(labelers=["did:plc:notalabelernotalabeler0"])
        seen, applied = await labels_seen(other)
        assert seen == [] and labeler not in applied


async def test_self_labels_are_what_the_appview_shows_on_the_post(devenv: DevEnv, tmp_path: Path) -> None:
    author = devenv.new_account("self")[0]
    async with client(devenv, tmp_path, author) as bsky:
        ref = await bsky.create_post("a gory scene", labels=["graphic-media"])
        devenv.process_all()
        [post] = (await bsky.get("app.bsky.feed.getPosts", uris=[ref.uri])).raw["posts"]
    assert [(label["src"], label["uri"], label["val"]) for label in post["labels"]] == [
        (author.did, ref.uri, "graphic-media")]
    assert post["record"]["labels"] == {"$type": "com.atproto.label.defs#selfLabels",
                                        "values": [{"val": "graphic-media"}]}
