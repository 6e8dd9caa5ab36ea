"""Raw XRPC calls: build a request (route it to the account's PDS, the public AppView or a
proxied service) and run it through the client's pipeline. Every feature object (records,
posts, video...) makes its calls through one ``Xrpc``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ._account import Account
from ._config import (
    LABELED_NAMESPACES,
    PROXIED_NAMESPACES,
    PROXIED_SERVICES,
    ClientConfig,
    normalize_endpoint,
    normalize_host,
)
from ._deadline import CallDeadline, call_seconds
from ._exceptions import InvalidInput
from ._json_body import json_body
from ._middleware import Pipeline
from ._request import AUTH, XrpcRequest
from ._response import XrpcResponse, raise_for_status


class Xrpc:
    """Sends requests through ``pipeline`` and raises typed errors for error statuses.

    Args:
        config: where public and authenticated calls go.
        sessions: the account (whether calls can be authenticated; whose repo is "mine").
        pipeline: the client's middlewares around its transport.
        check_open: raises when the client is closed.
    """

    def __init__(self, config: ClientConfig, sessions: Account, pipeline: Pipeline,
                 check_open: Callable[[], None]) -> None:
        self.config = config
        self.sessions = sessions
        self.pipeline = pipeline
        self._check_open = check_open
        self._accept_labelers = ", ".join(config.labelers)

    def request(self, method: str, endpoint: str, hostname: str | None = None,
                params: Mapping[str, Any] | None = None, *, default_auth: bool = False) -> XrpcRequest:
        """A request for ``endpoint``; ``hostname`` None means the account's PDS when there are
        credentials (or ``default_auth``), else the public AppView."""
        nsid = normalize_endpoint(endpoint)
        proxy = next((did for prefix, did in PROXIED_NAMESPACES.items() if nsid.startswith(prefix)), None)
        if hostname is None:
            authenticated = default_auth or proxy is not None or self.sessions.can_authenticate
            host = AUTH if authenticated else self.config.public_host
        else:
            host = normalize_host(hostname)
            bare = host.split("://", 1)[1]
            if bare in PROXIED_SERVICES:
                proxy, host = PROXIED_SERVICES[bare], AUTH
            elif self.sessions.can_authenticate and host in (self.config.auth_host, self.sessions.pds_endpoint):
                host = AUTH  # the account's own server: with its token (never demanded without credentials)
        headers = {"atproto-proxy": proxy} if proxy and host == AUTH else {}
        if self._accept_labelers and nsid.startswith(LABELED_NAMESPACES):
            headers["atproto-accept-labelers"] = self._accept_labelers
        return XrpcRequest(method, nsid, host, params=params if type(params) is dict else dict(params or {}),
                           headers=headers)

    async def send(self, request: XrpcRequest) -> XrpcResponse:
        """Run a request through the pipeline; raise an APIError subclass on an error status."""
        self._check_open()
        with CallDeadline(request, call_seconds(request, self.config.deadline)):
            response = await self.pipeline(request)
        return raise_for_status(response, request.nsid)

    async def send_unchecked(self, request: XrpcRequest) -> XrpcResponse:
        """Run a request through the pipeline; error statuses come back as values."""
        self._check_open()
        return await self.run(request)

    async def run(self, request: XrpcRequest) -> XrpcResponse:
        """Run a request through the pipeline within its deadline, which covers every attempt,
        back-off sleep and token refresh of the call (the session's own calls come here directly)."""
        with CallDeadline(request, call_seconds(request, self.config.deadline)):
            return await self.pipeline(request)

    async def get(self, endpoint: str, *, hostname: str | None = None,
                  params: Mapping[str, Any] | None = None, **kwargs: Any) -> XrpcResponse:
        """Call an XRPC query (GET); params as a dict, as keyword arguments, or both."""
        return await self.send(self.request("GET", endpoint, hostname, {**(params or {}), **kwargs}))

    async def post(self, endpoint: str, *, hostname: str | None = None,
                   params: Mapping[str, Any] | None = None, data: Any = None,
                   headers: Mapping[str, str] | None = None, **kwargs: Any) -> XrpcResponse:
        """Call an XRPC procedure (POST): ``data`` is a dict (JSON) or bytes; keyword
        arguments are added to a JSON body; ``params`` is the query string."""
        if kwargs:
            if data is not None and not isinstance(data, Mapping):
                raise TypeError("keyword body fields need data= to be a dict or None")
            data = {**(data or {}), **kwargs}
        request = self.request("POST", endpoint, hostname, params, default_auth=True)
        if isinstance(data, (bytes, bytearray, memoryview)):
            request = request.replace(content=bytes(data))
        elif data is not None:
            request = request.replace(json=json_body(data))
        if headers:
            request = request.with_headers(**headers)
        return await self.send(request)

    async def repo(self, repo: str | None) -> str:
        """``repo``, or the logged-in account's DID."""
        if repo:
            return repo
        return (await self.sessions.current()).did

    async def write(self, nsid: str, body: dict[str, Any], *, idempotent: bool) -> XrpcResponse:
        """POST a JSON body to the account's PDS; ``idempotent`` lets the retry layer repeat it."""
        request = self.request("POST", nsid, default_auth=True).replace(json=json_body(body))
        request.context.idempotent = idempotent
        return await self.send(request)

    async def service_auth(self, aud: str, lxm: str | None = None, exp: int | None = None) -> str:
        """A token from the account's PDS that ``aud`` accepts as the account (for ``lxm`` only).

        ``exp`` (epoch seconds) must be in the future: within an hour with ``lxm``, within 60 s
        without (the PDS's default is 60 s).
        """
        if exp is not None:
            exp = int(exp)
            ahead = exp - time.time()
            if ahead <= 0 or ahead > (3600 if lxm else 60):
                raise InvalidInput(f"service token exp must be in the future and at most {3600 if lxm else 60} s "
                                   f"ahead{'' if lxm else ' without lxm'}; got {ahead:.0f} s")
        params = {"aud": aud, "lxm": lxm, "exp": exp}
        request = self.request("GET", "com.atproto.server.getServiceAuth",
                               params={k: v for k, v in params.items() if v is not None}, default_auth=True)
        [token] = (await self.send(request)).require("token")
        return str(token)
