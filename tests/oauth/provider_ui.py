"""Sign in and consent on the reference PDS's authorization pages through the HTTP API
those pages call (no browser): what the page's JavaScript does, request for request.

1. GET the authorization URL as a top-level navigation: the provider sets its device and
   CSRF cookies and serves the page.
2. POST ``/@atproto/oauth-provider/~api/sign-in`` (``{locale, username, password, remember}``)
   and ``.../~api/consent`` (``{did}``) as same-origin fetches from that page: ``Origin``,
   ``Referer`` = the authorization URL, ``Sec-Fetch-*``, the ``x-csrf-token`` header equal to
   the ``csrf-token`` cookie. Consent answers ``{"url": ".../oauth/authorize/redirect?..."}``.
3. GET that URL as a same-origin navigation: a 303 to the app's redirect URI with
   ``code``, ``state`` and ``iss``.

Cookies are kept by hand: the provider marks them ``Secure``, which browsers honour on
``http://localhost`` but Python's cookie jar does not.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import httpx

API = "/@atproto/oauth-provider/~api"


class ProviderUiError(AssertionError):
    pass


class ProviderUi:
    """One browser-like visit to the authorization page of ``authorize_url``."""

    def __init__(self, authorize_url: str) -> None:
        self.authorize_url = authorize_url
        parts = urlsplit(authorize_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.cookies: dict[str, str] = {}
        self.http = httpx.AsyncClient(timeout=30, follow_redirects=False)

    async def __aenter__(self) -> ProviderUi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    def _keep_cookies(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value

    def _cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    async def open_page(self) -> None:
        response = await self.http.get(self.authorize_url, headers={
            "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "cross-site",
            "accept": "text/html"})
        self._keep_cookies(response)
        if response.status_code != 200:
            raise ProviderUiError(f"authorization page: HTTP {response.status_code}: {response.text[:300]}")

    async def api(self, endpoint: str, body: dict[str, object], token: str | None = None) -> dict[str, object]:
        headers = {"origin": self.origin, "referer": self.authorize_url, "sec-fetch-mode": "same-origin",
                   "sec-fetch-site": "same-origin", "sec-fetch-dest": "empty",
                   "x-csrf-token": self.cookies.get("csrf-token", ""), "cookie": self._cookie_header()}
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = await self.http.post(f"{self.origin}{API}{endpoint}", json=body, headers=headers)
        self._keep_cookies(response)
        data = response.json()
        if response.status_code != 200:
            raise ProviderUiError(f"{endpoint}: HTTP {response.status_code}: {data}")
        assert isinstance(data, dict)
        return data

    async def follow_redirect(self, url: str) -> str:
        response = await self.http.get(url, headers={
            "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "same-origin",
            "referer": self.authorize_url, "cookie": self._cookie_header()})
        if response.status_code not in (302, 303):
            raise ProviderUiError(f"redirect page: HTTP {response.status_code}: {response.text[:300]}")
        return response.headers["location"]

    async def approve(self, username: str, password: str) -> str:
        """Sign in, consent, and return the URL the provider sends the browser back to."""
        await self.open_page()
        signed_in = await self.api("/sign-in", {"locale": "en", "username": username, "password": password,
                                                "remember": True})
        account = signed_in["account"]
        assert isinstance(account, dict)
        consent = await self.api("/consent", {"did": account.get("sub") or account.get("did")})
        return await self.follow_redirect(str(consent["url"]))

    async def reject(self) -> str:
        await self.open_page()
        answer = await self.api("/reject", {})
        return await self.follow_redirect(str(answer["url"]))


async def approve(authorize_url: str, username: str, password: str) -> str:
    """The callback URL after ``username`` signs in and consents."""
    async with ProviderUi(authorize_url) as ui:
        return await ui.approve(username, password)
