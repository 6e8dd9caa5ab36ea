"""A fault-injecting HTTP/1.1 proxy on loopback, for retry tests against the real PDS.

One request per client connection (it answers ``Connection: close``). For each request whose
path matches ``faulty``, with probability ``rate``, it injects one of these faults:

- ``drop``: close the connection before forwarding anything;
- ``bad_gateway``: answer 502 without forwarding;
- ``slow``: forward only after ``delay`` seconds (past the client's timeout) — the server
  then processes a request the client has given up on;
- ``close_after``: forward, let the server process it, then close without answering.

``counts`` records how many requests per path arrived and ``faults`` which faults were used.
"""

from __future__ import annotations

import asyncio
import collections
import random

FAULTS = ("drop", "bad_gateway", "slow", "close_after")


class FaultProxy:
    def __init__(self, upstream_port: int, *, rate: float = 0.2, delay: float = 1.5, seed: int = 1234,
                 faulty: tuple[str, ...] = ("/xrpc/com.atproto.repo.",)) -> None:
        self.upstream_port = upstream_port
        self.rate = rate
        self.delay = delay
        self.faulty = faulty
        self.random = random.Random(seed)
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1].split("?")[0]
            length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                           if line.lower().startswith("content-length:")), 0)
            body = await reader.readexactly(length) if length else b""
            self.counts[path] += 1
            fault = None
            if path.startswith(self.faulty) and self.random.random() < self.rate:
                fault = self.random.choice(FAULTS)
                self.faults[fault] += 1
            if fault == "drop":
                return
            if fault == "bad_gateway":
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n"
                             b"connection: close\r\n\r\nbad gateway")
                await writer.drain()
                return
            if fault == "slow":
                await asyncio.sleep(self.delay)
            response = await self._forward(lines, body)
            if fault == "close_after":
                return
            writer.write(response)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _forward(self, lines: list[str], body: bytes) -> bytes:
        headers = [line for line in lines[1:] if line and not line.lower().startswith(("connection:", "keep-alive:"))]
        request = "\r\n".join([lines[0], *headers, "connection: close", "", ""]).encode("latin-1") + body
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(request)
            await up_writer.drain()
            return await up_reader.read()  # until the server closes
        finally:
            up_writer.close()
