"""omnisend.otel.OpenTelemetry: spans and metrics from omnisend's events, checked with the SDK's in-memory exporters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from omnisend import AsyncClient, Client, DeliveryUnknown, InsufficientBalance, Message, RetryPolicy
from omnisend.events import AttemptFinished, RouteSkipped, SendFinished, SendStarted
from omnisend.models import DeliveryStatus, RecipientResult, SendResult
from omnisend.otel import OpenTelemetry
from omnisend.testing import Fault, SmsapiEmulator

NUMBER = "+48500100200"
TEXT = "Your code is 987654"
KEY = "key-0123456789abcdef"


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.handler = OpenTelemetry(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[self.reader]))

    def spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.exporter.get_finished_spans())

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield Telemetry()


def assert_nothing_personal(span: ReadableSpan) -> None:
    """No number, text, key or message id in any attribute, event attribute or status."""
    values = [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        values += [str(v) for v in (event.attributes or {}).values()]
    values.append(span.status.description or "")
    for value in values:
        for secret in (NUMBER, NUMBER[1:], TEXT, KEY, "test-token", "SMS0"):
            assert secret not in value, (secret, value)


def result(provider: str = "smsapi", failed: int = 0) -> SendResult:
    recipients = [RecipientResult(NUMBER, "SMS01", DeliveryStatus.QUEUED)]
    recipients += [RecipientResult(f"+4850010030{i}", None, DeliveryStatus.REJECTED, error=InsufficientBalance(provider=provider)) for i in range(failed)]
    return SendResult(provider, "SMS01", DeliveryStatus.QUEUED, tuple(recipients), KEY)


# -- the handler fed events directly ---------------------------------------------------------


def test_a_successful_send_is_one_client_span(telemetry: Telemetry) -> None:
    handler = telemetry.handler
    handler(SendStarted("smsapi", KEY, 1))
    handler(AttemptFinished("smsapi", KEY, 1, 0.05, 200, None, None))
    handler(SendFinished("smsapi", KEY, 1, 0.06, result(), None))
    (span,) = telemetry.spans()
    assert span.name == "omnisend.send" and span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "omnisend.provider": "smsapi",
        "omnisend.recipients.count": 1,
        "omnisend.attempts": 1,
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert [e.name for e in span.events] == ["omnisend.attempt"]
    metrics = telemetry.metrics()
    (duration,) = metrics["omnisend.client.send.duration"]
    assert duration.count == 1 and duration.sum == pytest.approx(0.06) and dict(duration.attributes) == {"omnisend.provider": "smsapi"}
    (attempts,) = metrics["omnisend.client.attempts"]
    assert attempts.value == 1
    assert_nothing_personal(span)


def test_a_vendor_error_in_http_200_is_an_error_span(telemetry: Telemetry) -> None:
    handler = telemetry.handler
    error = InsufficientBalance("Insufficient credits for +48500100200", provider="smsapi", code=103, http_status=200, idempotency_key=KEY)
    handler(SendStarted("smsapi", KEY, 1))
    handler(AttemptFinished("smsapi", KEY, 1, 0.01, 200, error, None))
    handler(SendFinished("smsapi", KEY, 1, 0.02, None, error))
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "InsufficientBalance (code 103)"
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "InsufficientBalance"
    assert attributes["omnisend.error.code"] == "103"
    assert attributes["omnisend.error.accepted"] is False
    assert attributes["http.response.status_code"] == 200
    (duration,) = telemetry.metrics()["omnisend.client.send.duration"]
    assert dict(duration.attributes) == {"omnisend.provider": "smsapi", "error.type": "InsufficientBalance"}
    assert_nothing_personal(span)


def test_unknown_acceptance_leaves_the_attribute_out(telemetry: Telemetry) -> None:
    handler = telemetry.handler
    error = DeliveryUnknown(provider="clickatell", idempotency_key=KEY)
    handler(SendStarted("clickatell", KEY, 1))
    handler(SendFinished("clickatell", KEY, 1, 0.02, None, error))
    (span,) = telemetry.spans()
    assert (span.attributes or {})["error.type"] == "DeliveryUnknown"
    assert "omnisend.error.accepted" not in (span.attributes or {})


def test_retries_are_attempt_events_and_counted(telemetry: Telemetry) -> None:
    handler = telemetry.handler
    from omnisend import RateLimited

    throttled = RateLimited(provider="smsapi", code=203, retry_after=1.0)
    handler(SendStarted("smsapi", KEY, 1))
    handler(AttemptFinished("smsapi", KEY, 1, 0.01, 200, throttled, 1.0))
    handler(AttemptFinished("smsapi", KEY, 2, 0.01, 200, None, None))
    handler(SendFinished("smsapi", KEY, 2, 1.05, result(), None))
    (span,) = telemetry.spans()
    assert (span.attributes or {})["omnisend.attempts"] == 2
    first, second = span.events
    assert dict(first.attributes or {}) == {
        "omnisend.attempt": 1,
        "omnisend.duration": 0.01,
        "http.response.status_code": 200,
        "error.type": "RateLimited",
        "omnisend.error.code": "203",
        "omnisend.error.accepted": False,
        "omnisend.retry_in": 1.0,
    }
    assert "error.type" not in (second.attributes or {})
    points = {tuple(sorted(dict(p.attributes).items())): p.value for p in telemetry.metrics()["omnisend.client.attempts"]}
    assert points == {(("error.type", "RateLimited"), ("omnisend.provider", "smsapi")): 1, (("omnisend.provider", "smsapi"),): 1}


def test_partial_failures_routes_and_the_router_provider(telemetry: Telemetry) -> None:
    handler = telemetry.handler
    handler(SendStarted("failover", KEY, 3))
    handler(RouteSkipped("clickatell", "breaker open"))
    handler(SendFinished("failover", KEY, 1, 0.1, result(provider="smsapi", failed=2), None))
    (span,) = telemetry.spans()
    attributes = dict(span.attributes or {})
    assert attributes["omnisend.provider"] == "smsapi"  # the provider that took the message
    assert attributes["omnisend.recipients.count"] == 3 and attributes["omnisend.recipients.failed"] == 2
    (skipped,) = span.events
    assert skipped.name == "omnisend.route_skipped" and dict(skipped.attributes or {}) == {"omnisend.route": "clickatell", "omnisend.reason": "breaker open"}


def test_concurrent_sends_on_threads_keep_their_own_spans(telemetry: Telemetry) -> None:
    handler = telemetry.handler
    barrier = threading.Barrier(8)

    def send(i: int) -> None:
        key = f"k{i}"
        handler(SendStarted("smsapi", key, i + 1))
        barrier.wait(timeout=10)
        handler(SendFinished("smsapi", key, i + 1, 0.01, None, InsufficientBalance(provider="smsapi")) if i % 2 else SendFinished("smsapi", key, i + 1, 0.01, result(), None))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = telemetry.spans()
    assert len(spans) == 8
    for span in spans:
        attributes = dict(span.attributes or {})
        count = attributes["omnisend.recipients.count"]
        assert attributes["omnisend.attempts"] == count  # the finish matched its own start
        assert ("error.type" in attributes) == (count % 2 == 0)
    assert repr(handler) == "OpenTelemetry(open_sends=0)"


def test_a_send_that_never_finishes_is_bounded(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    import omnisend.otel

    monkeypatch.setattr(omnisend.otel, "MAX_OPEN", 3)
    for i in range(5):
        telemetry.handler(SendStarted("smsapi", f"k{i}", 1))
    ended = telemetry.spans()
    assert len(ended) == 2 and all((s.attributes or {})["error.type"] == "abandoned" for s in ended)
    assert repr(telemetry.handler) == "OpenTelemetry(open_sends=3)"


def test_global_providers_are_used_by_default() -> None:
    handler = OpenTelemetry()  # the API's no-op providers unless an SDK is installed globally
    handler(SendStarted("smsapi", KEY, 1))
    handler(SendFinished("smsapi", KEY, 1, 0.01, result(), None))
    assert repr(handler) == "OpenTelemetry(open_sends=0)"


# -- end to end through the clients ----------------------------------------------------------


@pytest.mark.tcp
def test_client_on_event_over_tcp(telemetry: Telemetry) -> None:
    emulator = SmsapiEmulator()
    with emulator.serve() as server, Client(emulator.make_provider(server.base_url), on_event=telemetry.handler, retry=RetryPolicy(initial_wait=0.01, jitter=False)) as client:
        emulator.script(Fault.vendor_error(203))
        client.send(Message(to=NUMBER, text=TEXT, idempotency_key=KEY))
        emulator.balance = 0
        with pytest.raises(InsufficientBalance):
            client.send(Message(to=NUMBER, text=TEXT))
    ok, failed = telemetry.spans()
    assert (ok.attributes or {})["omnisend.attempts"] == 2 and ok.status.status_code is StatusCode.UNSET
    assert [dict(e.attributes or {}).get("error.type") for e in ok.events] == ["RateLimited", None]
    assert (failed.attributes or {})["error.type"] == "InsufficientBalance" and failed.status.status_code is StatusCode.ERROR
    for span in (ok, failed):
        assert_nothing_personal(span)
    assert sum(p.value for p in telemetry.metrics()["omnisend.client.attempts"]) == 3


@pytest.mark.anyio
async def test_async_client_on_event_in_process(telemetry: Telemetry) -> None:
    emulator = SmsapiEmulator()
    http = httpx.AsyncClient(transport=emulator.transport())
    async with http, AsyncClient(emulator.make_provider("http://emulator.test"), http_client=http, on_event=telemetry.handler) as client:
        await client.send(Message(to=NUMBER, text=TEXT))
        emulator.balance = 0
        with pytest.raises(InsufficientBalance):
            await client.send(Message(to=NUMBER, text=TEXT))
    ok, failed = telemetry.spans()
    assert "error.type" not in (ok.attributes or {}) and (failed.attributes or {})["error.type"] == "InsufficientBalance"


@pytest.mark.tcp
@pytest.mark.anyio
async def test_aiohttp_transport_is_seen(telemetry: Telemetry) -> None:
    pytest.importorskip("httpx_aiohttp")
    from omnisend.transports import aiohttp_client

    emulator = SmsapiEmulator()
    with emulator.serve() as server:
        async with aiohttp_client(concurrency=4) as http, AsyncClient(emulator.make_provider(server.base_url), http_client=http, on_event=telemetry.handler) as client:
            emulator.script(Fault.vendor_error(103))
            with pytest.raises(InsufficientBalance):
                await client.send(Message(to=NUMBER, text=TEXT))
            outcomes = [o async for o in client.send_many([Message(to=f"+4850010010{i}", text=TEXT) for i in range(5)], concurrency=4, batch=False)]
    assert all(o.ok for o in outcomes)
    spans = telemetry.spans()
    assert len(spans) == 6
    assert (spans[0].attributes or {})["error.type"] == "InsufficientBalance" and (spans[0].attributes or {})["http.response.status_code"] == 200
    assert all(s.status.status_code is StatusCode.UNSET for s in spans[1:])
