"""One Client shared by many threads, one AsyncClient by many tasks; timeouts per client and per call."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from omnisend import AsyncClient, Client, DeliveryUnknown, Message, RetryPolicy
from omnisend.client import DEFAULT_TIMEOUT
from omnisend.testing import Fault, SmsapiEmulator
from tests.conftest import inprocess_client

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05)


@pytest.mark.tcp
def test_one_client_shared_by_16_threads(serve) -> None:
    emu = SmsapiEmulator(balance=10_000, rate_limit=(1000, 60.0))
    emu.fail_randomly(0.2, [Fault.drop_after_accept(), Fault.http_error(503), Fault.vendor_error(203)], seed=7)
    server = serve(emu)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    with Client(emu.make_provider(server.base_url), retry=RetryPolicy(max_attempts=10, initial_wait=0.01, max_wait=0.05)) as client:

        def worker(t: int) -> None:
            for n in range(25):
                try:
                    result = client.send(Message(to=f"+485{t:02d}{n:06d}", text="hi"))
                except BaseException as exc:  # collected and asserted below: no error may escape
                    with lock:
                        errors.append(exc)
                else:
                    with lock:
                        results.append(result.idempotency_key or "")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(results) == 400 and len(set(results)) == 400
    assert emu.accepted_count == 400 and emu.duplicates() == 0


@pytest.mark.tcp
@pytest.mark.anyio
async def test_one_async_client_shared_by_200_tasks(serve) -> None:
    emu = SmsapiEmulator(balance=10_000, rate_limit=(1000, 60.0))
    emu.fail_randomly(0.2, [Fault.drop_after_accept(), Fault.http_error(503)], seed=3)
    server = serve(emu)
    # The emulator's server threads share this process's GIL: a modest pool keeps the test quick.
    pool = httpx.AsyncClient(limits=httpx.Limits(max_connections=16))
    retry = RetryPolicy(max_attempts=10, initial_wait=0.01, max_wait=0.05)
    async with pool, AsyncClient(emu.make_provider(server.base_url), retry=retry, http_client=pool) as client:
        results = await asyncio.gather(*(client.send(Message(to=f"+48600{n:06d}", text="hi")) for n in range(200)))
    assert len({r.idempotency_key for r in results}) == 200
    assert emu.accepted_count == 200 and emu.duplicates() == 0


def test_default_timeouts() -> None:
    assert (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read, DEFAULT_TIMEOUT.write, DEFAULT_TIMEOUT.pool) == (5.0, 30.0, 30.0, 30.0)
    emu = SmsapiEmulator()
    with Client(emu.make_provider("http://emulator.test")) as client:
        assert client.timeout is DEFAULT_TIMEOUT and client._http.timeout == DEFAULT_TIMEOUT


def test_timeout_per_client_and_per_call() -> None:
    emu = SmsapiEmulator()
    seen: list[dict] = []
    transport = emu.transport()

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return transport.handle_request(request)

    provider = emu.make_provider("http://emulator.test")
    with Client(provider, timeout=httpx.Timeout(7.0, connect=2.0), http_client=httpx.Client(transport=httpx.MockTransport(spy))) as client:
        client.send(Message(to="+48500100200", text="a"))
        client.send(Message(to="+48500100201", text="b"), timeout=1.5)
    assert seen[0] == {"connect": 2.0, "read": 7.0, "write": 7.0, "pool": 7.0}
    assert seen[1] == {"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}


def test_a_read_timeout_is_ambiguous_and_keeps_the_key() -> None:
    emu = SmsapiEmulator()
    emu.script(Fault.slow(1.0), Fault.slow(1.0), Fault.slow(1.0))
    with inprocess_client(emu, FAST) as client, pytest.raises(DeliveryUnknown, match="may have reached") as info:
        client.send(Message(to="+48500100200", text="a", idempotency_key="order-1"), timeout=httpx.Timeout(10, read=0.02))
    assert info.value.idempotency_key == "order-1" and emu.accepted_count == 1 and emu.duplicates() == 0
