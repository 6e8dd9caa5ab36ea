"""A minimal, fast fake XRPC server for client benchmarks.

A raw ``asyncio.Protocol`` HTTP/1.1 keep-alive server: it splits requests on the blank line
after the headers (skipping a body by ``Content-Length``) and answers every
``GET /xrpc/com.atproto.repo.getRecord`` with the same ~600-byte JSON record, anything else
with a JSON 404. It does no routing, no header parsing beyond Content-Length and
``Connection: close``, and builds each response once at import, so that its own cost per
request stays far below the clients'.

Run: ``python benchmarks/fake_xrpc_server.py [--port 0] [--cpu N]``. It prints
``LISTENING <port>`` on stdout once it accepts connections, and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

GET_RECORD_PATH = b"/xrpc/com.atproto.repo.getRecord"

RECORD: dict[str, object] = {
    "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3kwbnkgzbbl2o",
    "cid": "bafyreib2rxk3rybloqtqwbo4mgfk3eaaqcxl6kp4jqmrjsh6a4jvffq7pq",
    "value": {
        "$type": "app.bsky.feed.post",
        "text": (
            "Benchmarks are a way of asking a question of a program and getting an answer "
            "you can repeat. This post is a fixed payload served by a fake XRPC server so "
            "that every client reads exactly the same bytes, over the same keep-alive "
            "connection, on the same core, and only the client's own cost per call is left "
            "to compare. It is about six hundred bytes long on purpose."
        ),
        "createdAt": "2026-11-23T09:32:00.000Z",
        "langs": ["en"],
    },
}


def _response(status: bytes, body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: keep-alive\r\n"
        b"\r\n"
    )
    return head + body


RECORD_BODY = json.dumps(RECORD, separators=(",", ":")).encode()
RECORD_RESPONSE = _response(b"200 OK", RECORD_BODY)
NOT_FOUND_RESPONSE = _response(
    b"404 Not Found", b'{"error":"MethodNotImplemented","message":"only getRecord is served"}'
)


class XrpcProtocol(asyncio.Protocol):
    """One keep-alive connection: answers each complete request in the buffer, in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        close = False
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end]
            body_length = _content_length(head)
            request_end = end + 4 + body_length
            if len(self.buffer) < request_end:
                break
            self.buffer = self.buffer[request_end:]
            out.append(_answer(head))
            close = close or b"\nconnection: close" in head.lower()
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
            if close:
                self.transport.close()


def _content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\ncontent-length:")
    if at < 0:
        return 0
    line_end = lower.find(b"\r", at + 1)
    value = lower[at + len(b"\ncontent-length:") : line_end if line_end >= 0 else None]
    return int(value.strip() or 0)


def _answer(head: bytes) -> bytes:
    request_line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
    parts = request_line.split(b" ")
    target = parts[1] if len(parts) > 1 else b""
    path = target.split(b"?", 1)[0]
    return RECORD_RESPONSE if path == GET_RECORD_PATH else NOT_FOUND_RESPONSE


def pin_to_cpu(cpu: int | None) -> None:
    """Pin this process to one CPU, where the OS supports it (Linux)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(XrpcProtocol, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound_port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound_port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
