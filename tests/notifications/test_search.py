"""``bsky.search_posts``: authenticated searchPosts pagination against dev-env's AppView, and each
refusal of an AppView explained (dev-env's own, and Bluesky's from httpx.MockTransport)."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import httpx
import pytest

from pysky_async import (
    APIError,
    AsyncBskyClient,
    Forbidden,
    InvalidInput,
    InvalidRequest,
    NotAuthenticated,
    RetryPolicy,
)

from ..conftest import fake_jwt
from ..realnet.devenv import DevEnv
from ..test_graph_and_bot import client

pytestmark = pytest.mark.anyio

PDS = "https://pds.example.com"


def post(devenv: DevEnv, did: str, token: str, text: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = devenv.xrpc("com.atproto.repo.createRecord", {"repo": did, "collection": "app.bsky.feed.post",
                                                         "record": {"text": text, "createdAt": now}}, token=token)
    return str(out["uri"])


async def test_search_pages_through_every_match_logged_in(devenv: DevEnv, tmp_path: Path) -> None:
    word = f"needle{secrets.token_hex(4)}"
    authors = [devenv.new_account("s") for _ in range(2)]
    posted = {post(devenv, a.did, token, f"a {word} {i}") for i in range(6) for a, token in authors}
    post(devenv, authors[0][0].did, authors[0][1], "nothing to see")
    devenv.process_all()
    reader, _ = devenv.new_account("r")
    async with client(devenv, reader, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        pages = [page async for page in bsky.search_posts(word, limit=5).pages()]
        found = [p["uri"] for page in pages for p in page.posts]
        assert len(pages) >= 3 and len(found) == len(set(found)) and set(found) == posted
        assert pages[0].http.url.startswith(devenv.pds_url), "logged in: through the account's PDS"
        # the reference AppView reads the author from the query (from:); Bluesky's also takes author=
        one = await bsky.search_posts(f"{word} from:{authors[1][0].handle}", max_items=100).collect()
        assert {p.uri for p in one} == {u for u in posted if authors[1][0].did in u}
        assert len(await bsky.search_posts(word, max_items=4, limit=3).collect()) == 4
        # a resumed search continues where it stopped
        first = await bsky.search_posts(word, limit=5, max_items=5, resume=True).collect()
        rest = await bsky.search_posts(word, limit=5, resume=True).collect()
        assert {p.uri for p in first + rest} == posted


async def test_a_cursor_the_appview_did_not_make_is_explained(devenv: DevEnv, tmp_path: Path) -> None:
    reader, _ = devenv.new_account("r")
    async with client(devenv, reader, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
                      retry=RetryPolicy(attempts=1)) as bsky:
        with pytest.raises(APIError) as raw:  # the reference AppView fails on it; the PDS says 502
            await bsky.get("app.bsky.feed.searchPosts", q="x", cursor="not-a-cursor")
        assert raw.value.status_code == 502 and "cursor" not in str(raw.value), "nothing says why"
        with pytest.raises(APIError) as refused:
            await bsky.search_posts("x", cursor="not-a-cursor").collect()
    assert str(raw.value).split(" (call log")[0] in str(refused.value), "the server's words kept"
    assert "start again without cursor=" in str(refused.value)
    assert type(refused.value) is type(raw.value) and isinstance(refused.value.__cause__, APIError)


async def test_bad_arguments_refused_before_any_request() -> None:
    async with AsyncBskyClient(database_url="sqlite+aiosqlite://", username="me.test", password="pw") as bsky:
        with pytest.raises(InvalidInput, match="non-empty query"):
            bsky.search_posts("  ")
        with pytest.raises(InvalidInput, match="max_items="):
            bsky.search_posts("x", limit=500)
        with pytest.raises(InvalidInput, match="'top' or 'latest'"):
            bsky.search_posts("x", sort="newest")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match=r"tag=\['python'\]"):
            bsky.search_posts("x", tag="python")
        with pytest.raises(InvalidInput, match="time zone"):
            bsky.search_posts("x", since=dt.datetime(2026, 1, 1))


async def test_anonymous_search_on_bluesky_says_log_in() -> None:
    async with AsyncBskyClient(database_url="sqlite+aiosqlite://") as bsky:
        with pytest.raises(NotAuthenticated, match=r"needs a logged-in account.*app password"):
            bsky.search_posts("python")


class Bluesky:
    """Bluesky's answers (API-NOTES; indigo search/: offset cursors, 400 past 10,000)."""

    def __init__(self) -> None:
        self.params: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1]
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(200, json={
                "did": "did:plc:me", "handle": "me.test", "accessJwt": fake_jwt(), "refreshJwt": fake_jwt(),
                "didDoc": {"service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                        "serviceEndpoint": PDS}]}})
        if request.url.host == "public.example.com":
            return httpx.Response(403, json={"error": "Forbidden", "message": "Forbidden"})
        self.params.append(dict(request.url.params))
        offset = int(request.url.params.get("cursor", "0"))
        if offset > 10_000:
            return httpx.Response(400, json={"error": "InvalidRequest",
                                             "message": "invalid value for 'cursor' (can't paginate so deep)"})
        return httpx.Response(200, json={"posts": [{"uri": f"at://did:plc:a/app.bsky.feed.post/{offset}"}],
                                         "cursor": str(offset + 5_000)})


async def test_bluesky_refusals_are_explained() -> None:
    server = Bluesky()
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    async with AsyncBskyClient(database_url="sqlite+aiosqlite://", http_client=http,
                               public_host="https://public.example.com") as anonymous:
        with pytest.raises(Forbidden, match=r"needs a logged-in account.*username= and password="):
            await anonymous.search_posts("python").collect()
    async with AsyncBskyClient(database_url="sqlite+aiosqlite://", http_client=http, username="me.test",
                               password="pw") as bsky:
        found = []
        with pytest.raises(InvalidRequest) as deep:
            async for p in bsky.search_posts("python", sort="latest", tag=["py"], lang="en"):
                found.append(p.uri)
        assert len(found) == 3, "every page the service serves, then the refusal"
        assert "can't paginate so deep" in str(deep.value) and "at most 10,000 results deep" in str(deep.value)
        assert "until=" in str(deep.value)
        assert server.params[0] == {"q": "python", "sort": "latest", "tag": "py", "lang": "en", "limit": "100"}
