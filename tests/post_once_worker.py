"""A process that posts with a ``client_unique_key``, for the kill -9 test of ``create_post``.

    python -m tests.post_once_worker <json config>

With ``"kill_after_create": true`` a middleware SIGKILLs this process the moment the PDS has
answered the ``createRecord`` (the post exists on the server; nothing after it in this process
runs): a crash between the server's accept and the client's own record of it. Otherwise it posts
and prints ``posted <uri>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from pysky_async import AsyncBskyClient, Post
from pysky_async._middleware import Handler
from pysky_async._request import XrpcRequest
from pysky_async._response import XrpcResponse


class KillAfterCreate:
    """SIGKILLs the process once a createRecord got its 200."""

    async def __call__(self, request: XrpcRequest, call_next: Handler) -> XrpcResponse:
        response = await call_next(request)
        if request.nsid == "com.atproto.repo.createRecord" and response.status_code == 200:
            os.kill(os.getpid(), signal.SIGKILL)
        return response


async def main(config: dict[str, str | bool]) -> None:
    middleware = [KillAfterCreate()] if config.get("kill_after_create") else []
    async with AsyncBskyClient(username=str(config["username"]), password=str(config["password"]),
                               auth_host=str(config["auth_host"]), plc_directory=str(config["plc_directory"]),
                               database_url=str(config["database_url"]), auto_migrate=True,
                               middleware=middleware) as bsky:
        ref = await bsky.create_post(post=Post(str(config["text"]), client_unique_key=str(config["key"])))
        print("posted", ref.uri, flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
