"""The account a client acts as: what the client, its session middleware and its feature
objects ask of it. An app-password login (``SessionManager``) and an OAuth user
(``OAuthAccount``) both implement it; neither is a kind of the other."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._storage.models import SessionRow


@dataclass(frozen=True)
class Session:
    """A logged-in session: what ``export_session()`` returns and ``login_with_session`` takes."""

    did: str
    handle: str
    pds_endpoint: str
    access_jwt: str
    refresh_jwt: str

    def __repr__(self) -> str:  # never show the tokens
        return f"Session(did={self.did!r}, handle={self.handle!r}, pds_endpoint={self.pds_endpoint!r})"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: SessionRow) -> Session:
        return cls(row.did, row.handle, row.pds_endpoint, row.access_jwt, row.refresh_jwt)


class Account(Protocol):
    """One account: its session (loaded, logged in or refreshed on demand) and its server."""

    @property
    def session(self) -> Session | None:
        """The session in use, or None before the first authenticated call."""
        ...

    @property
    def identifier(self) -> str | None:
        """Who the account is as configured (a handle, email or DID), for messages and reprs."""
        ...

    @property
    def pds_endpoint(self) -> str | None:
        """The account's PDS, once known."""
        ...

    @property
    def can_authenticate(self) -> bool:
        """Whether authenticated calls can be made (credentials or a session)."""
        ...

    async def current(self) -> Session:
        """The session to use now, logged in or refreshed first if needed."""
        ...

    async def refresh(self, stale_access_token: str) -> Session:
        """Replace the session whose access token the server refused, once (single-flight)."""
        ...

    async def login(self) -> Session:
        """Log in (or load the stored session) now; forgets an earlier refused password."""
        ...

    async def logout(self) -> None:
        """End the session on the server and forget it."""
        ...

    async def adopt(self, session: Session) -> None:
        """Use a session obtained elsewhere (``login_with_session``)."""
        ...
