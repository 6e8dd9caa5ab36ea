"""The login cookie of the web glue against a real store (SQLite and PostgreSQL): bound to one
login (issue time + nonce stored hashed), with a lifetime, ended by a logout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pysky_async import AsyncBskyClient, InvalidInput, OAuth
from pysky_async._oauth._web import DEFAULT_MAX_AGE, LoginCookie

pytestmark = pytest.mark.anyio

SECRET = "s" * 32
ALICE = "did:plc:alice"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def bsky(database_url: str) -> AsyncIterator[AsyncBskyClient]:
    async with AsyncBskyClient(database_url=database_url, auto_migrate=True) as client:
        yield client


@pytest.fixture
def oauth(bsky: AsyncBskyClient) -> OAuth:
    return bsky.oauth


async def test_two_logins_get_different_values_and_a_logout_ends_both(oauth: OAuth) -> None:
    cookie = LoginCookie(SECRET)
    first, second = await cookie.issue(oauth, ALICE), await cookie.issue(oauth, ALICE)
    assert first != second and first.startswith(f"{ALICE}|")
    assert await cookie.check(oauth, first) == await cookie.check(oauth, second) == ALICE
    await oauth.logins.end(ALICE)
    assert await cookie.check(oauth, first) is None and await cookie.check(oauth, second) is None
    again = await cookie.issue(oauth, ALICE)
    assert await cookie.check(oauth, again) == ALICE
    assert await cookie.check(oauth, first) is None, "a new login does not bring back an old cookie"


async def test_tampered_and_foreign_cookies_are_refused(oauth: OAuth) -> None:
    cookie = LoginCookie(SECRET)
    value = await cookie.issue(oauth, ALICE)
    did, issued, nonce, mac = value.rsplit("|", 3)
    other_last = "B" if nonce.endswith("A") else "A"  # a nonce ending in "A" (1 in 64) stayed the same
    forged = [value.replace("alice", "mallory"), f"{did}|{int(issued) + 10**6}|{nonce}|{mac}",
              f"{did}|{issued}|{nonce[:-1]}{other_last}|{mac}", f"{did}|{issued}|{nonce}|{'0' * 64}", f"{did}|{mac}",
              ALICE, "", None, "a|b|c|d|e"]
    for bad in forged:
        assert await cookie.check(oauth, bad) is None, bad
    assert await LoginCookie("y" * 32).check(oauth, value) is None, "another app's secret"
    with pytest.raises(InvalidInput, match="32 bytes"):
        LoginCookie("short")
    with pytest.raises(InvalidInput, match="max_age"):
        LoginCookie(SECRET, max_age=0)
    assert SECRET not in repr(cookie) and cookie.max_age == DEFAULT_MAX_AGE == 30 * 24 * 3600


async def test_an_expired_cookie_is_refused_by_its_signed_time_and_by_the_store(bsky: AsyncBskyClient,
                                                                                oauth: OAuth) -> None:
    clock = Clock()
    cookie = LoginCookie(SECRET, max_age=3600, clock=clock)
    value = await cookie.issue(oauth, ALICE)
    clock.now += 3599
    assert await cookie.check(oauth, value) == ALICE
    clock.now += 1
    assert await cookie.check(oauth, value) is None, "older than max_age"
    lenient = LoginCookie(SECRET, max_age=7200, clock=clock)  # the app raised max_age later
    assert lenient.parse(value) is not None
    assert await lenient.check(oauth, value) is None, "the stored login expired when it was issued to"
    await cookie.issue(oauth, "did:plc:bob")  # a new login forgets the expired ones
    rows = await bsky.store.execute_sql("SELECT did FROM bsky_oauth_login")
    assert rows == [("did:plc:bob",)]


async def test_the_nonce_is_stored_hashed(bsky: AsyncBskyClient, oauth: OAuth) -> None:
    value = await LoginCookie(SECRET).issue(oauth, ALICE)
    nonce = value.rsplit("|", 3)[2]
    [(stored,)] = await bsky.store.execute_sql("SELECT nonce_hash FROM bsky_oauth_login")
    assert nonce not in stored and len(stored) == 64
