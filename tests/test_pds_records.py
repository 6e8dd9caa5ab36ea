"""Records, pagination with persisted cursors, blobs and identity against the real reference PDS."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pysky_async import AsyncBskyClient, AtUri, Create, Delete, InvalidSwap, RecordNotFound, ResponseTooLarge, Update

from .realnet.pds import Account, PdsServer
from .test_pds_sessions import ROOT, listen_host

pytestmark = pytest.mark.anyio

NOTE = "com.example.note"


def client(pds: PdsServer, account: Account, database_url: str) -> AsyncBskyClient:
    return AsyncBskyClient(username=account.handle, password=account.password, auth_host=listen_host(pds),
                           database_url=database_url, plc_directory=pds.plc_url, auto_migrate=True)


async def bulk_create(bsky: AsyncBskyClient, collection: str, count: int) -> list[str]:
    rkeys: list[str] = []
    for start in range(0, count, 200):
        result = await bsky.apply_writes([Create(collection, {"n": n}) for n in range(start, min(count, start + 200))],
                                         validate=False)
        rkeys += [r["uri"].rsplit("/", 1)[1] for r in result.results]
    return rkeys


async def test_1000_records_paginate_back_and_resume_returns_only_new_ones(
        pds: PdsServer, pds_account: Account, database_url: str) -> None:
    async with client(pds, pds_account, database_url) as bsky:
        created = await bulk_create(bsky, NOTE, 1000)
        assert len(set(created)) == 1000
        first = [r.uri async for r in bsky.list_records(NOTE, reverse=True, resume=True)]
        assert len(first) == 1000 and len(set(first)) == 1000
        assert {AtUri.parse(u).rkey for u in first} == set(created)
        new = [await bsky.create_record(NOTE, {"n": 1000 + i}, validate=False) for i in range(5)]
        resumed = [r async for r in bsky.list_records(NOTE, reverse=True, resume=True)]
        assert [r.uri for r in resumed] == [ref.uri for ref in new]
        assert [r.value.n for r in resumed] == [1000, 1001, 1002, 1003, 1004]
        assert [r async for r in bsky.list_records(NOTE, reverse=True, resume=True)] == []
        newest_first = await bsky.list_records(NOTE, max_items=3).collect()
        assert [r.uri for r in newest_first] == [ref.uri for ref in reversed(new)][:3]


async def test_sigkill_mid_iteration_loses_nothing(pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/resume.sqlite3"
    collection = "com.example.killed"
    async with client(pds, pds_account, database_url) as bsky:
        created = set(await bulk_create(bsky, collection, 300))
    config = {"username": pds_account.handle, "password": pds_account.password, "auth_host": listen_host(pds),
              "database_url": database_url, "collection": collection, "delay": 0.002}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "tests.pagination_worker", json.dumps(config)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    killed = start()
    assert killed.stdout is not None
    seen_before_kill: list[str] = []
    while len(seen_before_kill) < 120:  # in the middle of the third page of 50
        line = killed.stdout.readline()
        assert line, killed.communicate()[1]
        seen_before_kill.append(line.strip())
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    restarted = start()
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err
    lines = out.split()
    assert lines[-1] == "end"
    seen_after = lines[:-1]
    assert set(seen_before_kill) | set(seen_after) == created, "no record is lost"
    assert len(seen_after) == len(set(seen_after))
    # at-least-once: the restart repeats at most the unfinished page (and its prefetched neighbour is not saved)
    assert 300 - len(seen_before_kill) <= len(seen_after) <= 300 - 100 + 1


async def test_crud_with_swap(pds: PdsServer, pds_account: Account, database_url: str) -> None:
    async with client(pds, pds_account, database_url) as bsky:
        ref = await bsky.create_record(NOTE, {"text": "v1"}, rkey="swap-test", validate=False)
        record = await bsky.get_record(ref.uri)
        assert record.value.text == "v1" and record.value["$type"] == NOTE and record.cid == ref.cid
        updated = await bsky.put_record(NOTE, "swap-test", {"text": "v2"}, swap_record=ref.cid, validate=False)
        with pytest.raises(InvalidSwap, match="read it again"):
            await bsky.put_record(NOTE, "swap-test", {"text": "v3"}, swap_record=ref.cid, validate=False)
        assert (await bsky.get_record(ref.uri)).value.text == "v2"
        with pytest.raises(InvalidSwap):
            await bsky.delete_record(ref.uri, swap_record=ref.cid)
        await bsky.delete_record(ref.uri, swap_record=updated.cid)
        with pytest.raises(RecordNotFound):
            await bsky.get_record(ref.uri)
        pair = [Create(NOTE, {"text": "a"}, rkey="w1"), Create(NOTE, {"text": "b"}, rkey="w2")]
        result = await bsky.apply_writes(pair, validate=False)
        assert len(result.results) == 2 and result.commit is not None
        await bsky.apply_writes([Update(NOTE, "w1", {"text": "a2"}), Delete(NOTE, "w2")], validate=False)
        assert (await bsky.get_record(f"at://{bsky.did}/{NOTE}/w1")).value.text == "a2"
        with pytest.raises(RecordNotFound):
            await bsky.get_record(f"at://{bsky.did}/{NOTE}/w2")


async def test_blob_round_trip(pds: PdsServer, pds_account: Account, database_url: str) -> None:
    payload = bytes(range(256)) * 40
    async with client(pds, pds_account, database_url) as bsky:
        blob = await bsky.upload_blob(payload, "application/octet-stream")
        assert blob["$type"] == "blob" and blob["size"] == len(payload)
        await bsky.create_record(NOTE, {"attachment": blob}, validate=False)
        cid = blob["ref"]["$link"]
        assert await bsky.get_blob(pds_account.did, cid) == payload
        url = await bsky.get_blob_url(pds_account.did, cid)
        assert url.startswith(pds.base_url + "/xrpc/com.atproto.sync.getBlob?")
        assert (await bsky.http.get(url)).content == payload


async def test_a_blob_has_its_own_size_bound(pds: PdsServer, pds_account: Account, database_url: str) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB
    async with client(pds, pds_account, database_url) as bsky:
        blob = await bsky.upload_blob(payload, "application/octet-stream")
        await bsky.create_record(NOTE, {"attachment": blob}, validate=False)
        cid = blob["ref"]["$link"]
        small = bsky.with_options(max_response_bytes=1 << 20)
        assert await small.get_blob(pds_account.did, cid) == payload, "get_blob's bound is 128 MiB, not the client's"
        with pytest.raises(ResponseTooLarge, match=r"getBlob answered more than 1048576 bytes.*max_bytes="):
            await bsky.get_blob(pds_account.did, cid, max_bytes=1 << 20)
        with pytest.raises(ResponseTooLarge, match="max_response_bytes="):
            await small.get("com.atproto.sync.getBlob", hostname=listen_host(pds), did=pds_account.did, cid=cid)


async def test_resolve_handle_and_did(pds: PdsServer, pds_account: Account, tmp_path: Path) -> None:
    async with AsyncBskyClient(public_host=listen_host(pds), plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/id.sqlite3") as bsky:
        assert await bsky.resolve_handle(pds_account.handle) == pds_account.did
        assert await bsky.resolve_handle("@" + pds_account.handle.upper()) == pds_account.did
        await bsky.flush_call_log()
        [(calls,)] = await bsky.store.execute_sql(
            "SELECT count(*) FROM bsky_api_call_log WHERE endpoint = 'com.atproto.identity.resolveHandle'")
        assert calls == 1, "the second lookup is served from the cache"
        document = await bsky.resolve_did(pds_account.did)
        assert document["id"] == pds_account.did
        assert await bsky.identity.pds_endpoint(pds_account.did) == pds.base_url
        assert await bsky.identity.handle_of(pds_account.did) == pds_account.handle
        from pysky_async import IdentityNotFound

        with pytest.raises(IdentityNotFound, match=r"nobody-here\.test does not resolve"):
            await bsky.resolve_handle("nobody-here.test")
        with pytest.raises(IdentityNotFound):
            await bsky.resolve_did("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")


async def test_login_service_auth_and_identity_calls_are_in_the_call_log(pds: PdsServer, pds_account: Account,
                                                                        tmp_path: Path) -> None:
    from pysky_async import IdentityNotFound

    other = pds.create_account(f"o{pds_account.handle}", "other-password")  # not the account: via the PLC

    async with AsyncBskyClient(username=pds_account.handle, password=pds_account.password,
                               auth_host=listen_host(pds), plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/rows.sqlite3") as bsky:
        await bsky.login()
        await bsky.get_service_auth("did:web:video.example", "app.bsky.video.getUploadLimits")
        await bsky.resolve_did(other.did)
        with pytest.raises(IdentityNotFound) as info:
            await bsky.resolve_did("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
        await bsky.flush_call_log()
        rows = await bsky.store.execute_sql(
            "SELECT hostname, endpoint, http_status_code, request_did FROM bsky_api_call_log ORDER BY id")
    logged = [tuple(row) for row in rows]
    plc = pds.plc_url.split("://")[1]
    assert logged[0][1:3] == ("com.atproto.server.createSession", 200)
    assert logged[1][1:] == ("com.atproto.server.getServiceAuth", 200, pds_account.did)
    assert logged[2:] == [(plc, "resolve_did", 200, None), (plc, "resolve_did", 404, None)], \
        "DID documents are fetched through the pipeline, without the session"
    assert info.value.status_code == 404 and info.value.reason == "not_found"
