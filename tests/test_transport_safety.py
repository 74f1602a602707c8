"""Issue 12, the transport half: bounded answers, the deadline, lifecycle, redirects, no raw errors,
no request on chained causes. Hostile servers are raw sockets on 127.0.0.1 (drips, endless chunked
bodies, gzip bombs, odd reason phrases); well-behaved ones are the emulators over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from omnisend import (
    AsyncClient,
    Client,
    ClientClosed,
    ConfigurationError,
    DeliveryUnknown,
    Message,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    TransportError,
)
from omnisend.providers import Smsapi
from omnisend.testing import EmulatorServer, SmsapiEmulator
from omnisend.transports import aiohttp_client

TOKEN = "tok-SECRET-transport-0123456789"
MESSAGE = Message(to="+48500100200", text="Your code is 1234", sender="Shop")

Handler = Callable[["Conn"], None]


# -- a raw HTTP server: answers each request with whatever the test's handler writes -----------------------------------


class Conn:
    """One accepted connection, its request already read; the handler writes the answer."""

    def __init__(self, sock: socket.socket, server: RawServer, head: bytes, body: bytes) -> None:
        self.sock = sock
        self.server = server
        self.head = head
        self.body = body

    def send(self, data: bytes) -> bool:
        """Write ``data``; False once the client has gone (or the server is closing)."""
        if self.server.closing.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def drip(self, data: bytes, every: float) -> None:
        """Write ``data`` one byte at a time, ``every`` seconds apart, until done or the client leaves."""
        for i in range(len(data)):
            if not self.send(data[i : i + 1]) or self.server.closing.wait(every):
                return


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.closing = threading.Event()
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.threads: list[threading.Thread] = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
                    0,
                )
                while len(body) < length:
                    body += sock.recv(65536)
            except OSError:
                return
            self.requests.append(head + b"\r\n\r\n" + body)  # each distinct: the bodies differ
            self.handler(Conn(sock, self, head, body))

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def raw() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def head(status: str = "200 OK", **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def smsapi_answer(conn: Conn) -> bytes:
    """The body the SMSAPI emulator would answer to this request (a real success)."""
    method, target, _ = conn.head.split(b"\r\n")[0].decode().split(" ")
    with httpx.Client(transport=SmsapiEmulator(credentials=(TOKEN,)).transport(), base_url="http://x") as http:
        answer = http.request(method, target, content=conn.body, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"})
    return answer.content


def endless_chunks(conn: Conn) -> None:
    conn.send(head(transfer_encoding="chunked", content_type="application/json"))
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    while conn.send(chunk):
        pass


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """200 MB of spaces, gzipped to about 200 KB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    return b"".join(packer.compress(block) for _ in range(200)) + packer.flush()


def bomb(payload: bytes) -> Handler:
    def answer(conn: Conn) -> None:
        conn.send(head(content_type="application/json", content_encoding="gzip", content_length=len(payload)) + payload)

    return answer


def provider(server: RawServer | EmulatorServer) -> Smsapi:
    return Smsapi(token=TOKEN, base_url=server.url if isinstance(server, RawServer) else server.base_url)


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    tracemalloc.start()
    found: list[int] = []
    try:
        yield found
    finally:
        found.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


async def async_send(server: RawServer | EmulatorServer, transport: str, **kwargs: Any) -> Any:
    """``AsyncClient.send`` on httpx's own async transport or on the aiohttp one."""
    options = {"retry": None, **kwargs.pop("client", {})}
    if transport == "aiohttp":
        async with aiohttp_client() as http, AsyncClient(provider(server), http_client=http, **options) as client:
            return await client.send(MESSAGE, **kwargs)
    async with AsyncClient(provider(server), **options) as client:
        return await client.send(MESSAGE, **kwargs)


TRANSPORTS = ["httpx", "aiohttp"]


# -- 4. bounded answers ---------------------------------------------------------------------------------------------


def test_an_endless_chunked_answer_stops_at_the_cap_with_delivery_unknown(raw) -> None:
    server = raw(endless_chunks)
    start = time.monotonic()
    with peak_memory() as peak, Client(provider(server), retry=None) as client:
        with pytest.raises(DeliveryUnknown, match="larger than max_response_bytes=1048576") as info:
            client.send(MESSAGE)
    assert time.monotonic() - start < 5 and peak[0] < 8 << 20
    assert info.value.accepted is None and info.value.http_status == 200 and info.value.idempotency_key


def test_a_gzip_bomb_is_refused_after_at_most_the_cap_in_memory(raw, gzip_bomb: bytes) -> None:
    server = raw(bomb(gzip_bomb))
    start = time.monotonic()
    with peak_memory() as peak, Client(provider(server), retry=None) as client:
        with pytest.raises(DeliveryUnknown, match="larger than max_response_bytes") as info:
            client.send(MESSAGE)
    assert time.monotonic() - start < 5 and peak[0] < 8 << 20  # the bomb inflates to 200 MB
    assert info.value.accepted is None


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_endless_and_gzip_bomb_answers_are_bounded(raw, gzip_bomb: bytes, transport: str) -> None:
    for handler in (endless_chunks, bomb(gzip_bomb)):
        server = raw(handler)
        start = time.monotonic()
        with peak_memory() as peak, pytest.raises(DeliveryUnknown, match="larger than max_response_bytes"):
            await async_send(server, transport)
        assert time.monotonic() - start < 5 and peak[0] < 8 << 20


def test_the_cap_is_configurable_and_a_lookup_past_it_is_a_transport_error(raw) -> None:
    big = b'{"count":1,"list":[' + b" " * 5000 + b"]}"
    server = raw(lambda conn: conn.send(head(content_type="application/json", content_length=len(big)) + big))
    with Client(provider(server), retry=None, max_response_bytes=4096) as client:
        with pytest.raises(TransportError, match="max_response_bytes=4096") as info:
            client.get_status("123")
    assert type(info.value) is TransportError  # a lookup sends nothing: not DeliveryUnknown
    assert info.value.accepted is None and info.value.retryable is True


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "1"])
def test_a_bad_cap_is_a_configuration_error(size: object) -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        Client(Smsapi(token=TOKEN), max_response_bytes=size)  # type: ignore[arg-type]


def test_answers_within_the_cap_are_read_whole_gzip_included(raw) -> None:
    def gzipped(conn: Conn) -> None:
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        payload = packer.compress(smsapi_answer(conn)) + packer.flush()
        conn.send(head(content_type="application/json", content_encoding="gzip", content_length=len(payload)) + payload)

    server = raw(gzipped)
    with Client(provider(server), retry=None) as client:
        result = client.send(MESSAGE)
    assert result.message_id and result.attempts == 1


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib-wrapped", "raw"])
def test_deflate_answers_in_either_framing_are_read(raw, wbits: int) -> None:
    def deflated(conn: Conn) -> None:
        packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
        payload = packer.compress(smsapi_answer(conn)) + packer.flush()
        conn.send(head(content_type="application/json", content_encoding="deflate", content_length=len(payload)) + payload)

    server = raw(deflated)
    with Client(provider(server), retry=None) as client:
        assert client.send(MESSAGE).message_id


def test_an_answer_announced_larger_than_the_cap_is_refused_unread(raw) -> None:
    server = raw(lambda conn: conn.send(head(content_type="application/json", content_length=10 << 30)))  # 10 GB, never sent
    start = time.monotonic()
    with Client(provider(server), retry=None) as client, pytest.raises(DeliveryUnknown, match="max_response_bytes"):
        client.send(MESSAGE)
    assert time.monotonic() - start < 2


def test_an_answer_of_exactly_the_cap_is_read_one_byte_more_is_not(raw) -> None:
    def padded(conn: Conn) -> None:  # a chunked answer of exactly 4096 bytes (JSON allows trailing spaces)
        body = smsapi_answer(conn).ljust(4096)
        conn.send(head(content_type="application/json", transfer_encoding="chunked") + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    server = raw(padded)
    with Client(provider(server), retry=None, max_response_bytes=4096) as client:
        assert client.send(MESSAGE).message_id
    with Client(provider(server), retry=None, max_response_bytes=4095) as client, pytest.raises(DeliveryUnknown):
        client.send(MESSAGE)


# -- 5. the timeout is a deadline for the whole call -------------------------------------------------------------------


def drip_body(conn: Conn) -> None:
    body = smsapi_answer(conn)
    conn.send(head(content_type="application/json", content_length=len(body)))
    conn.drip(body, 0.25)


def drip_headers(conn: Conn) -> None:
    conn.drip(head(content_type="application/json", content_length=2) + b"{}", 0.25)


@pytest.mark.parametrize("handler", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_dripping_server_cannot_hold_a_send_past_its_timeout(raw, handler: Handler) -> None:
    server = raw(handler)
    start = time.monotonic()
    with Client(provider(server)) as client:  # retries on: the deadline bounds them too
        with pytest.raises(DeliveryUnknown, match=r"timeout=1\.5s") as info:
            client.send(MESSAGE, timeout=1.5)
    assert time.monotonic() - start < 2.2
    assert info.value.accepted is None


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("handler", [drip_body, drip_headers], ids=["body", "headers"])
async def test_async_a_dripping_server_cannot_hold_a_send_past_its_timeout(raw, handler: Handler, transport: str) -> None:
    server = raw(handler)
    start = time.monotonic()
    with pytest.raises(DeliveryUnknown) as info:
        await async_send(server, transport, timeout=1.5, client={"retry": RetryPolicy()})
    assert time.monotonic() - start < 2.2
    assert info.value.accepted is None


def test_the_client_default_timeout_is_a_deadline_too(raw) -> None:
    server = raw(drip_body)
    start = time.monotonic()
    with Client(provider(server), timeout=1.0) as client, pytest.raises(DeliveryUnknown, match=r"timeout=1s"):
        client.send(MESSAGE)
    assert time.monotonic() - start < 1.7


def test_retry_waits_count_against_the_deadline(raw) -> None:
    busy = b'{"message":"busy"}'
    server = raw(lambda conn: conn.send(head("503 Service Unavailable", content_type="application/json", content_length=len(busy)) + busy))
    start = time.monotonic()
    policy = RetryPolicy(max_attempts=5, initial_wait=0.4, jitter=False)
    with Client(provider(server), retry=policy) as client, pytest.raises(ServiceUnavailable) as info:
        client.send(MESSAGE, timeout=1.0)  # waits 0.4, then 0.8: that one would end past the deadline
    assert time.monotonic() - start < 1.0
    assert info.value.attempts == 2 and len(server.requests) == 2


def test_a_retry_after_longer_than_the_time_left_is_not_waited_for(raw) -> None:
    slow_down = b'{"message":"slow down"}'
    server = raw(
        lambda conn: conn.send(
            head("429 Too Many Requests", retry_after=5, content_type="application/json", content_length=len(slow_down))
            + slow_down
        )
    )
    start = time.monotonic()
    with Client(provider(server)) as client, pytest.raises(RateLimited) as info:
        client.send(MESSAGE, timeout=2.0)
    assert time.monotonic() - start < 1.0 and len(server.requests) == 1
    assert info.value.retry_after == 5


# -- 7. lifecycle ---------------------------------------------------------------------------------------------------------


def test_a_send_on_a_closed_client_is_a_typed_error_and_sends_nothing(serve) -> None:
    emulator = SmsapiEmulator(credentials=(TOKEN,))
    server: EmulatorServer = serve(emulator)
    client = Client(provider(server))
    client.close()
    with pytest.raises(ClientClosed, match="closed") as info:
        client.send(MESSAGE)
    with pytest.raises(ClientClosed):
        client.get_status("1")
    with pytest.raises(ClientClosed):
        list(client.send_many([MESSAGE]))
    assert isinstance(info.value, ConfigurationError) and info.value.accepted is False and client.closed
    http = httpx.Client()
    theirs = Client(provider(server), http_client=http)
    http.close()  # the caller closed the http client it passed in
    with pytest.raises(ClientClosed):
        theirs.send(MESSAGE)
    assert emulator.requests == []


@pytest.mark.anyio
async def test_a_send_on_a_closed_async_client_is_a_typed_error_and_sends_nothing(serve) -> None:
    emulator = SmsapiEmulator(credentials=(TOKEN,))
    server: EmulatorServer = serve(emulator)
    async with AsyncClient(provider(server)) as client:
        pass
    with pytest.raises(ClientClosed, match="closed"):
        await client.send(MESSAGE)
    with pytest.raises(ClientClosed):
        client.send_many([MESSAGE])
    assert emulator.requests == []


def test_an_async_client_works_across_asyncio_runs(serve) -> None:
    emulator = SmsapiEmulator(credentials=(TOKEN,))
    server: EmulatorServer = serve(emulator)
    client = AsyncClient(provider(server))
    first = asyncio.run(client.send(MESSAGE))
    second = asyncio.run(client.send(MESSAGE))  # a new loop: omnisend's own pool is renewed
    asyncio.run(client.aclose())
    assert first.message_id != second.message_id and emulator.accepted_count == 2


def test_an_async_client_with_a_callers_http_client_refuses_a_second_loop_before_sending(serve) -> None:
    emulator = SmsapiEmulator(credentials=(TOKEN,))
    server: EmulatorServer = serve(emulator)
    http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))  # no socket outlives a loop
    client = AsyncClient(provider(server), http_client=http)
    asyncio.run(client.send(MESSAGE))
    with pytest.raises(ClientClosed, match="another event loop"):
        asyncio.run(client.send(MESSAGE))
    asyncio.run(http.aclose())
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("leave", ["break", "exception", "keyboard_interrupt"])
def test_a_sync_send_many_left_early_stops_retrying_and_starts_nothing_new(raw, leave: str) -> None:
    """20 messages, 4 at a time: the first succeeds at once, the others get a retryable 503 after
    0.2 s and would be retried 5 s later. The consumer leaves on the first outcome."""
    busy = b'{"message":"busy"}'

    def answer(conn: Conn) -> None:
        if b"message=ok" in conn.body:
            body = smsapi_answer(conn)
            conn.send(head(content_type="application/json", content_length=len(body)) + body)
        else:
            conn.server.closing.wait(0.2)  # still in flight when the consumer leaves
            conn.send(head("503 Service Unavailable", content_type="application/json", content_length=len(busy)) + busy)

    server = raw(answer)
    policy = RetryPolicy(max_attempts=4, initial_wait=5, jitter=False)
    messages = [Message(to=f"+4850010{i:04d}", text="ok" if i == 0 else f"busy {i}") for i in range(20)]
    left = time.monotonic()
    with Client(provider(server), retry=policy) as client, contextlib.suppress(RuntimeError, KeyboardInterrupt):
        for outcome in client.send_many(messages, concurrency=4, order="completion"):
            assert outcome.ok and outcome.index == 0
            left = time.monotonic()
            if leave == "break":
                break
            raise RuntimeError("the consumer failed") if leave == "exception" else KeyboardInterrupt
    assert time.monotonic() - left < 2  # the 5 s backoff of the sends in flight was not waited for
    assert not [t for t in threading.enumerate() if t.name.startswith("omnisend-send")]
    # The sends in flight made their one attempt and were not retried; the rest never started.
    assert 2 <= len(server.requests) <= 5
    assert len({request for request in server.requests}) == len(server.requests)


# -- 8. redirects are never followed ------------------------------------------------------------------------------------


def _redirecting(raw: Callable[[Handler], RawServer]) -> tuple[RawServer, RawServer]:
    elsewhere = raw(lambda conn: conn.send(head(content_length=2) + b"{}"))

    def redirect(conn: Conn) -> None:
        conn.send(head("302 Found", location=f"{elsewhere.url}/sms.do?token={TOKEN}", content_length=0))

    return raw(redirect), elsewhere


def test_a_redirect_is_never_followed_even_by_a_client_that_follows_them(raw) -> None:
    server, elsewhere = _redirecting(raw)
    with Client(provider(server), http_client=httpx.Client(follow_redirects=True)) as client:
        with pytest.raises(DeliveryUnknown, match="HTTP 302") as info:
            client.send(MESSAGE)
        with pytest.raises(TransportError, match="redirect") as lookup:
            client.get_status("1")
    error = info.value
    assert error.http_status == 302 and error.accepted is None and error.retryable is False and error.attempts == 1
    assert TOKEN not in str(error) and "never follows redirects" in error.message
    assert type(lookup.value) is TransportError
    assert elsewhere.requests == [] and len(server.requests) == 2  # no retry of a redirect either


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_a_redirect_is_never_followed(raw, transport: str) -> None:
    server, elsewhere = _redirecting(raw)
    http = aiohttp_client() if transport == "aiohttp" else httpx.AsyncClient()
    http.follow_redirects = True
    async with http, AsyncClient(provider(server), http_client=http) as client:
        with pytest.raises(DeliveryUnknown, match="HTTP 302"):
            await client.send(MESSAGE)
    assert elsewhere.requests == [] and len(server.requests) == 1


# -- 9. the aiohttp transport never lets a raw exception through --------------------------------------------------------


@pytest.mark.anyio
async def test_aiohttp_an_answer_with_a_non_utf8_reason_phrase_is_read(raw) -> None:
    def odd_reason(conn: Conn) -> None:
        body = smsapi_answer(conn)
        conn.send(b"HTTP/1.1 200 \xff\xfe\xc3(\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    server = raw(odd_reason)
    result = await async_send(server, "aiohttp")
    assert result.message_id and result.attempts == 1  # the vendor took it: so does omnisend


@pytest.mark.anyio
async def test_aiohttp_any_unexpected_transport_exception_is_typed(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = SmsapiEmulator(credentials=(TOKEN,))
    server: EmulatorServer = serve(emulator)
    async with aiohttp_client() as http, AsyncClient(provider(server), http_client=http, retry=None) as client:
        await client.send(MESSAGE)
        session = http.transport.session
        assert session is not None

        async def broken(*args: object, **kwargs: object) -> None:
            raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")

        monkeypatch.setattr(session, "request", broken)
        with pytest.raises(DeliveryUnknown, match="UnicodeEncodeError|TransportError") as info:
            await client.send(MESSAGE)
    assert info.value.accepted is None and isinstance(info.value.__cause__, httpx.TransportError)


def test_any_unexpected_exception_from_a_callers_transport_is_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a transport bug")

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with Client(Smsapi(token=TOKEN, base_url="http://vendor.test"), http_client=http, retry=None) as client:
        with pytest.raises(DeliveryUnknown, match="RuntimeError") as info:
            client.send(MESSAGE)
    assert info.value.accepted is None and "a transport bug" in str(info.value.__cause__)


# -- 11. the chained transport error holds no request -------------------------------------------------------------------


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in found:
        found.append(seen)
        seen = seen.__cause__ or seen.__context__
    return found


def _holds_no_request(error: BaseException) -> None:
    for link in _chain(error):
        assert getattr(link, "_request", None) is None and not hasattr(link, "request_info")
        if isinstance(link, httpx.RequestError):
            with pytest.raises(RuntimeError):
                link.request  # noqa: B018 - httpx raises when no request is attached
        dumped = pickle.dumps(link)
        assert TOKEN.encode() not in dumped and b"Authorization" not in dumped
    assert TOKEN not in repr([vars(link) for link in _chain(error) if hasattr(link, "__dict__")])


def test_a_chained_transport_error_holds_no_request(raw) -> None:
    server = raw(drip_body)
    with Client(provider(server), retry=None) as client, pytest.raises(DeliveryUnknown) as info:
        client.send(MESSAGE, timeout=httpx.Timeout(5, read=0.1))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    _holds_no_request(info.value)
    with Client(Smsapi(token=TOKEN, base_url="http://127.0.0.1:9"), retry=None) as client:
        with pytest.raises(TransportError, match="could not connect") as refused:
            client.send(MESSAGE)
    assert isinstance(refused.value.__cause__, httpx.ConnectError)
    _holds_no_request(refused.value)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_a_chained_transport_error_holds_no_request(raw, transport: str) -> None:
    server = raw(drip_body)
    with pytest.raises(DeliveryUnknown) as info:
        await async_send(server, transport, timeout=httpx.Timeout(5, read=0.1))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    _holds_no_request(info.value)
