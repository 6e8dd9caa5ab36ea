"""The label stream: frame decoding, signature checks against #atproto_label, the durable consumer."""

from __future__ import annotations

import logging
from typing import Any

import libipld
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import AsyncBskyClient
from pysky_async._exceptions import FrameDecodeError, StreamError
from pysky_async._streams import EventContext, InfoEvent, LabelEvent, LabelsFrame, LabelVerifier, decode_label_frame

from ..streams.workload import run_until
from .labeler import LABELER, FakeLabeler, label_document, labels_frame, signed_label

pytestmark = pytest.mark.anyio
ALICE = "did:plc:aliceaaaaaaaaaaaaaaaaaaa"
POST = f"at://{ALICE}/app.bsky.feed.post/3kabcdefghij2"


def only_label(frame: bytes) -> LabelEvent:
    event = decode_label_frame(frame)
    assert isinstance(event, LabelsFrame)
    [label] = event.labels
    return label


def resolver(*documents: dict[str, Any]) -> tuple[Any, list[str]]:
    """resolve_did answering with ``documents`` in turn (the last one again after), and its calls."""
    calls: list[str] = []

    async def resolve(did: str) -> dict[str, Any]:
        calls.append(did)
        return documents[min(len(calls), len(documents)) - 1]

    return resolve, calls


def test_decode_labels_frame() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    label = signed_label(key, POST, "spam", cid="bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")
    event = decode_label_frame(labels_frame(7, [label]))
    assert isinstance(event, LabelsFrame)
    assert (event.cursor, event.did) == (7, ALICE)
    [got] = event.labels
    assert (got.cursor, got.src, got.uri, got.val, got.neg, got.cid, got.ver) == (
        7, LABELER, POST, "spam", False, label["cid"], 1)
    assert got.sig == label["sig"] and got.cts == label["cts"] and got.exp is None and got.did == ALICE


def test_decode_info_error_and_malformed_frames() -> None:
    info = decode_label_frame(libipld.encode_dag_cbor({"op": 1, "t": "#info"})
                              + libipld.encode_dag_cbor({"name": "OutdatedCursor", "message": "too old"}))
    assert isinstance(info, InfoEvent) and info.name == "OutdatedCursor"
    with pytest.raises(FrameDecodeError, match="FutureCursor"):
        decode_label_frame(libipld.encode_dag_cbor({"op": -1})
                           + libipld.encode_dag_cbor({"error": "FutureCursor", "message": "Cursor in the future."}))
    with pytest.raises(FrameDecodeError, match="unknown frame type"):
        decode_label_frame(libipld.encode_dag_cbor({"op": 1, "t": "#commit"}) + libipld.encode_dag_cbor({"seq": 1}))
    with pytest.raises(FrameDecodeError, match="'val' must be a string"):
        decode_label_frame(labels_frame(1, [{"src": LABELER, "uri": POST, "val": 3, "cts": "x"}]))


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.SECP256R1()], ids=["secp256k1", "p256"])
async def test_signed_label_verifies(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    resolve, calls = resolver(label_document(LABELER, key))
    verifier = LabelVerifier(resolve)
    for seq in (1, 2):
        assert await verifier.check(only_label(labels_frame(seq, [signed_label(key, POST, "porn")])))
    assert (verifier.verified, verifier.failed, calls) == (2, 0, [LABELER])  # the key is cached


async def test_tampered_label_is_refused_after_one_re_resolution(caplog: pytest.LogCaptureFixture) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    resolve, calls = resolver(label_document(LABELER, key))
    verifier = LabelVerifier(resolve)
    label = signed_label(key, POST, "spam")
    label["val"] = "porn"  # a proxy changed the value and kept the signature
    with caplog.at_level(logging.WARNING, "pysky_async.streams"):
        assert not await verifier.check(only_label(labels_frame(1, [label])))
    assert verifier.failures == {"signature": 1} and verifier.key_refreshes == 1 and len(calls) == 2
    assert LABELER in caplog.text and "'porn'" in caplog.text and "[signature]" in caplog.text


async def test_high_s_unsigned_and_keyless_labels_are_refused() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    resolve, _ = resolver(label_document(LABELER, key))
    verifier = LabelVerifier(resolve)
    assert not await verifier.check(only_label(labels_frame(1, [signed_label(key, POST, "spam", high_s=True)])))
    unsigned = signed_label(key, POST, "spam")
    del unsigned["sig"]
    assert not await verifier.check(only_label(labels_frame(2, [unsigned])))
    not_a_labeler, _ = resolver({"id": LABELER, "verificationMethod": []})
    other = LabelVerifier(not_a_labeler)
    assert not await other.check(only_label(labels_frame(3, [signed_label(key, POST, "spam")])))
    assert verifier.failures == {"signature": 1, "unsigned": 1} and other.failures == {"no-label-key": 1}


async def test_rotated_key_is_re_resolved_once() -> None:
    old, new = ec.generate_private_key(ec.SECP256K1()), ec.generate_private_key(ec.SECP256K1())
    resolve, calls = resolver(label_document(LABELER, old), label_document(LABELER, new))
    verifier = LabelVerifier(resolve)
    assert await verifier.check(only_label(labels_frame(1, [signed_label(old, POST, "spam")])))
    assert await verifier.check(only_label(labels_frame(2, [signed_label(new, POST, "spam")])))
    assert verifier.key_refreshes == 1 and len(calls) == 2 and verifier.failed == 0


async def test_flag_policy_passes_the_label_on_marked() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    resolve, _ = resolver(label_document(LABELER, key))
    label = only_label(labels_frame(1, [{**signed_label(key, POST, "spam"), "val": "rude"}]))
    assert not await LabelVerifier(resolve, policy="flag").check(label)
    assert label.invalid == "signature"
    with pytest.raises(StreamError, match="on_invalid"):
        LabelVerifier(resolve, policy="pass")  # type: ignore[arg-type]


async def test_consumer_delivers_verified_labels_drops_tampered_and_resumes(database_url: str) -> None:
    """On SQLite and PostgreSQL: the cursor a named consumer committed is where the next run resumes."""
    key = ec.generate_private_key(ec.SECP256K1())
    bob = "did:plc:bobbbbbbbbbbbbbbbbbbbbbb"
    tampered = {**signed_label(key, POST, "spam"), "val": "porn"}
    got: list[LabelEvent] = []

    async def handler(label: LabelEvent, ctx: EventContext) -> None:
        got.append(label)

    async with FakeLabeler() as labeler, AsyncBskyClient(database_url=database_url, auto_migrate=True) as bsky:
        labeler.frames = {1: [signed_label(key, POST, "spam")], 2: [tampered],
                          3: [signed_label(key, bob, "rude"), signed_label(key, bob, "spam")],
                          4: [signed_label(key, POST, "spam", neg=True)]}

        async def resolve(did: str, *, fresh: bool = False) -> dict[str, Any]:
            assert did == LABELER
            return label_document(LABELER, key)

        bsky.identity.resolve_did = resolve  # type: ignore[method-assign]
        consumer = bsky.streams.labels(handler, service=labeler.url, name="labels", commit_interval=0.05)
        await run_until(consumer, lambda: len(got) == 4 and consumer.cursor == 4)
        # subjects are handled concurrently, each one's labels in order (the negation after the label)
        assert sorted((label.cursor, label.uri, label.val, label.neg) for label in got) == [
            (1, POST, "spam", False), (3, bob, "rude", False), (3, bob, "spam", False), (4, POST, "spam", True)]
        assert [label.cursor for label in got if label.uri == POST] == [1, 4]
        assert [label.val for label in got if label.uri == bob] == ["rude", "spam"]
        assert consumer.stats.bad_signatures == 1 and consumer.label_verifier is not None
        assert consumer.label_verifier.failures == {"signature": 1}
        assert labeler.cursors == [0]  # a first run asks for every label the labeler has

        labeler.frames[5] = [signed_label(key, bob, "spam", neg=True)]
        again = bsky.streams.labels(handler, service=labeler.url, name="labels", commit_interval=0.05)
        await run_until(again, lambda: len(got) == 5)
        assert labeler.cursors == [0, 4]  # resumed after the committed cursor: nothing handled twice
        assert (got[-1].cursor, got[-1].uri, got[-1].neg) == (5, bob, True)


async def test_subject_filter_applies_per_label_even_in_a_mixed_frame() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    bob = "did:plc:bobbbbbbbbbbbbbbbbbbbbbb"
    got: list[LabelEvent] = []

    async def handler(label: LabelEvent, ctx: EventContext) -> None:
        got.append(label)

    async with FakeLabeler() as labeler, AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:") as bsky:
        labeler.frames = {1: [signed_label(key, bob, "rude"), signed_label(key, POST, "spam")],
                          2: [signed_label(key, bob, "spam")]}

        async def resolve(did: str, *, fresh: bool = False) -> dict[str, Any]:
            return label_document(LABELER, key)

        bsky.identity.resolve_did = resolve  # type: ignore[method-assign]
        consumer = bsky.streams.labels(handler, service=labeler.url, dids=[ALICE])
        await run_until(consumer, lambda: consumer.stats.handled == 2)
    assert [(label.uri, label.val) for label in got] == [(POST, "spam")]
    assert consumer.stats.filtered == 2


def test_expiry() -> None:
    import datetime as dt

    key = ec.generate_private_key(ec.SECP256K1())
    label = only_label(labels_frame(1, [{**signed_label(key, POST, "spam"), "exp": "2026-01-01T00:00:00.000Z"}]))
    assert label.expired(dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc))
    assert not label.expired(dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc))
    assert not only_label(labels_frame(2, [signed_label(key, POST, "spam")])).expired()


@pytest.mark.parametrize("skip_expired", [True, False])
async def test_a_label_whose_exp_has_passed_is_not_handed_out_as_active(skip_expired: bool) -> None:
    """A labeler replays its history: a label that expired since reaches a new consumer, and it is no
    longer in force (as the AppView no longer applies it), so by default it is skipped and counted."""
    key = ec.generate_private_key(ec.SECP256K1())
    got: list[LabelEvent] = []

    async def handler(label: LabelEvent, ctx: EventContext) -> None:
        got.append(label)

    async with FakeLabeler() as labeler, AsyncBskyClient(database_url="sqlite+aiosqlite:///:memory:") as bsky:
        labeler.frames = {1: [signed_label(key, POST, "spam", exp="2020-01-01T00:00:00.000Z")],
                          2: [signed_label(key, POST, "rude", exp="2999-01-01T00:00:00.000Z")],
                          3: [signed_label(key, ALICE, "rude")]}

        async def resolve(did: str, *, fresh: bool = False) -> dict[str, Any]:
            return label_document(LABELER, key)

        bsky.identity.resolve_did = resolve  # type: ignore[method-assign]
        consumer = bsky.streams.labels(handler, service=labeler.url, skip_expired=skip_expired)
        await run_until(consumer, lambda: consumer.stats.handled == 3)
    handed = [(label.uri, label.val) for label in got]
    if skip_expired:
        assert handed == [(POST, "rude"), (ALICE, "rude")]
        assert consumer.expired_labels == 1
    else:
        assert handed == [(POST, "spam"), (POST, "rude"), (ALICE, "rude")]
        assert got[0].expired() and consumer.expired_labels == 0
