"""A TCP relay in front of the real PDS that can cut, refuse or silence connections (a PDS outage)."""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._muted: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Close every open connection (both sides)."""
        for writer in list(self._writers):
            writer.close()

    def mute(self) -> None:
        """Open connections stay up but nothing more reaches the client (a silent connection)."""
        self._muted.update(self._writers)

    async def outage(self, seconds: float) -> None:
        """Refuse new connections and cut the open ones for ``seconds`` (like a restarting server)."""
        await self.stop()
        await asyncio.sleep(seconds)
        await self.start()

    async def stop(self) -> None:
        """Stop listening and close every connection (their pumps end on their own)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.cut()
        if server is not None:
            await server.wait_closed()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pump(reader, up_writer, None), self._pump(up_reader, writer, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)
                self._muted.discard(w)
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    client: asyncio.StreamWriter | None) -> None:
        try:
            while data := await reader.read(65536):
                if client is not None and client in self._muted:
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(OSError):
                writer.close()
