"""OAuthApp (metadata, JWKS, private_key_jwt), the login cookie, safe redirects and secrets
at rest, without servers."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from pysky_async import InvalidInput, OAuthApp, StorageError
from pysky_async._oauth._app import ASSERTION_TYPE
from pysky_async._oauth._secrets import SecretBox
from pysky_async._oauth._web import safe_next

CLIENT_ID = "https://app.example/oauth/client-metadata.json"


def confidential() -> OAuthApp:
    return OAuthApp(client_id=CLIENT_ID, redirect_uris=("https://app.example/oauth/callback",),
                    keys=(OAuthApp.generate_key("k1"),), jwks_uri="https://app.example/oauth/jwks.json",
                    client_name="Example")


def test_confidential_client_metadata_and_public_jwks() -> None:
    app = confidential()
    metadata = app.metadata()
    assert metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert metadata["token_endpoint_auth_signing_alg"] == "ES256"
    assert metadata["dpop_bound_access_tokens"] is True and metadata["jwks_uri"] == app.jwks_uri
    (key,) = app.jwks()["keys"]
    assert key["kid"] == "k1" and key["alg"] == "ES256" and "d" not in key
    assert app.keys[0]["d"] not in repr(app)


def test_private_key_jwt_assertion_is_signed_for_the_issuer() -> None:
    app = confidential()
    fields = app.client_auth("https://auth.example")
    assert fields["client_id"] == CLIENT_ID and fields["client_assertion_type"] == ASSERTION_TYPE
    public = ECKey.import_key(app.jwks()["keys"][0])
    token = jwt.decode(fields["client_assertion"], public, algorithms=["ES256"])
    assert token.header["kid"] == "k1"
    claims = token.claims
    assert claims["iss"] == claims["sub"] == CLIENT_ID and claims["aud"] == "https://auth.example"
    assert claims["exp"] > claims["iat"] and claims["jti"]
    assert app.client_auth("https://auth.example")["client_assertion"] != fields["client_assertion"]


def test_public_loopback_client() -> None:
    app = OAuthApp.loopback("http://127.0.0.1:8000/cb")
    assert app.client_id.startswith("http://localhost?") and app.is_loopback and not app.is_confidential
    assert app.client_auth("https://auth.example") == {"client_id": app.client_id}
    assert app.metadata()["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize("build", [
    lambda: OAuthApp.loopback("http://localhost:8000/cb"),
    lambda: OAuthApp.loopback("https://127.0.0.1/cb"),
    lambda: OAuthApp(client_id=CLIENT_ID, redirect_uris=("https://a/cb",), scope="transition:generic"),
    lambda: OAuthApp(client_id=CLIENT_ID, redirect_uris=()),
    lambda: OAuthApp(client_id=CLIENT_ID, redirect_uris=("https://a/cb",), keys=({"kty": "EC"},)),
    lambda: OAuthApp(client_id=CLIENT_ID, redirect_uris=("https://a/cb",), keys=(OAuthApp.generate_key("k"),)),
])
def test_bad_apps_are_refused(build: object) -> None:
    with pytest.raises(InvalidInput):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(("value", "expected"), [
    ("/home?x=1", "/home?x=1"), (None, "/"), ("https://evil.example/", "/"), ("//evil.example", "/"),
    ("/\\evil.example", "/"), ("relative", "/"),
])
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_secret_box() -> None:
    key = SecretBox.generate_key()
    sealed = SecretBox(key).seal("token")
    assert sealed.startswith("fernet:") and "token" not in sealed
    assert SecretBox(key).open(sealed) == "token"
    assert SecretBox(None).seal("token") == "token"
    with pytest.raises(StorageError, match="encrypted"):
        SecretBox(None).open(sealed)
    with pytest.raises(StorageError, match="does not decrypt"):
        SecretBox(SecretBox.generate_key()).open(sealed)
    with pytest.raises(InvalidInput, match="Fernet key"):
        SecretBox("not a key")
