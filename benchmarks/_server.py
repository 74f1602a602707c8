"""A fast loopback HTTP/1.1 server for the benchmarks, answering from an omnisend emulator.

``omnisend.testing`` serves emulators with the standard library's ``ThreadingHTTPServer``: fine
for tests, but its per-request cost (a thread per connection, header parsing with the ``email``
package) would make the *server* the bottleneck and every client look equally fast. This
server keeps the same emulator — every request goes through ``Emulator.handle()``, so
de-duplication, balances and faults behave exactly as in the tests — behind a minimal asyncio
protocol: keep-alive, one write per response, no per-request threads.

It runs in its own process (``python benchmarks/_server.py smsapi``), so client and server
do not share a GIL; it prints ``listening <base_url>`` when ready. Both sides of every
comparison in the benchmarks talk to the same server.

``GET /__bench__/stats`` answers ``{"requests": n, "accepted": n, "cpu_ms": n}``: emulator
requests served so far (stats requests not counted), messages accepted, the server's CPU time.
The batching benchmark counts requests with it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from omnisend.testing import Emulator, Reply, Request, get_emulator

STATS_PATH = "/__bench__/stats"
#: The emulator keeps every request and message; a long benchmark would grow the server
#: process by hundreds of MB, so state older than this many messages is forgotten (only
#: de-duplication within one retried send matters here).
KEEP = 20_000


def make_emulator(provider: str) -> Emulator:
    """The provider's emulator with limits that never get in a benchmark's way."""
    emulator = get_emulator(provider)(balance=1e15, rate_limit=(1_000_000_000, 0.0))
    return emulator


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status: int, headers: dict[str, str], length: int, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length")
    lines.append(f"content-length: {length}")
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Stats:
    requests = 0
    forgotten = 0


class HttpProtocol(asyncio.Protocol):
    """One connection: parse requests as they arrive, answer each from the emulator."""

    def __init__(self, emulator: Emulator, stats: _Stats) -> None:
        self.emulator = emulator
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiting = False  # a delayed answer is pending: later requests wait for it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._process()

    def _process(self) -> None:
        while self.transport is not None and not self.waiting:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._send(Reply.text("chunked bodies are not supported here", 411), close=True)
                return
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            self._answer(method, target, headers, body, close)

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes, close: bool) -> None:
        parts = urlsplit(target)
        if parts.path == STATS_PATH:
            stats = {
                "requests": self.stats.requests,
                "accepted": self.stats.forgotten + self.emulator.accepted_count,
                "cpu_ms": round(time.process_time() * 1000),
            }
            self._send(Reply.json(stats), close)
            return
        self.stats.requests += 1
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            reply = self.emulator.handle(Request(method, parts.path, query, headers, body))
        except Exception as exc:  # noqa: BLE001 - an emulator bug must show as a 500, not a hang
            reply = Reply.text(f"emulator error: {type(exc).__name__}: {exc}", 500)
        self._forget()
        if reply.drop or reply.refuse:
            assert self.transport is not None
            self.transport.close()
            return
        if reply.delay:
            self.waiting = True
            asyncio.get_running_loop().call_later(reply.delay, self._send_later, reply, close)
            return
        self._send(reply, close)

    def _send_later(self, reply: Reply, close: bool) -> None:
        self.waiting = False
        self._send(reply, close)
        self._process()

    def _send(self, reply: Reply, close: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(_head(reply.status, reply.headers, len(reply.body), close) + reply.body)
        if close:
            self.transport.close()

    def _forget(self) -> None:
        emulator = self.emulator
        if len(emulator.requests) > 1000:
            emulator.requests.clear()
        if len(emulator.messages) > KEEP:
            with emulator.lock:
                self.stats.forgotten += len(emulator.messages)
                emulator.messages.clear()


async def serve(provider: str, host: str, port: int) -> None:
    emulator = make_emulator(provider)
    stats = _Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(emulator, stats), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"listening http://{bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("provider", nargs="?", default="smsapi")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.provider, args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
