"""bsky.sync without a server: key rotation (one re-resolve), argument checks, the worker-thread hop."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import pysky_async._sync.repo as repo_module
from pysky_async import AsyncBskyClient, InvalidInput, Sync, VerificationError
from pysky_async._sync import api

from ..streams.repo_builder import did_document
from .repo_car import repo_car

pytestmark = pytest.mark.anyio
DID = "did:plc:syncapitest0000000000000"


class Identity:
    """Answers with ``cached`` until asked for a fresh document, then with ``fresh``."""

    def __init__(self, cached: dict[str, Any], fresh: dict[str, Any]) -> None:
        self.cached, self.fresh = cached, fresh
        self.fresh_calls = 0

    async def resolve_did(self, did: str, *, fresh: bool = False) -> dict[str, Any]:
        assert did == DID
        if fresh:
            self.fresh_calls += 1
            return self.fresh
        return self.cached


def sync_with(identity: Identity) -> Sync:
    return Sync(None, identity)  # type: ignore[arg-type]  # verify() needs only the identity


async def test_a_rotated_key_is_re_resolved_once() -> None:
    old, new = ec.generate_private_key(ec.SECP256K1()), ec.generate_private_key(ec.SECP256R1())
    car = repo_car(DID, new, {"app.bsky.feed.post/3kaaaaaaaaaaa": {"text": "hi"}})
    identity = Identity(did_document(DID, old), did_document(DID, new))
    repo = await sync_with(identity).verify(car, did=DID)
    assert [r.path for r in repo.records] == ["app.bsky.feed.post/3kaaaaaaaaaaa"] and identity.fresh_calls == 1
    stranger = ec.generate_private_key(ec.SECP256K1())
    identity = Identity(did_document(DID, old), did_document(DID, old))
    with pytest.raises(VerificationError) as info:
        await sync_with(identity).verify(repo_car(DID, stranger, {}), did=DID)
    assert info.value.reason == "signature" and identity.fresh_calls == 1  # once, not in a loop


async def test_other_failures_do_not_re_resolve() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    identity = Identity(did_document(DID, key), did_document(DID, key))
    with pytest.raises(VerificationError) as info:
        await sync_with(identity).verify(repo_car(DID, key, {})[:-3], did=DID)
    assert info.value.reason == "car" and identity.fresh_calls == 0


async def test_big_cars_are_verified_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    records = {f"app.bsky.feed.post/3k{i:011d}": {"text": "x" * 200} for i in range(400)}
    car = repo_car(DID, key, records)
    assert len(car) > api._THREAD_BYTES
    threads: list[threading.Thread] = []
    real = repo_module.verify_repo

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(repo_module, "verify_repo", spy)
    identity = Identity(did_document(DID, key), did_document(DID, key))
    assert len(await sync_with(identity).verify(car, did=DID)) == 400
    assert threads and threads[0] is not threading.main_thread()
    await sync_with(identity).verify(repo_car(DID, key, {}), did=DID)
    assert threads[1] is threading.main_thread()  # a small CAR costs less than the hop


async def test_arguments_are_checked_before_any_request() -> None:
    async with AsyncBskyClient(public_host="http://127.0.0.1:9") as bsky:
        with pytest.raises(InvalidInput, match="since"):
            await bsky.sync.get_repo(DID, since="3kaaaaaaaaaaa")
        with pytest.raises(InvalidInput, match="resolve_handle"):
            await bsky.sync.get_repo("alice.bsky.social")
        with pytest.raises(InvalidInput):
            await bsky.sync.get_repo("did:bad")
        with pytest.raises(InvalidInput):
            await bsky.sync.get_repo(DID, collections=["not an nsid"])
        with pytest.raises(InvalidInput, match="max_bytes"):
            await bsky.sync.get_repo(DID, max_bytes=0)
        with pytest.raises(InvalidInput):
            [d async for d in bsky.sync.list_repos_by_collection("nope", "http://127.0.0.1:9")]
