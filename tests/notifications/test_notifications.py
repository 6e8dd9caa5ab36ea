"""``bsky.notifications``: each notification handled once, tracked in the library's database
(SQLite and PostgreSQL), against the real AppView of dev-env."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from examples import bot

from pysky_async import AsyncBskyClient, InvalidInput, NetworkError, Notification
from pysky_async._storage.notifications import NotificationRepository
from pysky_async._storage.store import Store

from ..realnet.devenv import DevEnv
from ..realnet.pds import Account
from ..test_graph_and_bot import client

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)


def mention(devenv: DevEnv, author: Account, token: str, bot_account: Account, text: str,
            created_at: dt.datetime | None = None) -> str:
    """``author`` posts ``text @bot`` (at ``created_at``, default now); returns its URI."""
    text = f"{text} @{bot_account.handle}"
    start = text.encode().index(b"@")
    when = (created_at or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="milliseconds")
    out = devenv.xrpc("com.atproto.repo.createRecord", {
        "repo": author.did, "collection": "app.bsky.feed.post",
        "record": {"text": text, "createdAt": when.replace("+00:00", "Z"), "facets": [{
            "index": {"byteStart": start, "byteEnd": len(text.encode())},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": bot_account.did}]}]}}, token=token)
    return str(out["uri"])


def mark_all_seen(devenv: DevEnv, token: str) -> None:
    """What a person's client does when they open the app on the bot's account."""
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).isoformat(timespec="milliseconds")
    devenv.xrpc("app.bsky.notification.updateSeen", {"seenAt": later.replace("+00:00", "Z")}, token=token)


async def uris(bsky: AsyncBskyClient, name: str = "t", **options: object) -> list[str]:
    """One pass: the URIs yielded, each marked done."""
    out = []
    async for n in bsky.notifications.unhandled(name, reasons=["mention"], **options):  # type: ignore[arg-type]
        out.append(n.uri)
        await n.done()
    return out


async def test_repository_records_once_advances_and_forgets(store: Store) -> None:
    async with store.transaction() as db:
        repo = NotificationRepository(db)
        assert await repo.watermark("did:plc:a", "bot") is None
        await repo.add("did:plc:a", "bot", "at://x/p/1", "mention", T0)
        await repo.add("did:plc:a", "bot", "at://x/p/1", "mention", T0)  # a second time: a no-op
        await repo.add("did:plc:a", "bot", "at://x/p/2", "reply", T0 - dt.timedelta(hours=2))
        await repo.add("did:plc:a", "other", "at://x/p/3", "mention", T0)
    async with store.transaction() as db:
        repo = NotificationRepository(db)
        assert await repo.handled("did:plc:a", "bot", ["at://x/p/1", "at://x/p/2", "at://x/p/3"]) == {
            "at://x/p/1", "at://x/p/2"}
        await repo.advance("did:plc:a", "bot", T0, T0 - dt.timedelta(hours=1))
        await repo.advance("did:plc:a", "bot", T0 + dt.timedelta(seconds=1), T0 - dt.timedelta(hours=1))
    async with store.transaction() as db:
        repo = NotificationRepository(db)
        assert await repo.watermark("did:plc:a", "bot") == T0 + dt.timedelta(seconds=1)
        assert await repo.handled("did:plc:a", "bot", ["at://x/p/1", "at://x/p/2"]) == {"at://x/p/1"}, "pruned"
        await repo.forget("did:plc:a", "bot")
    async with store.transaction() as db:
        repo = NotificationRepository(db)
        assert await repo.watermark("did:plc:a", "bot") is None
        assert await repo.handled("did:plc:a", "other", ["at://x/p/3"]) == {"at://x/p/3"}


async def test_bad_arguments_say_what_to_do() -> None:
    async with AsyncBskyClient(database_url="sqlite+aiosqlite://") as bsky:
        with pytest.raises(InvalidInput, match=r"reasons=\['mention'\]"):
            bsky.notifications.unhandled(reasons="mention")
        with pytest.raises(InvalidInput, match=r"1\.\.100"):
            bsky.notifications.unhandled(page_size=500)
        with pytest.raises(InvalidInput, match="time zone"):
            bsky.notifications.unhandled(since=dt.datetime(2026, 1, 1))


async def test_seen_by_a_person_still_handled_once_and_undone_ones_come_back(
        devenv: DevEnv, database_url: str) -> None:
    bot_account, bot_token = devenv.new_account("b")
    fans = [devenv.new_account("f") for _ in range(3)]
    first = [mention(devenv, fan, token, bot_account, f"one {i}") for i, (fan, token) in enumerate(fans)]
    devenv.process_all()
    mark_all_seen(devenv, bot_token)
    async with client(devenv, bot_account, database_url) as bsky:
        listed = await bsky.paginate("app.bsky.notification.listNotifications", limit=50).collect()
        assert all(n.isRead for n in listed), "the server calls them read: a bot trusting isRead answers none"
        batch = bsky.notifications.unhandled("t", reasons=["mention"])
        yielded: list[Notification] = [n async for n in batch]
        assert [n.uri for n in yielded] == first, "oldest first"
        assert yielded[0].reason == "mention" and yielded[0].author.did == fans[0][0].did
        assert "one 0" in yielded[0].record.text
        for n in yielded[:2]:
            await n.done()  # the third is not handled (the handler skipped it)
        assert batch.handled == 2
        assert await uris(bsky) == first[2:], "the one left undone comes back"
        assert await uris(bsky) == []
        second = [mention(devenv, fan, token, bot_account, f"two {i}") for i, (fan, token) in enumerate(fans)]
        devenv.process_all()
        mark_all_seen(devenv, bot_token)
        assert await uris(bsky) == second
        assert await uris(bsky, "another") == first + second, "each name keeps its own record"
    async with client(devenv, bot_account, database_url) as bsky:  # a restart on the same database
        assert await uris(bsky) == []
        await bsky.notifications.forget("t")
        assert await uris(bsky) == first + second


async def test_marks_seen_after_handling_without_moving_seen_back(devenv: DevEnv, tmp_path: Path) -> None:
    bot_account, _ = devenv.new_account("b")
    fan, fan_token = devenv.new_account("f")
    uri = mention(devenv, fan, fan_token, bot_account, "hi")
    devenv.process_all()
    async with client(devenv, bot_account, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        assert await uris(bsky, mark_seen=False) == [uri]
        page = await bsky.get("app.bsky.notification.listNotifications")
        assert not page.notifications[0].isRead, "mark_seen=False: not marked"
        mention(devenv, fan, fan_token, bot_account, "again")
        devenv.process_all()
        assert len(await uris(bsky)) == 1
        page = await bsky.get("app.bsky.notification.listNotifications")
        assert all(n.isRead for n in page.notifications) and page.seenAt > page.notifications[0].indexedAt


async def test_a_mention_listed_late_behind_the_watermark_is_still_handled(devenv: DevEnv, tmp_path: Path) -> None:
    """The AppView lists a post at its ``createdAt`` when that is earlier than its indexing: a
    mention can land behind notifications handled before it. The look-back window finds it."""
    bot_account, _ = devenv.new_account("b")
    fan, fan_token = devenv.new_account("f")
    database_url = f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3"
    now = mention(devenv, fan, fan_token, bot_account, "now")
    devenv.process_all()
    async with client(devenv, bot_account, database_url) as bsky:
        assert await uris(bsky) == [now]
        assert await uris(bsky, "blind", lookback=dt.timedelta(0)) == [now]
        late = mention(devenv, fan, fan_token, bot_account, "from a slow clock",
                       created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
        devenv.process_all()
        listed = await bsky.paginate("app.bsky.notification.listNotifications", limit=50).collect()
        assert [n.uri for n in listed] == [now, late], "listed behind the one handled before"
        assert await uris(bsky) == [late]
        assert await uris(bsky, "blind", lookback=dt.timedelta(0)) == [], "without a look-back it is lost"


async def test_many_at_once_all_handled_oldest_first_across_pages(devenv: DevEnv, tmp_path: Path) -> None:
    bot_account, _ = devenv.new_account("b")
    fans = [devenv.new_account("f") for _ in range(3)]
    posted = [mention(devenv, *fans[i % 3], bot_account, f"burst {i}") for i in range(25)]
    devenv.process_all()
    async with client(devenv, bot_account, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3") as bsky:
        out = []
        async for n in bsky.notifications.unhandled("t", reasons=["mention"], page_size=7):
            out.append(n.uri)
            await n.done()
        assert out == posted


async def test_a_crash_between_the_reply_and_the_bookkeeping_answers_once(devenv: DevEnv, tmp_path: Path) -> None:
    bot_account, _ = devenv.new_account("b")
    fan, fan_token = devenv.new_account("f")
    database_url = f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3"
    uri = mention(devenv, fan, fan_token, bot_account, "hi")
    devenv.process_all()

    async def reply_then_die(n: Notification) -> None:
        await bot.answer(bsky, n.uri, n.author.handle)
        raise NetworkError("killed after the reply, before done()")

    async with client(devenv, bot_account, database_url) as bsky:
        with pytest.raises(NetworkError, match="killed"):
            await bsky.notifications.process(reply_then_die, bot.NAME, reasons=["mention"])
    async with client(devenv, bot_account, database_url) as bsky:
        assert await bot.poll_once(bsky) == 1, "handled again after the restart..."
        assert await bot.poll_once(bsky) == 0
        posts = await bsky.list_records("app.bsky.feed.post").collect()
    assert [p.value.reply.parent.uri for p in posts] == [uri], "...but answered once (client_unique_key)"
