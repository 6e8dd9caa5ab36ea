"""Post search (``bsky.search_posts``): ``app.bsky.feed.searchPosts`` paginated, with the
AppView's refusals explained.

What the AppView does (researched Dec 2026):

- Bluesky's public, unauthenticated host (``public.api.bsky.app``) answers searchPosts with 403
  since 2025: search needs a logged-in account, whose PDS forwards the call to the AppView.
- Bluesky's search backend (palomar, bluesky-social/indigo ``search/``) pages by offset: its
  cursor is a number, at most 10,000 deep ("can't paginate so deep"), and a page holds at most
  100 posts. To go further, narrow the query: ``until=`` the oldest post seen with
  ``sort="latest"``, or ``since=``/``author=``/``lang=``.
- The reference AppView without a search backend (dev-env, self-hosted) searches its own
  database with ``<time>__<cid>`` cursors; one from another service makes it fail (HTTP 500,
  a 502 through the PDS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._exceptions import APIError, AuthenticationRequired, BadRequest, Forbidden, InvalidInput, NotAuthenticated
from ._pagination import Paginator

if TYPE_CHECKING:
    from ._request import XrpcRequest
    from ._response import XrpcResponse

SEARCH_POSTS = "app.bsky.feed.searchPosts"
MAX_DEPTH = 10_000
"""How deep Bluesky's search backend pages (its cursor is an offset)."""
BLUESKY_PUBLIC_HOST = "https://public.api.bsky.app"

NARROW = ("narrow the query instead of paging further: sort='latest' with until= the indexedAt of the oldest "
          "post you have, or since=, author=, lang=")


def search_params(q: str, *, sort: Literal["top", "latest"] | None, since: dt.datetime | str | None,
                  until: dt.datetime | str | None, mentions: str | None, author: str | None, lang: str | None,
                  domain: str | None, url: str | None, tag: Sequence[str] | None, limit: int) -> dict[str, Any]:
    """searchPosts' query parameters, checked before any request."""
    if not isinstance(q, str) or not q.strip():
        raise InvalidInput("search_posts needs a non-empty query, e.g. bsky.search_posts('#python')")
    if not 1 <= limit <= 100:
        raise InvalidInput(f"limit is the page size, 1..100 for searchPosts, not {limit}; use max_items= to "
                           "stop after a number of posts")
    if sort not in (None, "top", "latest"):
        raise InvalidInput(f"sort is 'top' or 'latest', not {sort!r}")
    if isinstance(tag, str):
        raise InvalidInput(f"tag is a list of tags, e.g. tag=[{tag!r}] (without '#')")
    params: dict[str, Any] = {"q": q, "sort": sort, "since": _moment(since, "since"),
                              "until": _moment(until, "until"), "mentions": mentions, "author": author, "lang": lang,
                              "domain": domain, "url": url, "tag": list(tag) if tag else None, "limit": limit}
    return {name: value for name, value in params.items() if value is not None}


def _moment(value: dt.datetime | str | None, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone: datetime.now(timezone.utc) - timedelta(days=1)")
    return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def refuse_anonymous(can_authenticate: bool, public_host: str) -> None:
    """Bluesky's public host refuses searchPosts: say so before the call."""
    if not can_authenticate and public_host.rstrip("/") == BLUESKY_PUBLIC_HOST:
        raise NotAuthenticated(
            f"{SEARCH_POSTS} needs a logged-in account: {BLUESKY_PUBLIC_HOST} answers it with 403 since 2025. "
            "Give the client username= and password= (an app password; or BSKY_AUTH_USERNAME/BSKY_AUTH_PASSWORD) "
            "or an OAuth session: the call then goes through your PDS to the AppView")


def explain(exc: APIError, cursor: str | None, *, given: bool = False) -> APIError:
    """The AppView's refusal with what to do (the same class, the server's words kept); ``given``:
    ``cursor`` came from the caller, not from the page before."""
    advice = None
    if isinstance(exc, (Forbidden, AuthenticationRequired)):
        advice = ("searchPosts needs a logged-in account (Bluesky's public host refuses it since 2025): give the "
                  "client username= and password= (an app password) or an OAuth session")
    elif cursor is not None and ((cursor.isdigit() and int(cursor) >= MAX_DEPTH) or "paginate so deep" in str(exc)):
        advice = f"the search service pages at most {MAX_DEPTH:,} results deep (cursor {cursor}); {NARROW}"
    elif isinstance(exc, BadRequest) and "cursor" in (exc.message or "").lower():
        advice = (f"the cursor {cursor!r} is not one this AppView made (a cursor from another AppView or search "
                  "service, or a saved one from before it changed): start again without cursor= (restart=True)")
    elif given and cursor is not None and exc.status_code >= 500:
        advice = (f"if the cursor {cursor!r} came from another AppView or search service, this one cannot read it "
                  "(the reference AppView fails on a cursor it did not make): start again without cursor=")
    if advice is None:
        return exc
    message = f"{exc.message}. {advice}" if exc.message else advice
    return type(exc)(exc.status_code, exc.error, message, endpoint=exc.endpoint, response=exc.response,
                     log_id=exc.log_id, retry_after=exc.retry_after)


class SearchPaginator(Paginator):
    """``bsky.search_posts``' paginator: a refusal of the AppView raises its error with what to do."""

    async def _fetch(self, cursor: str | None, first: bool) -> tuple[XrpcRequest, XrpcResponse]:
        try:
            return await super()._fetch(cursor, first)
        except APIError as exc:
            sent = cursor if cursor is not None else self._start
            explained = explain(exc, sent, given=first and self._start is not None and sent == self._start)
            if explained is exc:
                raise
            raise explained from exc
