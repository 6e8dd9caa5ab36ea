"""The bot example as a real process against dev-env (PDS + AppView): three accounts mention it
while a person's client, logged in as the bot's account, marks notifications seen; every mention
is answered exactly once, also across a ``kill -9`` and a restart.

The AppView's ``isRead`` is ``seenAt > indexedAt`` (and, before the account's first
``updateSeen``, every notification but the newest): a bot that trusts it misses mentions the
person has seen. The bot must track what it answered itself.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

from ..realnet.devenv import DevEnv
from ..realnet.pds import Account
from ..test_graph_and_bot import post_mention

ROOT = Path(__file__).resolve().parent.parent.parent


def replies_of(devenv: DevEnv, bot: Account) -> Counter[str]:
    """How many replies the bot's repo holds per parent post URI."""
    out = devenv.xrpc("com.atproto.repo.listRecords", params={
        "repo": bot.did, "collection": "app.bsky.feed.post", "limit": "100"})
    return Counter(r["value"]["reply"]["parent"]["uri"] for r in out["records"] if "reply" in r["value"])


def wait_until(what: str, predicate: object, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout} s; bot log:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


class BotProcess:
    """``python -m examples.bot`` polling the dev-env PDS, its database an SQLite file."""

    def __init__(self, devenv: DevEnv, bot: Account, tmp_path: Path, log: Path) -> None:
        self.log = log
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("BSKY_", "PYSKY_", "PG", "BOT_"))}
        self.env = {**keep, "BSKY_AUTH_USERNAME": bot.handle, "BSKY_AUTH_PASSWORD": bot.password,
                    "PYSKY_AUTH_HOST": devenv.pds_listen_url, "PYSKY_PLC_DIRECTORY": devenv.plc_url,
                    "BSKY_SQLITE_FILENAME": str(tmp_path / "bot.sqlite3"), "BOT_POLL_INTERVAL": "0.3",
                    "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
        self.process: subprocess.Popen[bytes] | None = None
        self.out: IO[bytes] | None = None

    def start(self) -> None:
        self.out = self.log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "examples.bot"], cwd=ROOT, env=self.env,
                                        stdout=self.out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.process is not None and self.out is not None
        assert self.process.poll() is None, f"the bot died:\n{self.log.read_text()[-3000:]}"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.out.close()

    def polls(self) -> int:
        return self.log.read_text().count("notifications: pass")


def test_every_mention_answered_once_while_a_person_marks_them_seen_across_a_kill(
        devenv: DevEnv, tmp_path: Path) -> None:
    bot, bot_token = devenv.new_account("b")
    fans = [devenv.new_account("f") for _ in range(3)]

    def person_marks_all_seen() -> None:  # the account's owner opens the app on their phone
        later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).isoformat(timespec="milliseconds")
        devenv.xrpc("app.bsky.notification.updateSeen", {"seenAt": later.replace("+00:00", "Z")}, token=bot_token)

    # mentions from three accounts, all seen by the person before the bot ever polls
    mentions = [post_mention(devenv, fan, token, bot, f"hello {i}") for i, (fan, token) in enumerate(fans)]
    devenv.process_all()
    person_marks_all_seen()
    log = tmp_path / "bot.log"
    process = BotProcess(devenv, bot, tmp_path, log)
    process.start()
    try:
        wait_until("the three seen mentions answered", lambda: set(replies_of(devenv, bot)) >= set(mentions), log)
        # more arrive at once, the person marks them seen at once, and the bot is killed meanwhile
        burst = [post_mention(devenv, fan, token, bot, f"burst {i}") for i, (fan, token) in enumerate(fans)]
        devenv.process_all()
        person_marks_all_seen()
        process.kill()
        later = [post_mention(devenv, fan, token, bot, "while the bot was down") for fan, token in fans[:2]]
        devenv.process_all()
        person_marks_all_seen()
        process.start()  # a restart on the same database
        everything = mentions + burst + later
        wait_until("every mention answered", lambda: set(replies_of(devenv, bot)) >= set(everything), log)
        polls = process.polls()
        wait_until("a few more polls", lambda: process.polls() >= polls + 5, log)  # room for a second answer
    finally:
        process.kill()
    replies = replies_of(devenv, bot)
    assert set(replies) == set(everything)
    assert all(count == 1 for count in replies.values()), f"answered more than once: {replies}"
