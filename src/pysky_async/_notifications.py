"""Notifications for bots (``bsky.notifications``): each one handled exactly once, tracked in the
library's database, never by the server's ``isRead``.

The AppView's ``isRead`` means "``seenAt`` is after it" (and, before the account's first
``updateSeen``, every notification but the newest looks read): a person opening the app on the
bot's account, or any other client calling ``updateSeen``, hides notifications the bot never
saw. So a named consumer keeps its own record:

- a **watermark**: every notification listed at or before it was handled;
- the notifications handled within a **look-back** window behind it (the AppView lists a
  notification at its post's ``createdAt`` when that is earlier than its indexing time, so one
  can appear behind notifications listed before it).

A pass pages ``listNotifications`` back to ``watermark - lookback`` (everything on a first run,
or back to ``since``), yields the ones not handled yet oldest first, and records each one when the
caller says it is ``done()``. At the end of the pass the watermark moves to the newest listed
notification (or stays before the oldest one left undone) and ``updateSeen`` marks what was
handled as seen on the server (``seenAt`` only ever moves forward there).

Delivery is at least once: a process killed between an effect and ``done()`` sees that
notification again after a restart. Make the effect idempotent — a reply with
``client_unique_key=f"reply:{n.uri}"`` is posted once whatever happens.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidInput, InvalidResponse
from ._response import JsonObject

if TYPE_CHECKING:
    from ._account import Account
    from ._storage.store import Store
    from ._xrpc import Xrpc

logger = logging.getLogger("pysky_async")

LIST = "app.bsky.notification.listNotifications"
UPDATE_SEEN = "app.bsky.notification.updateSeen"
DEFAULT_LOOKBACK = dt.timedelta(hours=1)
"""How far behind its watermark a pass looks for notifications listed late."""

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: str) -> dt.datetime:
    """An atproto datetime (``2026-12-04T17:00:00.123Z``) as an aware UTC datetime."""
    text = _FRACTION.sub(lambda m: "." + (m[1] + "000000")[:6], value.replace("Z", "+00:00"), count=1)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidResponse(f"{LIST}: indexedAt {value!r} is not a datetime") from None
    if moment.tzinfo is None:
        raise InvalidResponse(f"{LIST}: indexedAt {value!r} has no time zone")
    return moment.astimezone(dt.timezone.utc)


def format_time(moment: dt.datetime) -> str:
    """``moment`` as an atproto datetime with milliseconds."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Notification:
    """One notification to handle (from ``bsky.notifications.unhandled``): the AppView's view of it,
    and ``await n.done()`` once it is handled (whatever handling meant, ignoring it included).

    Attributes:
        uri: the record that caused it (the mentioning post, the like...); the key it is handled by.
        reason: ``mention``, ``reply``, ``quote``, ``like``, ``follow``, ``repost``...
        author: the profile view of who caused it (``n.author.handle``, ``n.author.did``).
        record: the record itself (``n.record.text`` for a post).
        indexed_at: when the AppView lists it (UTC).
        view: the whole ``app.bsky.notification.listNotifications#notification`` object.
    """

    __slots__ = ("_done", "_pass", "author", "cid", "indexed_at", "reason", "record", "uri", "view")

    def __init__(self, view: JsonObject, indexed_at: dt.datetime, owner: UnhandledNotifications) -> None:
        self.view = view
        self.uri: str = view["uri"]
        self.cid: str = view.raw.get("cid", "")
        self.reason: str = view["reason"]
        self.author: JsonObject = view["author"]
        self.record: JsonObject = view["record"] if isinstance(view.raw.get("record"), dict) else JsonObject({})
        self.indexed_at = indexed_at
        self._pass = owner
        self._done = False

    @property
    def is_done(self) -> bool:
        """Whether ``done()`` was called."""
        return self._done

    async def done(self) -> None:
        """Record this notification as handled: it is never yielded again (also after a restart)."""
        if not self._done:
            await self._pass._record(self)
            self._done = True

    def __repr__(self) -> str:
        return f"Notification(reason={self.reason!r}, uri={self.uri!r}, indexed_at={format_time(self.indexed_at)})"


class UnhandledNotifications:
    """One pass over the notifications a named consumer has not handled: ``async for n in ...``
    (oldest first). See ``Notifications.unhandled``."""

    def __init__(self, xrpc: Xrpc, sessions: Account, store: Store, name: str, reasons: Sequence[str] | None,
                 lookback: dt.timedelta, since: dt.datetime | None, mark_seen: bool, page_size: int) -> None:
        self._xrpc = xrpc
        self._sessions = sessions
        self._store = store
        self.name = name
        self.reasons = tuple(reasons) if reasons is not None else None
        self.lookback = lookback
        self.since = since
        self.mark_seen = mark_seen
        self.page_size = page_size
        self._did = ""
        self.listed = 0
        """Notifications listed by this pass (handled before or not)."""
        self.handled = 0
        """Notifications this pass recorded as handled."""
        self._started = False

    def __aiter__(self) -> AsyncGenerator[Notification, None]:
        if self._started:
            raise InvalidInput("a pass over unhandled notifications runs once: call bsky.notifications.unhandled() "
                               "again for the next one")
        self._started = True
        return self._run()

    async def _run(self) -> AsyncGenerator[Notification, None]:
        from ._storage.notifications import NotificationRepository

        self._did = (await self._sessions.current()).did
        async with self._store.transaction() as db:
            watermark = await NotificationRepository(db).watermark(self._did, self.name)
        floor = watermark - self.lookback if watermark is not None else self.since
        listed = await self._list(floor)
        self.listed = len(listed)
        async with self._store.transaction() as db:
            handled = await NotificationRepository(db).handled(self._did, self.name, [n.uri for n in listed])
        todo: dict[str, Notification] = {}
        for notification in reversed(listed):  # oldest first
            if notification.uri not in handled and notification.uri not in todo:
                todo[notification.uri] = notification
        for notification in todo.values():
            yield notification
        undone = [n.indexed_at for n in todo.values() if not n.is_done]
        newest = max((n.indexed_at for n in listed), default=watermark)
        new_mark = min(undone) if undone else newest
        if new_mark is not None and new_mark != watermark:
            async with self._store.transaction() as db:
                await NotificationRepository(db).advance(self._did, self.name, new_mark, new_mark - self.lookback)
        done = [n.indexed_at for n in todo.values() if n.is_done]
        if self.mark_seen and done:  # "read" is seenAt > indexedAt: just past the newest handled one
            await self._xrpc.post(UPDATE_SEEN, data={"seenAt": format_time(max(done) + dt.timedelta(milliseconds=1))})
        logger.debug("notifications %s: %d listed, %d new, %d handled", self.name, len(listed), len(todo),
                     len(done))

    async def _list(self, floor: dt.datetime | None) -> list[Notification]:
        """Every notification listed at or after ``floor`` (all of them if None), newest first."""
        listed: list[Notification] = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        while True:
            params: dict[str, Any] = {"limit": self.page_size, "cursor": cursor}
            if self.reasons is not None:
                params["reasons"] = list(self.reasons)
            page = await self._xrpc.get(LIST, params={k: v for k, v in params.items() if v is not None})
            [items] = page.require("notifications")
            for raw in items:
                view = JsonObject(raw)
                indexed_at = parse_time(str(raw.get("indexedAt", "")))
                if floor is not None and indexed_at < floor:
                    return listed
                if self.reasons is None or raw.get("reason") in self.reasons:  # an AppView may ignore `reasons`
                    listed.append(Notification(view, indexed_at, self))
            cursor = page.raw.get("cursor")
            if not cursor or not items or cursor in seen_cursors:
                return listed
            seen_cursors.add(cursor)

    async def _record(self, notification: Notification) -> None:
        from ._storage.notifications import NotificationRepository

        async with self._store.transaction() as db:
            await NotificationRepository(db).add(self._did, self.name, notification.uri, notification.reason,
                                                 notification.indexed_at)
        self.handled += 1


class Notifications:
    """The account's notifications (``bsky.notifications``), each handled once by a named consumer.

    ``async for n in bsky.notifications.unhandled(name="bot", reasons=["mention"]): ...; await n.done()``
    or ``await bsky.notifications.process(handler, name="bot", reasons=["mention"])``.

    Args:
        xrpc: how calls are made. sessions: the account. store: where handled notifications are kept.
    """

    def __init__(self, xrpc: Xrpc, sessions: Account, store: Store) -> None:
        self._xrpc = xrpc
        self._sessions = sessions
        self._store = store

    def unhandled(self, name: str = "default", *, reasons: Sequence[str] | None = None,
                  lookback: dt.timedelta = DEFAULT_LOOKBACK, since: dt.datetime | None = None,
                  mark_seen: bool = True, page_size: int = 50) -> UnhandledNotifications:
        """One pass over the notifications ``name`` has not handled yet, oldest first; call
        ``await n.done()`` on each one handled. One not marked done comes back on the next pass.

        Args:
            name: the consumer; each name keeps its own record (one process per name at a time).
            reasons: only these (``["mention", "reply"]``); None: every reason.
            lookback: how far behind the watermark to look for notifications listed late.
            since: on a first run, ignore notifications listed before this (None: every one listed).
            mark_seen: call ``updateSeen`` after the pass for the notifications handled.
            page_size: notifications per ``listNotifications`` page (1..100).
        """
        if isinstance(reasons, str):
            raise InvalidInput(f"reasons is a list of reasons, e.g. reasons=[{reasons!r}], not a string")
        if not 1 <= page_size <= 100:
            raise InvalidInput(f"page_size must be 1..100 (listNotifications' limit), not {page_size}")
        if lookback < dt.timedelta(0):
            raise InvalidInput("lookback must not be negative")
        if since is not None and since.tzinfo is None:
            raise InvalidInput("since needs a time zone: datetime.now(timezone.utc) - timedelta(days=1)")
        if not name or len(name) > 255:
            raise InvalidInput("name must be 1..255 characters")
        return UnhandledNotifications(self._xrpc, self._sessions, self._store, name, reasons, lookback, since,
                                      mark_seen, page_size)

    async def process(self, handler: Callable[[Notification], Awaitable[object]], name: str = "default", *,
                      reasons: Sequence[str] | None = None, lookback: dt.timedelta = DEFAULT_LOOKBACK,
                      since: dt.datetime | None = None, mark_seen: bool = True) -> int:
        """Call ``handler`` on each notification ``name`` has not handled, oldest first, and record
        each one as handled when the handler returns. An exception from the handler stops the pass
        and propagates: that notification (and the ones after it) come back on the next pass.
        Returns how many were handled. The arguments are ``unhandled``'s."""
        batch = self.unhandled(name, reasons=reasons, lookback=lookback, since=since, mark_seen=mark_seen)
        async with aclosing(batch.__aiter__()) as notifications:
            async for notification in notifications:
                await handler(notification)
                await notification.done()
        return batch.handled

    async def forget(self, name: str = "default") -> None:
        """Forget what ``name`` handled: its next pass is a first run (``since`` applies again)."""
        from ._storage.notifications import NotificationRepository

        did = (await self._sessions.current()).did
        async with self._store.transaction() as db:
            await NotificationRepository(db).forget(did, name)
