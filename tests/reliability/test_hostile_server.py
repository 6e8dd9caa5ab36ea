"""A server that answers 2xx with something that is not the JSON the call needs, or redirects:
the reference PDS never does this, so a small fake on loopback misbehaves on purpose."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from pysky_async import APIError, AsyncBskyClient, InvalidResponse, PyskyError

from ..conftest import fake_jwt
from ..streams.loopback import start_app

pytestmark = pytest.mark.anyio

Answer = Callable[[], web.Response]


def session_body(base: str) -> dict[str, object]:
    return {"did": "did:plc:hostile", "handle": "h.test", "accessJwt": fake_jwt(sub="did:plc:hostile"),
            "refreshJwt": fake_jwt(lifetime=86400, sub="did:plc:hostile"),
            "didDoc": {"id": "did:plc:hostile", "service": [
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": base}]}}


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[tuple[dict[str, Answer], str]]:
    answers: dict[str, Answer] = {}

    async def xrpc(request: web.Request) -> web.Response:
        return answers[request.match_info["nsid"]]()

    app = web.Application()
    app.add_routes([web.route("*", "/xrpc/{nsid}", xrpc)])
    runner, port = await start_app(app)
    base = f"http://127.0.0.1:{port}"
    answers["com.atproto.server.createSession"] = lambda: web.json_response(session_body(base))
    try:
        yield answers, base
    finally:
        await runner.cleanup()


BAD_BODIES: dict[str, Callable[[], web.Response]] = {
    "html": lambda: web.Response(text="<html><body>Welcome to nginx!</body></html>", content_type="text/html"),
    "empty": lambda: web.Response(status=200),
    "truncated": lambda: web.Response(body=b'{"uri": "at://did:plc:x/c/1", "ci', content_type="application/json"),
    "missing field": lambda: web.json_response({"uri": "at://did:plc:hostile/com.example.note/1"}),
    "nested too deep": lambda: web.Response(body=b'{"uri": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
                                            content_type="application/json"),
}


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_a_2xx_that_is_not_the_json_the_call_needs_names_the_call(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path, body: str) -> None:
    answers, base = hostile
    answers["com.atproto.repo.createRecord"] = BAD_BODIES[body]
    answers["com.atproto.identity.resolveHandle"] = BAD_BODIES[body]
    async with AsyncBskyClient(username="h.test", password="pw", auth_host=base, public_host=base, retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        with pytest.raises(InvalidResponse, match=r"createRecord answered HTTP 200 (without 'cid'|"
                                                  r"without 'uri', 'cid'|from .* with )"):
            await bsky.create_record("com.example.note", {"text": "x"}, validate=False)
        with pytest.raises(InvalidResponse, match=r"resolveHandle answered HTTP 200 (without 'did'|from .* with )"):
            await bsky.resolve_handle("someone.test")


async def test_a_login_answered_with_html_is_an_invalid_response(hostile: tuple[dict[str, Answer], str],
                                                                 tmp_path: Path) -> None:
    answers, base = hostile
    answers["com.atproto.server.createSession"] = BAD_BODIES["html"]
    async with AsyncBskyClient(username="h.test", password="pw", auth_host=base, retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        with pytest.raises(InvalidResponse, match=r"createSession answered HTTP 200 .*nginx"):
            await bsky.login()


async def test_a_redirect_is_an_error_naming_where_and_a_redirected_write_costs_nothing(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path) -> None:
    answers, base = hostile
    answers["com.atproto.repo.createRecord"] = lambda: web.Response(
        status=302, headers={"Location": "https://elsewhere.example/xrpc/com.atproto.repo.createRecord"})
    async with AsyncBskyClient(username="h.test", password="pw", auth_host=base, retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        with pytest.raises(APIError, match=r"redirected to https://elsewhere\.example") as caught:
            await bsky.create_record("com.example.note", {"text": "x"}, validate=False)
        assert caught.value.status_code == 302
        await bsky.flush_call_log()
        [(points,)] = await bsky.store.execute_sql(
            "SELECT write_op_points_consumed FROM bsky_api_call_log WHERE endpoint = 'com.atproto.repo.createRecord'")
        [(reserved,)] = await bsky.store.execute_sql("SELECT count(*) FROM bsky_write_op")
    assert points == 0 and reserved == 0, "the redirected write was refunded"


NOT_JSON: dict[str, tuple[str, bytes, str]] = {  # content type, body, what the error says
    "invalid": ("application/json", b'{"did": did:plc:x}', "does not decode as JSON"),
    "truncated": ("application/json", b'{"did": "did:plc:x", "han', "does not decode as JSON"),
    "empty": ("application/json", b"", "does not decode as JSON"),
    "200,000 deep": ("application/json", b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested deeper"),
    "invalid UTF-8": ("application/json; charset=utf-8", b'{"did": "\xff\xfe"}', "not valid UTF-8"),
    "html": ("text/html", b"<html><body>Welcome to nginx!</body></html>", "text, not JSON"),
    "text": ("text/plain", b"upstream connect error", "text, not JSON"),
}


@pytest.mark.parametrize("case", NOT_JSON)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_2xx_that_is_not_json_raises_from_raw_get_and_post_naming_the_call_and_content_type(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path, case: str, method: str) -> None:
    answers, base = hostile
    ctype, body, says = NOT_JSON[case]
    answers["com.example.answer"] = lambda: web.Response(body=body, headers={"Content-Type": ctype})
    async with AsyncBskyClient(public_host=base, database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        call = bsky.get if method == "GET" else functools.partial(bsky.post, hostname=base)
        with pytest.raises(InvalidResponse) as caught:
            await call("com.example.answer")
        await bsky.flush_call_log()
        [(attempts,)] = await bsky.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
    message = str(caught.value)
    assert message.startswith(f"com.example.answer answered HTTP 200 from {base} with "), message
    assert says in message and f"content type {ctype!r}" in message, message
    assert attempts == 1, "a malformed answer is not retried"


async def test_a_query_answered_with_nothing_raises_a_procedure_answered_with_nothing_does_not(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path) -> None:
    answers, base = hostile
    answers["com.example.nothing"] = lambda: web.Response(status=200)
    async with AsyncBskyClient(public_host=base, database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        with pytest.raises(InvalidResponse, match=r"com\.example\.nothing answered HTTP 200 from .* an empty body"):
            await bsky.get("com.example.nothing")
        assert (await bsky.post("com.example.nothing", hostname=base)).raw == {}, "a procedure without output"


BINARY: dict[str, tuple[str, str, bytes]] = {  # endpoint, content type, body
    "blob": ("com.atproto.sync.getBlob", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
    "a JSON blob that does not decode": ("com.atproto.sync.getBlob", "application/json", b'{"half": '),
    "an empty blob": ("com.atproto.sync.getBlob", "text/plain", b""),
    "CAR": ("com.atproto.sync.getRepo", "application/vnd.ipld.car", b"\x3a\xa2eroots\x80gversion\x01"),
    "an endpoint's own binary type": ("com.example.getImage", "application/octet-stream", b"\x00\x01\x02"),
}


@pytest.mark.parametrize("case", BINARY)
async def test_binary_answers_pass_through(hostile: tuple[dict[str, Answer], str], tmp_path: Path, case: str) -> None:
    answers, base = hostile
    nsid, ctype, body = BINARY[case]
    answers[nsid] = lambda: web.Response(body=body, headers={"Content-Type": ctype})
    async with AsyncBskyClient(public_host=base, database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        response = await bsky.get(nsid, did="did:plc:x", cid="bafy")
    assert response.content == body and response.raw == {}


async def test_json_nested_as_deep_as_python_decodes_never_raises_recursion_error(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path) -> None:
    answers, base = hostile
    depth = next(d for d in range(2000, 0, -10) if _decodes(b"[" * d + b"]" * d))
    deep = b"[" * depth + b"]" * depth
    answers["com.example.deep"] = lambda: web.Response(body=b'{"a": ' + deep + b"}", content_type="application/json")
    answers["com.example.deepError"] = lambda: web.Response(
        status=400, body=b'{"error": "Deep", "message": "m", "a": ' + deep + b"}", content_type="application/json")
    async with AsyncBskyClient(public_host=base, retry=None,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
        for nsid in ("com.example.deep", "com.example.deepError"):
            try:
                response = await bsky.get(nsid)
                repr(response)
            except PyskyError as exc:
                repr(exc), str(exc)
        await bsky.flush_call_log()
        [(rows,)] = await bsky.store.execute_sql("SELECT count(*) FROM bsky_api_call_log")
    assert rows == 2


def _decodes(body: bytes) -> bool:
    try:
        json.loads(body)
    except RecursionError:
        return False
    return True


def token_leaks(obj: object, token: str, path: str = "error", depth: int = 0,
                seen: set[int] | None = None) -> list[str]:
    """Where ``token`` appears in an exception's chain: causes, contexts, args, reprs and every
    attribute, followed recursively (lists, dicts, objects)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 8:
        return []
    seen.add(id(obj))
    if isinstance(obj, (str, bytes, bytearray)):
        text = obj if isinstance(obj, str) else bytes(obj).decode("latin-1")
        return [path] if token in text else []
    found = [f"repr({path})"] if token in repr(obj) else []
    children: list[tuple[str, object]] = []
    if isinstance(obj, BaseException):
        found += [f"str({path})"] if token in str(obj) else []
        children += [(f"{path}.args[{i}]", arg) for i, arg in enumerate(obj.args)]
        children += [(f"{path}.__cause__", obj.__cause__), (f"{path}.__context__", obj.__context__)]
    if isinstance(obj, dict):
        children += [(f"{path}[{key!r}]", value) for key, value in obj.items()]
        children += [(f"{path}.key", key) for key in obj]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children += [(f"{path}[{i}]", item) for i, item in enumerate(obj)]
    elif hasattr(obj, "items") and callable(obj.items):  # multidicts, header objects
        try:
            children += [(f"{path}[{key!r}]", value) for key, value in obj.items()]
        except Exception:
            pass
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        children += [(f"{path}.{name}", value) for name, value in vars(obj).items()]
    for name in getattr(type(obj), "__slots__", ()):
        if isinstance(name, str) and hasattr(obj, name):
            children += [(f"{path}.{name}", getattr(obj, name))]
    for child_path, child in children:
        if child is not None:
            found += token_leaks(child, token, child_path, depth + 1, seen)
    return found


@pytest.mark.parametrize(("transport", "header_bytes"), [("aiohttp", 9_000), ("httpx", 200_000)])
async def test_an_oversized_header_line_is_not_retried_and_no_token_is_in_the_error_chain(
        hostile: tuple[dict[str, Answer], str], tmp_path: Path, transport: str, header_bytes: int) -> None:
    """aiohttp refuses a header line over 8190 bytes; httpx (h11 under httpcore) an answer head over 100 KiB."""
    answers, base = hostile
    requests_seen: list[int] = []

    def oversized() -> web.Response:
        requests_seen.append(1)
        return web.json_response({"ok": True}, headers={"X-Padding": "x" * header_bytes})

    answers["app.bsky.actor.getProfile"] = oversized
    session = session_body(base)
    answers["com.atproto.server.createSession"] = lambda: web.json_response(session)
    token = str(session["accessJwt"])
    own = httpx.AsyncClient() if transport == "httpx" else None
    try:
        async with AsyncBskyClient(username="h.test", password="pw", auth_host=base, http_client=own,
                                   database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3") as bsky:
            await bsky.login()
            with pytest.raises(PyskyError) as caught:
                await bsky.get("app.bsky.actor.getProfile", actor="h.test")
    finally:
        if own is not None:
            await own.aclose()
    assert token_leaks(caught.value, token) == []
    assert token_leaks(caught.value, token.split(".")[1]) == [], "not even the token's payload"
    assert len(requests_seen) == 1, "a malformed answer is not retried (the same answer would come back)"
    assert isinstance(caught.value, InvalidResponse), repr(caught.value)
    assert str(caught.value).startswith(f"app.bsky.actor.getProfile to {base}: the server's answer is not valid "
                                        "HTTP ("), str(caught.value)
