"""The aiohttp transport extra: a round trip over TCP, typed errors, the pool sized to the concurrency."""

from __future__ import annotations

import logging
import socket
import sys

import aiohttp
import httpx
import pytest

from omnisend import AsyncClient, ConfigurationError, DeliveryUnknown, Message, RetryPolicy, TransportError
from omnisend._aiohttp import AiohttpAsyncClient, translate
from omnisend.testing import ClickatellEmulator, EmulatorServer, Fault, SmsapiEmulator
from omnisend.transports import aiohttp_client
from tests.conftest import Sleeps

pytestmark = pytest.mark.anyio

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/sms.do")


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the helper ------------------------------------------------------------------------------


async def test_returns_an_httpx_async_client_with_the_pool_sized_to_the_concurrency(serve) -> None:
    emulator = SmsapiEmulator()
    server: EmulatorServer = serve(emulator)
    async with aiohttp_client(concurrency=7) as http:
        assert isinstance(http, httpx.AsyncClient) and isinstance(http, AiohttpAsyncClient)
        assert http.transport.session is None  # created inside the loop, on the first request
        async with AsyncClient(emulator.make_provider(server.base_url), http_client=http) as client:
            result = await client.send(Message(to="+48500100200", text="Your code is 1234", sender="Shop"))
        session = http.transport.session
        assert session is not None and isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector.limit == 7
    assert result.status == "queued" and result.message_id is not None and result.attempts == 1
    assert emulator.accepted_count == 1
    assert session.closed  # closing the httpx client closes the aiohttp session


async def test_send_many_round_trip_over_tcp(serve) -> None:
    emulator = SmsapiEmulator()
    server: EmulatorServer = serve(emulator)
    messages = [Message(to=f"+4850010{i:04d}", text=f"Your code is {i:04d}") for i in range(40)]
    async with (
        aiohttp_client(concurrency=5) as http,
        AsyncClient(emulator.make_provider(server.base_url), http_client=http) as client,
    ):
        outcomes = [outcome async for outcome in client.send_many(messages, concurrency=5)]
        assert http.transport.session is not None and http.transport.session.connector is not None
        assert http.transport.session.connector.limit == 5
    assert [o.index for o in outcomes] == list(range(40)) and all(o.ok for o in outcomes)
    assert emulator.accepted_count == 40 and emulator.duplicates() == 0


async def test_a_response_from_the_short_path_is_complete(serve, caplog: pytest.LogCaptureFixture) -> None:
    emulator = SmsapiEmulator()
    server: EmulatorServer = serve(emulator)
    request = emulator.make_provider(server.base_url).build_request(
        Message(to="+48500100200", text="hi"), idempotency_key="k1"
    )
    with caplog.at_level(logging.INFO, logger="httpx"):
        async with aiohttp_client() as http:
            response = await http.send(request)
    assert response.status_code == 200 and response.request is request
    assert response.headers["content-type"] == "application/json" and response.json()["count"] == 1
    assert response.http_version == "HTTP/1.1" and response.reason_phrase == "OK"
    assert response.elapsed.total_seconds() > 0 and response.is_closed and response.is_stream_consumed
    assert response.num_bytes_downloaded == len(response.content) > 0 and response.text.startswith("{")
    assert await response.aread() == response.content
    assert any("HTTP Request: POST" in r.getMessage() for r in caplog.records)


async def test_event_hooks_take_httpx_s_own_path(serve) -> None:
    emulator = SmsapiEmulator()
    server: EmulatorServer = serve(emulator)
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with aiohttp_client() as http:
        http.event_hooks = {"request": [hook], "response": []}
        async with AsyncClient(emulator.make_provider(server.base_url), http_client=http) as client:
            result = await client.send(Message(to="+48500100200", text="hi"))
            emulator.script(Fault.drop_after_accept())
            with pytest.raises(TransportError) as info:
                await client.send(Message(to="+48500100201", text="hi"), retry=None)
    assert result.message_id is not None and seen == ["/sms.do", "/sms.do"]
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError) and info.value.accepted is None


@pytest.mark.parametrize("concurrency", [0, -1, True, 2.5, "50"])
async def test_a_bad_concurrency_is_a_configuration_error(concurrency: object) -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        aiohttp_client(concurrency=concurrency)  # type: ignore[arg-type]


async def test_a_broken_install_says_what_to_reinstall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "omnisend._aiohttp", raising=False)
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)  # makes `import httpx_aiohttp` fail
    with pytest.raises(ConfigurationError, match=r"httpx_aiohttp.*pip install --force-reinstall omnisend"):
        aiohttp_client()


# -- typed errors over real TCP ----------------------------------------------------------------


async def test_a_refused_connection_is_a_retryable_transport_error(sleeps: Sleeps) -> None:
    emulator = SmsapiEmulator()
    async with (
        aiohttp_client() as http,
        AsyncClient(
            emulator.make_provider(f"http://127.0.0.1:{free_port()}"), http_client=http, retry=RetryPolicy(sleep=sleeps)
        ) as client,
    ):
        with pytest.raises(TransportError) as info:
            await client.send(Message(to="+48500100200", text="hi"))
    error = info.value
    assert type(error) is TransportError  # nothing was sent: not DeliveryUnknown
    assert error.retryable is True and error.accepted is False and error.attempts == 3 and len(sleeps) == 2
    assert isinstance(error.__cause__, httpx.ConnectError)


async def test_a_read_timeout_is_ambiguous_and_not_retried_where_the_vendor_cannot_deduplicate(serve, sleeps) -> None:
    emulator = ClickatellEmulator()
    server: EmulatorServer = serve(emulator)
    emulator.script(Fault.slow(1.0))
    async with (
        aiohttp_client() as http,
        AsyncClient(
            emulator.make_provider(server.base_url), http_client=http, retry=RetryPolicy(sleep=sleeps)
        ) as client,
    ):
        with pytest.raises(DeliveryUnknown) as info:
            await client.send(Message(to="+27821234567", text="hi"), timeout=0.2)
    error = info.value
    assert error.accepted is None and error.retryable is False and error.attempts == 1 and sleeps == []
    assert isinstance(error.__cause__, httpx.ReadTimeout) and error.idempotency_key
    assert emulator.accepted_count == 1  # it did land: the caller reconciles with the key


async def test_a_read_timeout_is_retried_safely_where_the_vendor_deduplicates(serve, sleeps) -> None:
    emulator = SmsapiEmulator()
    server: EmulatorServer = serve(emulator)
    emulator.script(Fault.slow(2.5))
    async with (
        aiohttp_client() as http,
        AsyncClient(
            emulator.make_provider(server.base_url), http_client=http, retry=RetryPolicy(sleep=sleeps)
        ) as client,
    ):
        result = await client.send(Message(to="+48500100200", text="hi"), timeout=httpx.Timeout(10, read=1.0))
    assert result.attempts == 2 and result.deduplicated and len(sleeps) == 1
    assert emulator.accepted_count == 1 and emulator.duplicates() == 0


async def test_a_drop_after_accept_is_ambiguous_never_sent_twice(serve, sleeps) -> None:
    emulator = ClickatellEmulator()
    server: EmulatorServer = serve(emulator)
    emulator.script(Fault.drop_after_accept())
    async with (
        aiohttp_client() as http,
        AsyncClient(
            emulator.make_provider(server.base_url), http_client=http, retry=RetryPolicy(sleep=sleeps)
        ) as client,
    ):
        with pytest.raises(DeliveryUnknown) as info:
            await client.send(Message(to="+27821234567", text="hi"))
    error = info.value
    assert error.accepted is None and error.retryable is False and error.attempts == 1 and sleeps == []
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert emulator.accepted_count == 1  # httpx-aiohttp's own map would call this a ConnectTimeout and re-send


# -- the error map itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.SocketTimeoutError("read timed out"), httpx.ReadTimeout),
        (aiohttp.ConnectionTimeoutError("connect timed out"), httpx.ConnectTimeout),
        (aiohttp.ServerTimeoutError("timed out"), httpx.ReadTimeout),
        (TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.ReadError),
        (aiohttp.ClientPayloadError("truncated"), httpx.ReadError),
        (aiohttp.InvalidURL("nope://"), httpx.UnsupportedProtocol),
        (aiohttp.ClientError("other"), httpx.TransportError),
    ],
)
async def test_aiohttp_errors_map_to_the_httpx_class_omnisend_reads(error: BaseException, expected: type) -> None:
    mapped = translate(error, REQUEST)
    assert type(mapped) is expected and mapped.request is REQUEST


async def test_the_upstream_connect_timeout_for_a_dropped_connection_is_corrected() -> None:
    upstream = httpx.ConnectTimeout("Server disconnected")  # what httpx-aiohttp raises for a drop
    upstream.__cause__ = aiohttp.ServerDisconnectedError()
    assert type(translate(upstream, REQUEST)) is httpx.RemoteProtocolError


async def test_while_reading_the_body_nothing_counts_as_not_sent() -> None:
    assert type(translate(aiohttp.ConnectionTimeoutError("x"), REQUEST, reading_body=True)) is httpx.ReadTimeout
    assert type(translate(aiohttp.ClientOSError(104, "reset"), REQUEST, reading_body=True)) is httpx.ReadError


async def test_other_exceptions_are_not_ours() -> None:
    assert translate(ValueError("x"), REQUEST) is None
    own = httpx.ReadError("x")
    assert translate(own, REQUEST) is own
