"""DpopMiddleware with a stub ``call_next`` (no HTTP): the proof, the headers, the
one-retry nonce rule and the refresh-and-replay on an expired token."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from pysky_async._oauth._dpop import NonceCache, access_token_hash, generate_key
from pysky_async._oauth._middleware import DpopMiddleware
from pysky_async._oauth._sessions import OAuthSession
from pysky_async._request import AUTH, XrpcRequest
from pysky_async._response import XrpcResponse
from tests.conftest import make_response

pytestmark = pytest.mark.anyio
PDS = "https://pds.example"
KEY = generate_key()


def session(token: str) -> OAuthSession:
    return OAuthSession(did="did:plc:alice", handle="alice.test", pds_endpoint=PDS, issuer=PDS, scope="atproto",
                        access_token=token, refresh_token="r", dpop_key=KEY,
                        expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))


class StubAccount:
    def __init__(self) -> None:
        self.current = session("token-1")
        self.refreshed: list[str] = []

    async def current_oauth(self) -> OAuthSession:
        return self.current

    async def refresh_oauth(self, stale: str) -> OAuthSession:
        self.refreshed.append(stale)
        self.current = session("token-2")
        return self.current


def decode(proof: str) -> tuple[dict[str, object], dict[str, object]]:
    token = jwt.decode(proof, ECKey.import_key(json.loads(json.dumps(KEY.as_dict(private=False)))))
    return dict(token.header), dict(token.claims)


def nonce_needed(nonce: str) -> XrpcResponse:
    return make_response(401, {"error": "use_dpop_nonce"},
                         headers={"DPoP-Nonce": nonce, "WWW-Authenticate": 'DPoP error="use_dpop_nonce"'})


async def test_proof_headers_and_appview_proxy() -> None:
    seen: list[XrpcRequest] = []

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        seen.append(request)
        return make_response(200, {"ok": True}, headers={"DPoP-Nonce": "n1"})

    middleware = DpopMiddleware(StubAccount(), NonceCache(), "did:web:api.bsky.app#bsky_appview")  # type: ignore[arg-type]
    await middleware(XrpcRequest("GET", "app.bsky.actor.getProfile", AUTH, params={"actor": "x"}), call_next)
    await middleware(XrpcRequest("POST", "com.atproto.repo.createRecord", AUTH), call_next)
    first, second = seen
    assert first.url == f"{PDS}/xrpc/app.bsky.actor.getProfile"
    assert first.headers["Authorization"] == "DPoP token-1"
    assert first.headers["atproto-proxy"] == "did:web:api.bsky.app#bsky_appview"
    assert "atproto-proxy" not in second.headers
    header, claims = decode(first.headers["DPoP"])
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256" and "d" not in header["jwk"]  # type: ignore[operator]
    assert claims["htm"] == "GET" and claims["htu"] == f"{PDS}/xrpc/app.bsky.actor.getProfile"
    assert claims["ath"] == access_token_hash("token-1") and "nonce" not in claims
    _, claims2 = decode(second.headers["DPoP"])
    assert claims2["nonce"] == "n1" and claims2["htm"] == "POST" and claims2["jti"] != claims["jti"]


async def test_a_new_nonce_is_retried_once_only() -> None:
    sent: list[str | None] = []
    answers = iter([nonce_needed("n1"), nonce_needed("n2"), nonce_needed("n3")])

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        sent.append(decode(request.headers["DPoP"])[1].get("nonce"))  # type: ignore[arg-type]
        return next(answers)

    account = StubAccount()
    response = await DpopMiddleware(account, NonceCache(), None)(  # type: ignore[arg-type]
        XrpcRequest("GET", "com.atproto.server.getSession", AUTH), call_next)
    assert sent == [None, "n1"]
    assert response.status_code == 401 and account.refreshed == []  # a nonce error is no expired token


async def test_an_expired_token_is_refreshed_and_the_call_replayed_once() -> None:
    tokens: list[str] = []

    async def call_next(request: XrpcRequest) -> XrpcResponse:
        tokens.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "DPoP token-1":
            return make_response(401, {"error": "InvalidToken"},
                                 headers={"WWW-Authenticate": 'DPoP error="invalid_token"'})
        return make_response(200, {"did": "did:plc:alice"})

    account = StubAccount()
    request = XrpcRequest("GET", "com.atproto.server.getSession", AUTH)
    response = await DpopMiddleware(account, NonceCache(), None)(request, call_next)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert tokens == ["DPoP token-1", "DPoP token-2"] and account.refreshed == ["token-1"]
    assert request.context.session_was_refreshed and request.context.did == "did:plc:alice"


async def test_unauthenticated_calls_pass_untouched() -> None:
    async def call_next(request: XrpcRequest) -> XrpcResponse:
        assert "Authorization" not in request.headers and "DPoP" not in request.headers
        return make_response(200, {})

    await DpopMiddleware(StubAccount(), NonceCache(), None)(  # type: ignore[arg-type]
        XrpcRequest("GET", "com.atproto.identity.resolveHandle", "https://public.example"), call_next)
