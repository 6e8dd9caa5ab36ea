"""bsky.sync on the real reference PDS: getRepo verified and equal to listRecords; a tampering proxy
in front of it (record bytes forged, an MST node dropped, the commit re-signed) refused every time."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import libipld
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from pysky_async import CID, APIError, AsyncBskyClient, ResponseTooLarge, VerificationError
from pysky_async._json_body import atproto_json
from pysky_async._sync.blocks import cid_for

from ..realnet.pds import Account, PdsServer
from ..streams.loopback import start_app
from ..streams.repo_builder import _raw_blocks, car, sign
from ..streams.workload import write_account

pytestmark = pytest.mark.anyio
POST, LIKE, FOLLOW = "app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4130000000049454e44ae426082")


@dataclass
class Repos:
    accounts: list[Account]
    blob: str
    """The CID of the image every account's first post embeds."""


async def _social(pds: PdsServer, accounts: list[Account]) -> str:
    """Posts (some with an image), likes, follows, then some of each deleted, in every account."""
    blob = ""
    async with httpx.AsyncClient(base_url=pds.listen_url, timeout=60) as http:
        for account in accounts:
            r = await http.post("/xrpc/com.atproto.server.createSession",
                                json={"identifier": account.handle, "password": account.password})
            auth = {"authorization": f"Bearer {r.json()['accessJwt']}"}

            async def call(nsid: str, body: dict[str, Any], auth: dict[str, str] = auth) -> dict[str, Any]:
                response = await http.post(f"/xrpc/{nsid}", json=body, headers=auth)
                response.raise_for_status()
                result: dict[str, Any] = response.json()
                return result

            upload = await http.post("/xrpc/com.atproto.repo.uploadBlob", content=PNG,
                                     headers={**auth, "content-type": "image/png"})
            upload.raise_for_status()
            image = upload.json()["blob"]
            blob = image["ref"]["$link"]
            posts = []
            for n in range(30):
                record: dict[str, Any] = {"$type": POST, "text": f"post {n}", "createdAt": "2026-12-04T00:00:00Z"}
                if n % 10 == 0:
                    record["embed"] = {"$type": "app.bsky.embed.images", "images": [{"alt": "a dot", "image": image}]}
                posts.append(await call("com.atproto.repo.createRecord",
                                        {"repo": account.did, "collection": POST, "record": record}))
            likes = [await call("com.atproto.repo.createRecord", {"repo": account.did, "collection": LIKE, "record": {
                "$type": LIKE, "subject": {"uri": p["uri"], "cid": p["cid"]}, "createdAt": "2026-12-04T00:00:00Z"}})
                for p in posts[:12]]
            follows = [await call("com.atproto.repo.createRecord", {"repo": account.did, "collection": FOLLOW,
                                                                   "record": {"$type": FOLLOW, "subject": other.did,
                                                                              "createdAt": "2026-12-04T00:00:00Z"}})
                       for other in accounts if other is not account]
            for ref in [*posts[20:25], *likes[:3], *follows[:1]]:
                collection, rkey = ref["uri"].split("/")[-2:]
                await call("com.atproto.repo.deleteRecord", {"repo": account.did, "collection": collection,
                                                             "rkey": rkey})
    return blob


@pytest.fixture(scope="module")
def repos(pds: PdsServer) -> Repos:
    accounts = [pds.create_account(f"g{secrets.token_hex(5)}.test", secrets.token_urlsafe(12)) for _ in range(4)]
    blob = asyncio.run(_social(pds, accounts))
    asyncio.run(write_account(pds, accounts[0], singles=40, batches=3, batch_size=150))  # a bigger repo too
    return Repos(accounts, blob)


@pytest.fixture
async def bsky(pds: PdsServer, tmp_path: Path) -> AsyncIterator[AsyncBskyClient]:
    async with AsyncBskyClient(auth_host=pds.listen_url, plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/s.sqlite3") as client:
        yield client


async def list_records(bsky: AsyncBskyClient, pds: PdsServer, did: str) -> dict[str, dict[str, Any]]:
    """Every record of ``did`` by listRecords, collection by collection: path -> {cid, value}."""
    described = await bsky.get("com.atproto.repo.describeRepo", hostname=pds.listen_url, repo=did)
    found: dict[str, dict[str, Any]] = {}
    for collection in described.raw["collections"]:
        cursor = None
        while True:
            page = (await bsky.get("com.atproto.repo.listRecords", hostname=pds.listen_url, repo=did,
                                   collection=collection, limit=100, cursor=cursor)).raw
            for item in page["records"]:
                found[item["uri"].split("/", 3)[3]] = {"cid": item["cid"], "value": item["value"]}
            cursor = page.get("cursor")
            if not cursor or not page["records"]:
                break
    return found


async def test_get_repo_equals_list_records_for_every_account(pds: PdsServer, repos: Repos,
                                                              bsky: AsyncBskyClient) -> None:
    for account in repos.accounts:
        repo = await bsky.sync.get_repo(account.did)  # the PDS from the DID document, the key from it too
        listed = await list_records(bsky, pds, account.did)
        ours = {r.path: {"cid": str(r.cid), "value": atproto_json(r.record)} for r in repo.records}
        assert ours == listed  # (collection, rkey, cid) and the values: 0 differences
        groups = repo.by_collection()
        assert len(groups[POST]) == 25 and len(groups[LIKE]) == 9 and len(groups[FOLLOW]) == 2
        image = next(r for r in groups[POST] if "embed" in r.record).record["embed"]["images"][0]["image"]["ref"]
        assert isinstance(image, CID) and str(image) == repos.blob
        subject = groups[LIKE][0].record["subject"]  # a strongRef: its cid is a string (docs/guide/sync.md)
        assert isinstance(subject["cid"], str) and str(CID.decode(subject["cid"])) == subject["cid"]
        latest = (await bsky.get("com.atproto.sync.getLatestCommit", hostname=pds.listen_url,
                                 did=account.did)).raw
        assert (str(repo.commit_cid), repo.rev) == (latest["cid"], latest["rev"])
    big = await bsky.sync.get_repo(repos.accounts[0].did, service=pds.listen_url)
    assert len(big) > 500
    only = await bsky.sync.get_repo(repos.accounts[0].did, collections=[FOLLOW])
    assert [r.collection for r in only.records] == [FOLLOW] * 2


async def test_list_repos_names_every_account_at_its_head(pds: PdsServer, repos: Repos,
                                                          bsky: AsyncBskyClient) -> None:
    listed = {r.did: r async for r in bsky.sync.list_repos(pds.listen_url, limit=2)}  # several pages
    for account in repos.accounts:
        repo = await bsky.sync.get_repo(account.did)
        entry = listed[account.did]
        assert (entry.head, entry.rev, entry.active) == (str(repo.commit_cid), repo.rev, True)


async def test_list_repos_by_collection_is_not_served_by_a_pds(pds: PdsServer, bsky: AsyncBskyClient) -> None:
    """A PDS has no collection directory (relays do): the call fails with the server's error, clearly."""
    with pytest.raises(APIError) as info:
        [did async for did in bsky.sync.list_repos_by_collection(POST, pds.listen_url)]
    assert "listReposByCollection" in str(info.value)


Tamper = Callable[[bytes], bytes]


def forge_record(data: bytes) -> bytes:
    """A record block's bytes changed, its CID kept."""
    root = libipld.decode_car(data)[0]["roots"][0]
    sections = _raw_blocks(data)
    at = next(i for i, (_c, b) in enumerate(sections) if b"$type" in b and b"app.bsky.feed.post" in b)
    forged = libipld.encode_dag_cbor({"$type": POST, "text": "not what the author wrote", "createdAt": "2026"})
    sections[at] = (sections[at][0], forged)
    return car([root], sections)


def drop_node(data: bytes) -> bytes:
    """An MST node (not the root) left out."""
    header, blocks = libipld.decode_car(data)
    root = header["roots"][0]
    top = blocks[root]["data"]
    sections = _raw_blocks(data)
    at = next(i for i, (c, _b) in enumerate(sections)
              if c != top and isinstance(blocks[c], dict) and set(blocks[c]) == {"l", "e"})
    return car([root], sections[:at] + sections[at + 1:])


def resign(key: ec.EllipticCurvePrivateKey) -> Tamper:
    """The commit re-signed by another key."""

    def tamper(data: bytes) -> bytes:
        root = libipld.decode_car(data)[0]["roots"][0]
        sections = _raw_blocks(data)
        commit = libipld.decode_dag_cbor(dict(sections)[root])
        unsigned = {k: v for k, v in commit.items() if k != "sig"}
        block = libipld.encode_dag_cbor({**unsigned, "sig": sign(key, libipld.encode_dag_cbor(unsigned))})
        return car([cid_for(block)], [(cid_for(block), block), *((c, d) for c, d in sections if c != root)])

    return tamper


class TamperingProxy:
    """``getRepo`` through a proxy that changes every CAR with ``tamper``."""

    def __init__(self, pds: PdsServer, tamper: Tamper) -> None:
        self.upstream = pds.listen_url
        self.tamper = tamper
        self.served = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> TamperingProxy:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.sync.getRepo", self._serve)
        self._runner, self.port = await start_app(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, request: web.Request) -> web.Response:
        async with httpx.AsyncClient(timeout=60) as http:
            upstream = await http.get(f"{self.upstream}/xrpc/com.atproto.sync.getRepo", params=request.query)
        upstream.raise_for_status()
        self.served += 1
        return web.Response(body=self.tamper(upstream.content), content_type="application/vnd.ipld.car")


@pytest.mark.parametrize("attack", ["record-bytes", "node-dropped", "resigned"])
async def test_a_tampering_host_is_refused_every_time(pds: PdsServer, repos: Repos, bsky: AsyncBskyClient,
                                                      attack: str) -> None:
    tamper = {"record-bytes": forge_record, "node-dropped": drop_node,
              "resigned": resign(ec.generate_private_key(ec.SECP256K1()))}[attack]
    reason = {"record-bytes": "block-cid", "node-dropped": "mst-incomplete", "resigned": "signature"}[attack]
    async with TamperingProxy(pds, tamper) as proxy:
        for account in repos.accounts:
            with pytest.raises(VerificationError) as info:
                await bsky.sync.get_repo(account.did, service=proxy.url)
            assert info.value.reason == reason and account.did in str(info.value)
    assert proxy.served == len(repos.accounts)
    for account in repos.accounts:  # the genuine repos still verify
        assert (await bsky.sync.get_repo(account.did)).records


async def test_a_repo_over_max_bytes_is_refused(pds: PdsServer, repos: Repos, bsky: AsyncBskyClient) -> None:
    with pytest.raises(ResponseTooLarge, match="larger than max_bytes=10000"):
        await bsky.sync.get_repo(repos.accounts[0].did, max_bytes=10_000)
    assert len(await bsky.sync.get_repo(repos.accounts[0].did, max_bytes=10_000_000)) > 500
