"""What the client's feature mixins (records, profiles...) may use of the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ._identity import IdentityResolver
    from ._request import XrpcRequest
    from ._response import XrpcResponse
    from ._session import SessionManager
    from ._storage.store import Store


class ClientBase:
    """Declares, for type checking, the AsyncBskyClient members that mixins call."""

    if TYPE_CHECKING:
        http: httpx.AsyncClient
        store: Store
        sessions: SessionManager
        identity: IdentityResolver

        async def get(self, endpoint: str, *, hostname: str | None = None,
                      params: Mapping[str, Any] | None = None, **kwargs: Any) -> XrpcResponse: ...

        async def post(self, endpoint: str, *, hostname: str | None = None,
                       params: Mapping[str, Any] | None = None, data: Any = None,
                       headers: Mapping[str, str] | None = None, **kwargs: Any) -> XrpcResponse: ...

        async def send(self, request: XrpcRequest) -> XrpcResponse: ...

        def _request(self, method: str, endpoint: str, hostname: str | None, params: dict[str, Any], *,
                     default_auth: bool = False) -> XrpcRequest: ...

    async def _repo(self, repo: str | None) -> str:
        """``repo``, or the logged-in account's DID."""
        if repo:
            return repo
        return (await self.sessions.current()).did

    async def _write(self, nsid: str, body: dict[str, Any], *, idempotent: bool) -> XrpcResponse:
        """POST a JSON body to the account's PDS; ``idempotent`` lets the retry layer repeat it."""
        request = self._request("POST", nsid, None, {}, default_auth=True).replace(json=body)
        request.context.idempotent = idempotent
        return await self.send(request)
