"""Routers over the emulators (in-process and TCP, sync and async): the failover rule, counted per emulator.

Every test counts the requests each emulator received, so "failed over" means the next vendor
really got the message and "did not fail over" means it really got nothing.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from omnisend import (
    AsyncClient,
    AuthError,
    Breaker,
    BreakerStore,
    ByCountry,
    Client,
    ConfigurationError,
    DeliveryUnknown,
    Failover,
    InsufficientBalance,
    InvalidRecipient,
    Media,
    Message,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    RoundRobin,
    Route,
    SendResult,
    ServiceUnavailable,
    TemplateError,
    TransportError,
    Unsupported,
    ValidationError,
)
from omnisend import errors as errors_module
from omnisend._bulk import SendOutcome
from omnisend.providers import Clickatell, Edna, WebexConnect
from omnisend.providers.base import Provider
from omnisend.routing import FAILOVER_SAFE, MemoryBreakerStore, Router, fails_over
from omnisend.testing import (
    ClickatellEmulator,
    EdnaEmulator,
    Emulator,
    EmulatorServer,
    Fault,
    MobizonEmulator,
    Reply,
    SmsapiEmulator,
    WebexConnectEmulator,
)

from .conftest import Sleeps

MODES = ["sync", "async", "sync-tcp", "async-tcp"]


class Mux(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """In-process: each host name answered by its own emulator."""

    def __init__(self) -> None:
        self.hosts: dict[str, Any] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.hosts[request.url.host].handle_request(request)  # type: ignore[no-any-return]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.hosts[request.url.host].handle_async_request(request)  # type: ignore[no-any-return]


class Harness:
    """One client over a router, in one of the four modes; ``send`` hides sync/async."""

    def __init__(self, mode: str, serve: Callable[[Emulator], EmulatorServer], sleeps: Sleeps) -> None:
        self.mode = mode
        self.serve = serve
        self.policy = RetryPolicy(max_attempts=3, sleep=sleeps)
        self.mux = Mux()
        self.loop = asyncio.new_event_loop() if mode.startswith("async") else None
        self.client: Client | AsyncClient | None = None
        self.clients: list[Client | AsyncClient] = []

    def provider(self, emulator: Emulator, **options: Any) -> Provider:
        if self.mode.endswith("tcp"):
            return emulator.make_provider(self.serve(emulator).base_url, **options)
        host = f"{emulator.provider.replace('_', '-')}-{len(self.mux.hosts)}.test"
        self.mux.hosts[host] = emulator.transport()
        return emulator.make_provider(f"http://{host}", **options)

    def connect(self, router: Provider, **options: Any) -> Harness:
        options.setdefault("retry", self.policy)
        options.setdefault("timeout", httpx.Timeout(10.0, read=0.5, connect=2.0))  # reads cut at 0.5 s
        tcp = self.mode.endswith("tcp")
        if self.loop is None:
            http = httpx.Client() if tcp else httpx.Client(transport=self.mux)
            self.client = Client(router, http_client=http, **options)
        else:
            ahttp = httpx.AsyncClient() if tcp else httpx.AsyncClient(transport=self.mux)
            self.client = AsyncClient(router, http_client=ahttp, **options)
        self.clients.append(self.client)
        return self

    def send(self, message: Message) -> SendResult:
        if isinstance(self.client, AsyncClient):
            assert self.loop is not None
            return self.loop.run_until_complete(self.client.send(message))
        assert self.client is not None
        return self.client.send(message)

    def send_many(self, messages: list[Message], **options: Any) -> list[SendOutcome]:
        if isinstance(self.client, AsyncClient):
            client = self.client

            async def collect() -> list[SendOutcome]:
                return [o async for o in client.send_many(messages, **options)]

            assert self.loop is not None
            return self.loop.run_until_complete(collect())
        assert self.client is not None
        return list(self.client.send_many(messages, **options))

    def get_status(self, message_id: str, **options: Any) -> Any:
        if isinstance(self.client, AsyncClient):
            assert self.loop is not None
            return self.loop.run_until_complete(self.client.get_status(message_id, **options))
        assert self.client is not None
        return self.client.get_status(message_id, **options)

    def close(self) -> None:
        for client in self.clients:
            if isinstance(client, AsyncClient):
                assert self.loop is not None
                self.loop.run_until_complete(client._http.aclose())
            else:
                client._http.close()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=MODES)
def harness(
    request: pytest.FixtureRequest, serve: Callable[[Emulator], EmulatorServer], sleeps: Sleeps
) -> Iterator[Harness]:
    h = Harness(request.param, serve, sleeps)
    yield h
    h.close()


@pytest.fixture(params=["sync", "async-tcp"])
def harness2(
    request: pytest.FixtureRequest, serve: Callable[[Emulator], EmulatorServer], sleeps: Sleeps
) -> Iterator[Harness]:
    """Two of the four modes, for tests that are not about the transport (in-process sync, async over TCP)."""
    h = Harness(request.param, serve, sleeps)
    yield h
    h.close()


@pytest.fixture
def local(serve: Callable[[Emulator], EmulatorServer], sleeps: Sleeps) -> Iterator[Harness]:
    """In-process and sync only: for tests about the router's own logic."""
    h = Harness("sync", serve, sleeps)
    yield h
    h.close()


def posts(emulator: Emulator) -> int:
    """Send requests the emulator received (status polls and lookups are GETs)."""
    return sum(1 for r in emulator.requests if r.method == "POST")


def sms(to: str | list[str] = "+48500100200", **fields: Any) -> Message:
    return Message(to=to, text=fields.pop("text", "Your code is 1234"), **fields)


# -- the failover rule, error by error -----------------------------------------------------------

#: (case, vendor, fault, expected class, requests the first vendor gets with max_attempts=3).
#: Codes pinned from the vendors' own tables (tests/fixtures/*_codes.json).
FAILS_OVER = [
    ("auth", "clickatell", Fault.vendor_error(1), AuthError, 1),
    ("permission", "clickatell", Fault.vendor_error(2), PermissionDenied, 1),
    ("balance", "clickatell", Fault.vendor_error(20), InsufficientBalance, 1),
    ("rate-limited", "clickatell", Fault.vendor_error(43), RateLimited, 3),
    ("unavailable", "clickatell", Fault.vendor_error(19), ServiceUnavailable, 3),
    ("http-503", "clickatell", Fault.http_error(503), ServiceUnavailable, 3),
    ("refused", "clickatell", Fault.refuse(), TransportError, 3),
    ("auth", "webex_connect", Fault.vendor_error("7001"), AuthError, 1),
    ("balance", "webex_connect", Fault.vendor_error("7103"), InsufficientBalance, 1),
    ("rate-limited", "webex_connect", Fault.vendor_error("7020"), RateLimited, 3),
]

STAYS = [
    ("invalid-recipient", "clickatell", Fault.vendor_error(25), InvalidRecipient, 1),
    ("validation", "clickatell", Fault.vendor_error(21), ValidationError, 1),
    ("template", "webex_connect", Fault.vendor_error("7108"), TemplateError, 1),
    ("dropped-answer", "clickatell", Fault.drop_after_accept(), DeliveryUnknown, 1),
    ("slow-answer", "clickatell", Fault.slow(1.0), DeliveryUnknown, 1),
    ("500-after-accept", "clickatell", Fault.http_error(500, accept=True), DeliveryUnknown, 1),
    ("truncated", "webex_connect", Fault.truncated(), DeliveryUnknown, 1),
]


def first_vendor(name: str) -> Emulator:
    return ClickatellEmulator() if name == "clickatell" else WebexConnectEmulator()


@pytest.mark.parametrize(
    ("case", "vendor", "fault", "cls", "tries"), FAILS_OVER, ids=[f"{c[1]}-{c[0]}" for c in FAILS_OVER]
)
def test_a_failover_safe_error_moves_to_the_next_route(
    harness: Harness, case: str, vendor: str, fault: Fault, cls: type[Exception], tries: int
) -> None:
    first, second = first_vendor(vendor), SmsapiEmulator()
    first.script(*[fault] * 3)
    primary = harness.provider(first)
    if fault.kind == "refuse" and harness.mode.endswith("tcp"):  # over TCP: a port nobody listens on
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            primary = first.make_provider(f"http://127.0.0.1:{sock.getsockname()[1]}")
            harness.connect(Failover(primary, harness.provider(second)))
            result = harness.send(sms())
        first.script(*[fault] * 3)
        tries = 0
    else:
        harness.connect(Failover(primary, harness.provider(second)))
        result = harness.send(sms())
    assert result.provider == "smsapi"
    assert [type(e) for e in result.route_errors] == [cls]
    assert result.route_errors[0].accepted is False and result.route_errors[0].provider == vendor
    assert (posts(first), posts(second)) == (tries, 1)  # the route's own retries ended first
    assert second.accepted_count == 1 and first.accepted_count == 0


@pytest.mark.parametrize(("case", "vendor", "fault", "cls", "tries"), STAYS, ids=[f"{c[1]}-{c[0]}" for c in STAYS])
def test_any_other_error_is_raised_and_the_next_route_gets_nothing(
    harness: Harness, case: str, vendor: str, fault: Fault, cls: type[Exception], tries: int
) -> None:
    first, second = first_vendor(vendor), SmsapiEmulator()
    first.script(fault)
    harness.connect(Failover(harness.provider(first), harness.provider(second)))
    with pytest.raises(cls) as info:
        harness.send(sms())
    assert type(info.value) is cls
    assert info.value.route_errors == ()
    assert (posts(first), posts(second)) == (tries, 0)
    assert second.accepted_count == 0


def test_an_earlier_unsure_attempt_forbids_failover_even_when_the_last_one_was_refused(harness: Harness) -> None:
    # SMSAPI de-duplicates, so a reset is retried; the 503s after it cannot say the first attempt
    # did not land: the route ends in DeliveryUnknown and the second vendor is never asked.
    first, second = SmsapiEmulator(), ClickatellEmulator()
    first.script(Fault.reset(), Fault.http_error(503), Fault.http_error(503))
    harness.connect(Failover(harness.provider(first), harness.provider(second)))
    with pytest.raises(DeliveryUnknown, match="an earlier attempt may have reached the vendor"):
        harness.send(sms())
    assert (posts(first), posts(second)) == (3, 0)


def test_unsupported_fails_over_before_any_request_and_overrides_fit_each_vendor(harness2: Harness) -> None:
    clickatell, smsapi = ClickatellEmulator(), SmsapiEmulator()
    harness2.connect(Failover(harness2.provider(clickatell), harness2.provider(smsapi)))
    result = harness2.send(sms(sender="Shop"))  # Clickatell takes numbers only
    assert result.provider == "smsapi"
    assert [type(e) for e in result.route_errors] == [Unsupported]
    assert "alphanumeric sender" in str(result.route_errors[0])
    assert (posts(clickatell), posts(smsapi)) == (0, 1)

    # With per-route senders the same message goes through Clickatell with its number.
    clickatell2, smsapi2 = ClickatellEmulator(), SmsapiEmulator()
    harness2.connect(
        Failover(
            Route(harness2.provider(clickatell2), sender="15551234567"),
            Route(harness2.provider(smsapi2), sender="Shop"),
        )
    )
    result = harness2.send(sms(sender="Bank"))
    assert result.provider == "clickatell" and result.route_errors == ()
    (record,) = clickatell2.iter_messages()
    assert record.sender == "15551234567"
    assert posts(smsapi2) == 0


def test_every_route_failing_raises_the_last_error_with_the_earlier_ones(harness2: Harness) -> None:
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.balance = second.balance = 0
    harness2.connect(Failover(harness2.provider(first), harness2.provider(second)))
    with pytest.raises(InsufficientBalance) as info:
        harness2.send(sms())
    error = info.value
    assert error.provider == "smsapi"
    assert [(type(e), e.provider) for e in error.route_errors] == [(InsufficientBalance, "clickatell")]
    assert error.idempotency_key is not None and error.attempts == 2
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InsufficientBalance and copy.route_errors[0].provider == "clickatell"
    assert (posts(first), posts(second)) == (1, 1)


def test_status_lookup_and_webhook_name_the_route(harness2: Harness) -> None:
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.balance = 0
    router = Failover(harness2.provider(first), harness2.provider(second))
    harness2.connect(router)
    result = harness2.send(sms())
    assert result.provider == "smsapi" and result.message_id is not None
    report = harness2.get_status(result.message_id, provider=result.provider)
    assert report.provider == "smsapi" and report.message_id == result.message_id
    reports = router.parse_webhook(**second.deliver(result.message_id), provider=result.provider)
    assert [r.status.value for r in reports] == ["delivered"]
    with pytest.raises(ConfigurationError, match="say which route"):
        harness2.get_status(result.message_id)
    with pytest.raises(ConfigurationError, match="no route named 'twilio'"):
        harness2.get_status(result.message_id, provider="twilio")


def test_send_many_through_a_router(harness2: Harness) -> None:
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.balance = 0
    harness2.connect(Failover(harness2.provider(first), harness2.provider(second)), retry=None)
    messages = [sms(f"+4850010{n:04d}", text=f"code {n}") for n in range(30)]
    outcomes = harness2.send_many(messages, concurrency=4)
    assert [o.index for o in outcomes] == list(range(30))
    assert all(o.ok and o.result is not None and o.result.provider == "smsapi" for o in outcomes)
    assert second.accepted_count == 30 and second.duplicates() == 0
    # The first failure opened Clickatell's breaker: the others skipped it without a request.
    assert first.accepted_count == 0 and posts(first) <= 4


# -- partial rejections ---------------------------------------------------------------------------


def test_recipients_refused_for_a_provider_reason_go_to_the_next_route(local: Harness) -> None:
    # Clickatell takes 100 numbers a request: the second request fails (503 three times, so
    # certainly not taken), and only its recipients go on to SMSAPI. The invalid number stays failed.
    first, second = ClickatellEmulator(), SmsapiEmulator()
    numbers = [f"+4850020{n:04d}" for n in range(150)]
    numbers[3] = ClickatellEmulator.invalid_number
    first.script(*[Fault.http_error(503)] * 0)
    router = Failover(local.provider(first), local.provider(second))
    local.connect(router)

    original = first.route

    def second_request_fails(request: Any) -> Reply:
        if posts(first) == 1:
            return original(request)
        return Reply.text("<html>busy</html>", 503, "text/html")

    first.route = second_request_fails  # type: ignore[method-assign]
    result = local.send(Message(to=numbers, text="hello"))
    assert result.provider == "clickatell"
    by_number = {r.to: r for r in result.recipients}
    assert [r.to for r in result.recipients] == numbers
    assert isinstance(by_number[numbers[3]].error, InvalidRecipient) and by_number[numbers[3]].provider == "clickatell"
    moved = numbers[100:]
    assert all(by_number[n].ok and by_number[n].provider == "smsapi" for n in moved)
    assert all(by_number[n].provider == "clickatell" for n in numbers[:100] if n != numbers[3])
    assert [type(e) for e in result.route_errors] == [ServiceUnavailable]
    assert second.accepted_count == 50 and first.accepted_count == 99
    assert posts(first) == 1 + 3 and posts(second) == 1


# -- the breaker ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_at_once_on_balance_skips_without_a_request_then_half_opens(local: Harness) -> None:
    clock = Clock()
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.balance = 0
    router = Failover(
        local.provider(first), local.provider(second), breaker=Breaker(failures=5, cooldown=30, clock=clock)
    )
    local.connect(router)
    local.send(sms("+48500100200"))
    assert router.breaker_state("clickatell").is_open(clock.now)
    result = local.send(sms("+48500100201"))
    assert posts(first) == 1  # skipped without a request
    assert [type(e) for e in result.route_errors] == [InsufficientBalance]
    assert result.route_errors[0].attempts == 0 and "circuit open" in str(result.route_errors[0])

    clock.now += 31  # half-open: the next send probes Clickatell; still empty, so it opens again
    local.send(sms("+48500100202"))
    assert posts(first) == 2 and router.breaker_state("clickatell").is_open(clock.now)
    local.send(sms("+48500100203"))
    assert posts(first) == 2

    first.balance = 100
    clock.now += 31  # the probe succeeds: closed
    result = local.send(sms("+48500100204"))
    assert result.provider == "clickatell" and router.breaker_state("clickatell").closed
    local.send(sms("+48500100205"))
    assert posts(first) == 4


def test_breaker_opens_after_n_consecutive_provider_failures_only(local: Harness) -> None:
    clock = Clock()
    first, second = ClickatellEmulator(), SmsapiEmulator()
    router = Failover(
        local.provider(first), local.provider(second), breaker=Breaker(failures=3, cooldown=10, clock=clock)
    )
    local.connect(router, retry=None)
    for n in range(5):  # message-level errors say the vendor is up: they never count
        with pytest.raises(InvalidRecipient):
            local.send(sms(ClickatellEmulator.invalid_number, idempotency_key=f"bad-{n}"))
    assert router.breaker_state("clickatell").closed
    first.script(Fault.http_error(503), Fault.http_error(503))
    local.send(sms("+48500100300"))
    local.send(sms("+48500100301"))
    assert router.breaker_state("clickatell").failures == 2 and not router.breaker_state("clickatell").is_open(
        clock.now
    )
    local.send(sms("+48500100302"))  # a success resets the count
    assert router.breaker_state("clickatell").closed
    first.script(*[Fault.http_error(503)] * 3)
    for n in range(3):
        local.send(sms(f"+4850010040{n}"))
    assert router.breaker_state("clickatell").is_open(clock.now)
    before = posts(first)
    assert local.send(sms("+48500100410")).provider == "smsapi" and posts(first) == before


def test_a_longer_retry_after_keeps_the_circuit_open_longer(local: Harness) -> None:
    class Throttling(ClickatellEmulator):
        def error_reply(self, code: object) -> Reply:
            reply = super().error_reply(code)
            reply.headers["retry-after"] = "120"
            return reply

    clock = Clock()
    first, second = Throttling(), SmsapiEmulator()
    first.script(Fault.vendor_error(43))
    router = Failover(
        local.provider(first), local.provider(second), breaker=Breaker(failures=1, cooldown=30, clock=clock)
    )
    local.connect(router)  # max_retry_after=60 < 120: not retried, failed over at once
    result = local.send(sms())
    assert isinstance(result.route_errors[0], RateLimited) and result.route_errors[0].retry_after == 120
    clock.now += 31
    local.send(sms("+48500100201"))
    assert posts(first) == 1  # the cooldown passed, the vendor's 120 s did not
    clock.now += 90
    assert local.send(sms("+48500100202")).provider == "clickatell"


def test_every_route_open_raises_without_any_request(local: Harness) -> None:
    clock = Clock()
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.balance = second.balance = 0
    router = Failover(local.provider(first), local.provider(second), breaker=Breaker(clock=clock))
    local.connect(router)
    with pytest.raises(InsufficientBalance):
        local.send(sms())
    with pytest.raises(InsufficientBalance, match="skipped, circuit open") as info:
        local.send(sms("+48500100201"))
    assert (posts(first), posts(second)) == (1, 1)
    assert info.value.provider == "smsapi" and [e.provider for e in info.value.route_errors] == ["clickatell"]


def test_a_shared_store_shares_circuits_between_routers(local: Harness) -> None:
    store = MemoryBreakerStore()
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.balance = 0
    a, b = local.provider(first), local.provider(second)
    one = Failover(a, b, breaker=Breaker(store=store))
    two = Failover(a, b, breaker=Breaker(store=store))
    alone = Failover(a, b)
    local.connect(one).send(sms())
    assert posts(first) == 1
    local.connect(two).send(sms("+48500100201"))
    assert posts(first) == 1  # two saw one's open circuit
    local.connect(alone).send(sms("+48500100202"))
    assert posts(first) == 2  # its own state: it had to learn


def test_a_breaker_store_is_four_operations() -> None:
    assert {name for name in vars(BreakerStore) if not name.startswith("_")} == {
        "get",
        "record_failure",
        "record_success",
        "claim_probe",
    }
    store = MemoryBreakerStore()
    error = ServiceUnavailable("down", provider="x", accepted=False)
    state = store.record_failure("x", error=error, now=100.0, threshold=2, open_for=10.0, trip=False)
    assert state.failures == 1 and state.open_until is None
    state = store.record_failure("x", error=error, now=101.0, threshold=2, open_for=10.0, trip=False)
    assert state.open_until == 111.0 and state.error is error
    assert not store.claim_probe("x", now=110.0, lease=10.0)
    assert store.claim_probe("x", now=111.0, lease=10.0) and not store.claim_probe("x", now=111.0, lease=10.0)
    assert store.get("x").open_until == 121.0
    assert pickle.loads(pickle.dumps(store.get("x"))).error.provider == "x"  # type: ignore[union-attr]
    store.record_success("x")
    assert store.get("x").closed


# -- weights and stickiness ----------------------------------------------------------------------


def test_weights_are_honoured_within_tolerance(local: Harness) -> None:
    a, b, c = SmsapiEmulator(), MobizonEmulator(), ClickatellEmulator()
    router = RoundRobin(
        Route(local.provider(a), weight=6), Route(local.provider(b), weight=3), Route(local.provider(c), weight=1)
    )
    local.connect(router)
    sends = 800
    for n in range(sends):  # fixed keys: the same split on every run
        local.send(sms(f"+4850030{n:04d}", idempotency_key=f"weights-{n}"))
    shares = [e.accepted_count / sends for e in (a, b, c)]
    assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.04)
    # and over many more keys, the choice alone:
    counts = [0, 0, 0]
    for n in range(60_000):
        counts[router.start(f"key-{n}")] += 1
    assert [x / 60_000 for x in counts] == pytest.approx([0.6, 0.3, 0.1], abs=0.01)


def test_a_weight_of_zero_is_only_a_fallback(local: Harness) -> None:
    a, b = SmsapiEmulator(), MobizonEmulator()
    router = RoundRobin(Route(local.provider(a)), Route(local.provider(b), weight=0))
    local.connect(router)
    for n in range(50):
        assert local.send(sms(f"+4850040{n:04d}")).provider == "smsapi"
    a.balance = 0
    assert local.send(sms("+48500409999")).provider == "mobizon"


def test_the_same_key_always_starts_on_the_same_route(local: Harness) -> None:
    emulators = [SmsapiEmulator(), MobizonEmulator(), ClickatellEmulator()]
    router = RoundRobin(*(local.provider(e) for e in emulators))
    local.connect(router)
    starts = set()
    for n in range(40):
        key = f"order-{n}"
        taken = {local.send(sms(f"+4850050{n:04d}", idempotency_key=key)).provider for _ in range(3)}
        assert len(taken) == 1
        assert taken == {router.routes[router.start(key)].name}
        starts |= taken
    assert starts == {"smsapi", "mobizon", "clickatell"}


def test_a_resend_after_delivery_unknown_goes_where_the_first_copy_may_be(harness2: Harness) -> None:
    a, b = ClickatellEmulator(), MobizonEmulator()
    router = RoundRobin(harness2.provider(a), harness2.provider(b), breaker=Breaker(failures=10))
    harness2.connect(router)
    key = next(f"k{n}" for n in range(100) if router.start(f"k{n}") == 0)
    a.script(Fault.drop_after_accept())
    with pytest.raises(DeliveryUnknown):
        harness2.send(sms(idempotency_key=key))
    assert a.accepted_count == 1 and posts(b) == 0
    harness2.send(sms(idempotency_key=key))  # the re-send goes to the same vendor, not the other one
    assert posts(b) == 0 and posts(a) == 2


# -- nesting and countries ---------------------------------------------------------------------


def test_nested_routers_by_country(harness2: Harness) -> None:
    smsapi, clickatell, mobizon, webex = (
        SmsapiEmulator(),
        ClickatellEmulator(),
        MobizonEmulator(),
        WebexConnectEmulator(),
    )
    smsapi.balance = 0
    router = ByCountry(
        {"PL": Failover(harness2.provider(smsapi), harness2.provider(clickatell)), "KZ": harness2.provider(mobizon)},
        default=harness2.provider(webex),
    )
    harness2.connect(router)
    assert harness2.send(sms("+48500100200")).provider == "clickatell"
    assert harness2.send(sms("+77012345678")).provider == "mobizon"
    assert harness2.send(sms("+4915112345678")).provider == "webex_connect"

    result = harness2.send(Message(to=["+48500100201", "+77012345679", "+4915112345679"], text="hi"))
    assert [r.provider for r in result.recipients] == ["clickatell", "mobizon", "webex_connect"]
    assert all(r.ok for r in result.recipients)
    assert result.provider == "clickatell" and result.message_id == result.recipients[0].message_id
    assert (clickatell.accepted_count, mobizon.accepted_count, webex.accepted_count) == (2, 2, 2)
    # the nested route's name reaches get_status through both routers
    report = harness2.get_status(result.recipients[1].message_id or "", provider="mobizon")
    assert report.provider == "mobizon"


def test_a_country_route_failing_over_to_the_default(local: Harness) -> None:
    smsapi, webex = SmsapiEmulator(), WebexConnectEmulator()
    smsapi.balance = 0
    router = ByCountry({"+48": local.provider(smsapi)}, default=local.provider(webex))
    local.connect(router)
    result = local.send(sms())
    assert result.provider == "webex_connect" and [type(e) for e in result.route_errors] == [InsufficientBalance]


def test_no_route_for_a_country_is_unsupported_so_an_outer_router_moves_on(local: Harness) -> None:
    mobizon, smsapi = MobizonEmulator(), SmsapiEmulator()
    inner = ByCountry({"KZ": local.provider(mobizon)})
    local.connect(inner)
    with pytest.raises(Unsupported, match="no route for PL"):
        local.send(sms())
    local.connect(Failover(inner, local.provider(smsapi)))
    assert local.send(sms()).provider == "smsapi"
    assert posts(mobizon) == 0


def test_a_nested_router_in_round_robin_and_its_errors(local: Harness) -> None:
    a, b, c = SmsapiEmulator(), ClickatellEmulator(), MobizonEmulator()
    a.balance = b.balance = 0
    inner = Failover(local.provider(a), local.provider(b))
    local.connect(Failover(Route(inner, name="primary"), local.provider(c)))
    result = local.send(sms())
    assert result.provider == "mobizon"
    (inner_error,) = result.route_errors
    assert isinstance(inner_error, InsufficientBalance) and inner_error.provider == "clickatell"
    assert [e.provider for e in inner_error.route_errors] == ["smsapi"]


# -- adapters refuse what they cannot do with Unsupported ------------------------------------------

FUTURE = datetime.now(timezone.utc) + timedelta(days=1)
UNSUPPORTED = [
    ("clickatell-alphanumeric-sender", ClickatellEmulator, {}, sms(sender="Shop")),
    ("clickatell-schedule", ClickatellEmulator, {}, sms(scheduled_at=FUTURE)),
    ("edna-pulse-sender", EdnaEmulator, {}, Message(to="+48500100200", text="hi", channel="whatsapp", sender="Shop")),
    ("webex-viber", WebexConnectEmulator, {}, Message(to="+48500100200", text="hi", channel="viber")),
    ("webex-media", WebexConnectEmulator, {}, sms(media=Media(url="https://example.org/a.png"))),
    ("webex-schedule", WebexConnectEmulator, {}, sms(scheduled_at=FUTURE)),
    ("smsapi-validity", SmsapiEmulator, {}, sms(validity=timedelta(hours=80))),
    ("mobizon-validity", MobizonEmulator, {}, sms(validity=timedelta(minutes=10))),
]


@pytest.mark.parametrize(("case", "emulator_cls", "options", "message"), UNSUPPORTED, ids=[c[0] for c in UNSUPPORTED])
def test_capability_refusals_are_unsupported(
    local: Harness, case: str, emulator_cls: type[Emulator], options: dict[str, Any], message: Message
) -> None:
    emulator = emulator_cls()
    provider = local.provider(emulator, **options)
    if isinstance(provider, Edna):
        assert provider.api == "pulse"
    local.connect(provider)
    with pytest.raises(Unsupported, match="does not support") as info:
        local.send(message)
    assert isinstance(info.value, ValidationError) and info.value.accepted is False
    assert emulator.requests == []


def test_message_level_refusals_stay_validation_errors() -> None:
    provider = Clickatell(api_key="k")
    with pytest.raises(ValidationError) as info:
        provider.build_request(sms(sender="12"), idempotency_key="k")  # a number, but too short
    assert not isinstance(info.value, Unsupported)
    webex = WebexConnect(service_key="k")
    with pytest.raises(ValidationError) as info:
        webex.build_request(sms(text="x" * 2000), idempotency_key="k")
    assert not isinstance(info.value, Unsupported)


# -- the rule as a table, and configuration -------------------------------------------------------

#: Every error class and whether a router moves on after it (with ``accepted=False``), as docs/routing.md says.
RULE = {
    "OmnisendError": False,
    "ConfigurationError": False,
    "ClientClosed": False,
    "ProviderError": False,
    "AuthError": True,
    "WebhookAuthError": True,
    "PermissionDenied": True,
    "InsufficientBalance": True,
    "RateLimited": True,
    "ValidationError": False,
    "InvalidRecipient": False,
    "TemplateError": False,
    "Unsupported": True,
    "DeliveryFailed": False,
    "NotFound": False,
    "DuplicateMessage": False,
    "ServiceUnavailable": True,
    "TransportError": True,
    "DeliveryUnknown": False,
    "PartialFailure": False,
}


def test_the_rule_for_every_error_class() -> None:
    assert set(RULE) == set(errors_module.__all__)
    for name, moves in RULE.items():
        cls = getattr(errors_module, name)
        assert fails_over(cls("x", accepted=False)) is moves, name
        assert fails_over(cls("x", accepted=None)) is False, name  # never when it may have landed
    assert set(FAILOVER_SAFE) == {getattr(errors_module, n) for n, moves in RULE.items() if moves} - {
        errors_module.WebhookAuthError
    }


def test_configuration_errors() -> None:
    one, two = Clickatell(api_key="a"), Clickatell(api_key="b")
    with pytest.raises(ConfigurationError, match="two routes are named 'clickatell'"):
        Failover(one, two)
    assert Failover(one, Route(two, name="clickatell-2")).resolve("clickatell-2") is two
    assert Failover(one, one).resolve("clickatell") is one  # the same account twice is one name
    with pytest.raises(ConfigurationError, match="at least one route"):
        Failover()
    with pytest.raises(ConfigurationError, match="weight"):
        Route(one, weight=-1)
    with pytest.raises(ConfigurationError, match="weight above 0"):
        RoundRobin(Route(one, weight=0))
    with pytest.raises(ConfigurationError, match="not an ISO"):
        ByCountry({"XX": one})
    with pytest.raises(ConfigurationError, match="failures"):
        Breaker(failures=0)
    with pytest.raises(ConfigurationError, match="provider instance"):
        Route("smsapi")  # type: ignore[arg-type]
    router: Router = Failover(Route(one, sender="15551234567", options={"a": 1}), Route(two, name="b", weight=2))
    assert "Route(Clickatell" in repr(router) and "name='b'" in repr(router)
    assert isinstance(router, Provider) and router.max_recipients == Clickatell.max_recipients


# -- events -----------------------------------------------------------------------------------------


def test_route_skipped_events_and_attempts_name_the_route(harness2: Harness) -> None:
    from omnisend.events import AttemptFinished, RouteSkipped

    clock = Clock()
    seen: list[object] = []
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.balance = 0
    router = Failover(harness2.provider(first), harness2.provider(second), breaker=Breaker(clock=clock))
    harness2.connect(router, on_event=seen.append)
    harness2.send(sms())
    skipped = [e for e in seen if isinstance(e, RouteSkipped)]
    assert skipped == [RouteSkipped("clickatell", "failed over after InsufficientBalance")]
    assert [e.provider for e in seen if isinstance(e, AttemptFinished)] == ["clickatell", "smsapi"]
    seen.clear()
    harness2.send(sms("+48500100201"))
    assert [e for e in seen if isinstance(e, RouteSkipped)] == [
        RouteSkipped("clickatell", "circuit open after InsufficientBalance")
    ]
    assert [e.provider for e in seen if isinstance(e, AttemptFinished)] == ["smsapi"]


def test_the_demo_shows_a_failover_and_a_refused_failover() -> None:
    import io

    from omnisend._demo import _Printer, demo_routing

    out = io.StringIO()
    demo_routing(_Printer(out))
    text = out.getvalue()
    assert "InsufficientBalance from clickatell" in text and "provider=smsapi" in text
    assert "[requests: Clickatell 1, SMSAPI 1]" in text
    assert "DeliveryUnknown, accepted=None" in text
    assert "SMSAPI untouched  [requests: Clickatell 1, SMSAPI 0]" in text
    assert "Clickatell holds 1, SMSAPI 1" in text


def test_a_route_whose_flow_had_a_step_land_is_never_failed_over() -> None:
    # A vendor flow of two requests: the first returns a result (a message may be out), the second
    # fails cleanly. The error says accepted=False, but the route as a whole may have sent: stay.
    from omnisend.providers import Smsapi

    class TwoStep(Smsapi):
        def send_flow(self, message: Message, *, idempotency_key: str) -> Any:
            first: SendResult = yield self.send_step(message, idempotency_key=idempotency_key)
            yield self.send_step(message, idempotency_key=idempotency_key + "-2")
            return first

    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "a.test" and len(calls) > 1:
            return httpx.Response(200, json={"error": 103, "message": "Insufficient credits"})
        return httpx.Response(
            200, json={"count": 1, "list": [{"id": "1", "points": 0.1, "number": "48500100200", "status": "QUEUED"}]}
        )

    first, second = TwoStep(token="a", base_url="http://a.test"), Smsapi(token="b", base_url="http://b.test")
    client = Client(
        Failover(first, Route(second, name="backup")), http_client=httpx.Client(transport=httpx.MockTransport(answer))
    )
    with pytest.raises(InsufficientBalance) as info:
        client.send(sms())
    assert info.value.accepted is False and calls == ["a.test", "a.test"]  # backup never asked


def test_a_circuit_opened_by_delivery_unknown_is_skipped_as_service_unavailable(local: Harness) -> None:
    clock = Clock()
    first, second = ClickatellEmulator(), SmsapiEmulator()
    first.script(Fault.drop_after_accept())
    router = Failover(local.provider(first), local.provider(second), breaker=Breaker(failures=1, clock=clock))
    local.connect(router)
    with pytest.raises(DeliveryUnknown):
        local.send(sms())
    result = local.send(sms("+48500100201"))  # nothing is sent to the open route: never "DeliveryUnknown"
    (skipped,) = result.route_errors
    assert type(skipped) is ServiceUnavailable and skipped.accepted is False
    assert "circuit open after DeliveryUnknown" in str(skipped)
    assert posts(first) == 1


def test_a_healthy_route_costs_one_store_read_per_send_and_no_write(local: Harness) -> None:
    class Counting(MemoryBreakerStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def get(self, key: str) -> Any:
            self.calls.append("get")
            return super().get(key)

        def record_success(self, key: str) -> None:
            self.calls.append("success")
            super().record_success(key)

    store = Counting()
    first, second = SmsapiEmulator(), ClickatellEmulator()
    local.connect(Failover(local.provider(first), local.provider(second), breaker=Breaker(store=store)))
    for n in range(3):
        local.send(sms(f"+4850060000{n}"))
    assert store.calls == ["get"] * 3
    first.script(Fault.http_error(503), Fault.http_error(503), Fault.http_error(503))
    local.send(sms("+48500600010"))  # smsapi fails (count 1), clickatell takes it
    store.calls.clear()
    local.send(sms("+48500600011"))  # the first success after a failure clears the count: one write
    assert store.calls == ["get", "success"] and store.get("smsapi").closed
