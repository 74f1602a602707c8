"""The close-to-the-wire paths end every send exactly as the general path does.

A ``Client``/``AsyncClient`` that makes its own HTTP client sends through :mod:`omnisend._wire`:
sync requests go straight to the transport (no cookie jar, no auth/redirect flows) over
connections that write each request in one piece; async requests go through aiohttp. A client
given ``http_client=httpx.Client()`` / ``httpx.AsyncClient()`` takes httpx's general path. Over
real TCP, against the same emulator and the same fault scripts, both must give the same result
or the same typed error (class, code, HTTP status, accepted, retryable, attempts, key), and the
vendor must receive the same requests.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import httpx
import pytest

from omnisend import AsyncClient, Client, Message, OmnisendError, RetryPolicy, _wire
from omnisend.testing import Fault, SmsapiEmulator

pytestmark = pytest.mark.tcp

SCENARIOS: dict[str, list[Fault]] = {
    "ok": [],
    "rate limited, then ok": [Fault.vendor_error(203)],
    "no credit": [Fault.vendor_error(103)] * 3,
    "dropped after accept, de-duplicated": [Fault.drop_after_accept()],
    "reset before the request is read, then ok": [Fault.reset()],
    "truncated answers": [Fault.truncated()] * 3,
    "server errors": [Fault.http_error(500), Fault.http_error(502), Fault.http_error(503)],
    "an HTML page in JSON's place": [Fault.wrong_content_type()],
    "an answer slower than the read timeout": [Fault.slow(1.5)],
    "a body past the size cap": [Fault.huge_body(3 << 20)],
}

MESSAGE = Message(to="+48500100200", text="Your code is 123456", sender="Shop", idempotency_key="order-1")


def _outcome(send: Any) -> tuple[object, ...]:
    try:
        result = send()
    except OmnisendError as exc:
        return _error(exc)
    return _sent(result)


def _error(exc: OmnisendError) -> tuple[object, ...]:
    return (
        "error",
        type(exc).__name__,
        exc.code,
        exc.http_status,
        exc.accepted,
        exc.retryable,
        exc.attempts,
        exc.idempotency_key,
    )


def _sent(result: Any) -> tuple[object, ...]:
    return ("sent", result.status, result.attempts, result.deduplicated, result.idempotency_key, len(result.recipients))


def _received(emulator: SmsapiEmulator) -> list[tuple[object, ...]]:
    """What the vendor received: method, path, the form, and the headers omnisend sets."""
    kept = ("authorization", "content-type", "content-length", "user-agent", "accept")
    return [(r.method, r.path, r.form, tuple(r.header(name) for name in kept)) for r in emulator.requests]


def _run_sync(faults: list[Fault], general: bool) -> tuple[object, ...]:
    emulator = SmsapiEmulator()
    emulator.script(*faults)
    with emulator.serve() as server:
        http = httpx.Client() if general else None
        policy = RetryPolicy(sleep=lambda _: None)
        with Client(emulator.make_provider(server.base_url), retry=policy, http_client=http, timeout=1.0) as client:
            outcome = _outcome(lambda: client.send(MESSAGE))
        if http is not None:
            http.close()
    return outcome, _received(emulator), emulator.accepted_count


def _run_async(faults: list[Fault], general: bool) -> tuple[object, ...]:
    emulator = SmsapiEmulator()
    emulator.script(*faults)

    async def no_wait(_: float) -> None:
        return None

    async def main(base_url: str) -> tuple[object, ...]:
        http = httpx.AsyncClient() if general else None
        policy = RetryPolicy(sleep=no_wait)
        async with AsyncClient(emulator.make_provider(base_url), retry=policy, http_client=http, timeout=1.0) as client:
            try:
                outcome = _sent(await client.send(MESSAGE))
            except OmnisendError as exc:
                outcome = _error(exc)
        if http is not None:
            await http.aclose()
        return outcome

    with emulator.serve() as server:
        outcome = asyncio.run(main(server.base_url))
    return outcome, _received(emulator), emulator.accepted_count


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_sync_send_ends_as_on_httpx_general_path(scenario: str) -> None:
    assert _run_sync(SCENARIOS[scenario], general=False) == _run_sync(SCENARIOS[scenario], general=True)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_an_async_send_ends_as_on_httpx_general_path(scenario: str) -> None:
    assert _run_async(SCENARIOS[scenario], general=False) == _run_async(SCENARIOS[scenario], general=True)


def test_a_refused_connection_is_the_same_typed_error_on_both_paths() -> None:
    with socket.socket() as sock:  # a bound port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        provider = SmsapiEmulator().make_provider(url)
        outcomes = []
        for http in (None, httpx.Client()):
            with Client(provider, retry=None, http_client=http, timeout=1.0) as client:
                outcomes.append(_outcome(lambda c=client: c.send(MESSAGE)))

        async def both() -> list[tuple[object, ...]]:
            found = []
            for http in (None, httpx.AsyncClient()):
                async with AsyncClient(provider, retry=None, http_client=http, timeout=1.0) as client:
                    try:
                        await client.send(MESSAGE)
                    except OmnisendError as exc:
                        found.append(_error(exc))
                if http is not None:
                    await http.aclose()
            return found

        outcomes += asyncio.run(both())
    assert outcomes[0][:2] == ("error", "TransportError") and outcomes[0][4] is False  # not sent
    assert len(set(outcomes)) == 1


def test_a_default_client_writes_each_request_in_one_send_and_keeps_no_cookies() -> None:
    emulator = SmsapiEmulator()
    with emulator.serve() as server, Client(emulator.make_provider(server.base_url)) as client:
        client.send(MESSAGE)
        client.send(Message(to="+48500100201", text="again", sender="Shop"))
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool._network_backend, _wire._CoalescingBackend)
        assert len(pool.connections) == 1  # one keep-alive connection for both sends
        assert not client._http.cookies  # type: ignore[attr-defined]
    assert emulator.accepted_count == 2


def test_coalescing_sends_what_was_written_in_one_piece_before_reading() -> None:
    class Recorder(httpcore_stream_base()):  # type: ignore[misc]
        def __init__(self) -> None:
            self.events: list[tuple[str, object]] = []

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.events.append(("write", buffer))

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            self.events.append(("read", max_bytes))
            return b""

        def close(self) -> None:
            self.events.append(("close", None))

    inner = Recorder()
    stream = _wire._Coalescing(inner)
    stream.write(b"POST / HTTP/1.1\r\n\r\n", 1.0)
    stream.write(b"", 1.0)
    stream.write(b"a=1", 1.0)
    assert inner.events == []  # nothing sent yet
    stream.read(10, 2.0)
    stream.read(10, 2.0)
    stream.close()
    assert inner.events == [("write", b"POST / HTTP/1.1\r\n\r\na=1"), ("read", 10), ("read", 10), ("close", None)]


def httpcore_stream_base() -> type:
    import httpcore

    return httpcore.NetworkStream


def test_the_httpx_log_line_is_kept_on_the_direct_path(caplog: pytest.LogCaptureFixture) -> None:
    emulator = SmsapiEmulator()
    with emulator.serve() as server, Client(emulator.make_provider(server.base_url)) as client:
        with caplog.at_level(logging.INFO, logger="httpx"):
            client.send(MESSAGE)
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines == [f'HTTP Request: POST {server.base_url}/sms.do "HTTP/1.1 200 OK"']


def test_a_proxy_in_the_environment_keeps_the_default_async_client_on_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert type(_wire.make_async_http(None)) is httpx.AsyncClient
    monkeypatch.delenv("HTTPS_PROXY")
    for name in ("HTTP_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    from omnisend._aiohttp import AiohttpAsyncClient

    assert isinstance(_wire.make_async_http(None), AiohttpAsyncClient)


def test_a_default_async_client_answers_from_respx_while_httpx_is_mocked() -> None:
    import respx

    from omnisend._aiowire import httpx_is_mocked

    emulator = SmsapiEmulator()
    with emulator.serve() as server:
        provider = emulator.make_provider(server.base_url)

        async def main() -> tuple[str | None, str | None]:
            async with AsyncClient(provider, retry=None) as client:
                with respx.mock() as router:
                    assert httpx_is_mocked()
                    router.post(f"{server.base_url}/sms.do").mock(
                        return_value=httpx.Response(
                            200,
                            json={
                                "count": 1,
                                "list": [{"id": "mocked", "points": 0.16, "number": "48500100200", "status": "QUEUE"}],
                            },
                        )
                    )
                    mocked = await client.send(MESSAGE)
                assert not httpx_is_mocked()
                real = await client.send(Message(to="+48500100201", text="real", sender="Shop"))
                return mocked.message_id, real.message_id

        mocked_id, real_id = asyncio.run(main())
    assert mocked_id == "mocked" and real_id is not None and real_id != "mocked"
    assert emulator.accepted_count == 1  # only the unmocked send reached the server


def test_event_hooks_added_to_the_default_client_are_honoured() -> None:
    """omnisend.celery adds rate-slot hooks to the client omnisend made: those sends take httpx's path."""
    emulator = SmsapiEmulator()
    seen: list[str] = []
    with emulator.serve() as server, Client(emulator.make_provider(server.base_url)) as client:
        assert _wire.direct(client._http)  # type: ignore[attr-defined]
        client._http.event_hooks["request"].append(lambda request: seen.append("request"))  # type: ignore[attr-defined]
        client._http.event_hooks["response"].append(lambda response: seen.append("response"))  # type: ignore[attr-defined]
        assert not _wire.direct(client._http)  # type: ignore[attr-defined]
        client.send(MESSAGE)
    assert seen == ["request", "response"] and emulator.accepted_count == 1
