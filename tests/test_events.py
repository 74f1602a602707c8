"""``on_event``: what a client tells a handler while it sends, and the one log record per send."""

from __future__ import annotations

import asyncio
import logging
import pickle

import httpx
import pytest
import respx

from omnisend import AsyncClient, Client, InsufficientBalance, Message, RetryPolicy, ValidationError
from omnisend.events import AttemptFinished, RouteSkipped, SendFinished, SendStarted
from omnisend.providers import Smsapi
from omnisend.providers.base import Flow, Step

BASE = "http://smsapi.test"
URL = f"{BASE}/sms.do"
OK = {"count": 1, "list": [{"id": "m1", "points": 0.16, "number": "48500100200", "status": "QUEUE"}]}
MSG = Message(to="+48500100200", text="Your code is 1234", sender="Shop", idempotency_key="key-1")
NUMBER, TEXT, TOKEN = "48500100200", "Your code is 1234", "t0ken-for-tests"


class Recorder(list[object]):
    def __call__(self, event: object) -> None:
        self.append(event)


def run_sync(events: Recorder, sleeps: list[float], message: Message = MSG) -> object:
    client = Client(
        Smsapi(token=TOKEN, base_url=BASE), retry=RetryPolicy(sleep=sleeps.append, jitter=False), on_event=events
    )
    with client:
        return client.send(message)


async def run_async(events: Recorder, sleeps: list[float], message: Message = MSG) -> object:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncClient(
        Smsapi(token=TOKEN, base_url=BASE), retry=RetryPolicy(sleep=sleep, jitter=False), on_event=events
    ) as client:
        return await client.send(message)


def both(events: Recorder, sleeps: list[float], message: Message = MSG) -> list[tuple[object, Recorder]]:
    """Run the same send through Client and AsyncClient; each run's events in its own recorder."""
    runs = []
    for runner in ("sync", "async"):
        recorder = Recorder()
        try:
            value: object = (
                run_sync(recorder, sleeps, message) if runner == "sync" else asyncio.run(run_async(recorder, sleeps, message))
            )
        except Exception as exc:
            value = exc
        runs.append((value, recorder))
    return runs


def test_a_retried_send_tells_each_attempt_and_its_wait() -> None:
    with respx.mock() as router:
        router.post(URL).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json=OK)] * 2
        )
        runs = both(Recorder(), [])
    for result, events in runs:
        assert [type(e) for e in events] == [SendStarted, AttemptFinished, AttemptFinished, SendFinished]
        started, first, second, finished = events
        assert started == SendStarted("smsapi", "key-1", 1)
        assert (first.attempt, first.http_status, first.retry_in) == (1, 429, 2.0)
        assert type(first.error).__name__ == "RateLimited"
        assert (second.attempt, second.http_status, second.error, second.retry_in) == (2, 200, None, None)
        assert finished.result is result and finished.error is None and finished.attempts == 2
        assert finished.duration >= second.duration >= 0


def test_a_final_error_is_told_once_with_no_retry() -> None:
    with respx.mock() as router:
        router.post(URL).mock(return_value=httpx.Response(200, json={"error": 103, "message": "Insufficient credits"}))
        runs = both(Recorder(), [])
    for error, events in runs:
        assert isinstance(error, InsufficientBalance)
        assert [type(e) for e in events] == [SendStarted, AttemptFinished, SendFinished]
        assert events[1].error is error and events[1].retry_in is None and events[1].http_status == 200
        assert events[2].error is error and events[2].result is None and events[2].attempts == 1


def test_exhausted_retries_tell_every_attempt() -> None:
    with respx.mock() as router:
        router.post(URL).mock(return_value=httpx.Response(503))
        runs = both(Recorder(), [])
    for error, events in runs:
        attempts = [e for e in events if isinstance(e, AttemptFinished)]
        assert [a.attempt for a in attempts] == [1, 2, 3]
        assert [a.retry_in for a in attempts] == [0.5, 1.0, None]
        assert events[-1] == SendFinished("smsapi", "key-1", 3, events[-1].duration, None, error)


def test_a_pre_flight_refusal_starts_and_finishes_with_no_attempt() -> None:
    events = Recorder()
    bad = Message(to="+48500100200", text="x" * 2000, sender="Shop")  # longer than SMSAPI's 10 parts
    with Client(Smsapi(token=TOKEN, base_url=BASE), on_event=events) as client, respx.mock(assert_all_called=False) as router:
        route = router.post(URL)
        with pytest.raises(ValidationError, match="smsapi"):
            client.send(bad)
    assert route.call_count == 0
    assert [type(e) for e in events] == [SendStarted, SendFinished]
    assert isinstance(events[1].error, ValidationError)


def test_no_number_text_or_token_in_any_event_field() -> None:
    with respx.mock() as router:
        router.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200, json=OK)])
        runs = both(Recorder(), [])
    for _, events in runs:
        for event in events:
            fields = {name: getattr(event, name) for name in event.__slots__ if name not in ("result", "error")}
            assert NUMBER not in repr(fields) and TEXT not in repr(fields) and TOKEN not in repr(fields)
            pickle.dumps(event)


def test_a_handler_that_raises_never_breaks_the_send(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("handler bug")

    with respx.mock() as router:
        router.post(URL).mock(return_value=httpx.Response(200, json=OK))
        client = Client(Smsapi(token=TOKEN, base_url=BASE), on_event=broken)
        with caplog.at_level(logging.WARNING, logger="omnisend"):
            result = client.send(MSG)
    assert result.message_id == "m1"
    assert sum("on_event handler raised" in r.getMessage() for r in caplog.records) == 3


def test_on_event_must_be_callable() -> None:
    with pytest.raises(ValueError, match="on_event must be callable"):
        Client(Smsapi(token=TOKEN, base_url=BASE), on_event="print")  # type: ignore[arg-type]


def test_one_log_record_per_finished_send(caplog: pytest.LogCaptureFixture) -> None:
    with respx.mock() as router:
        router.post(URL).mock(
            side_effect=[httpx.Response(200, json=OK), httpx.Response(200, json={"error": 103, "message": "no credit"})]
        )
        client = Client(Smsapi(token=TOKEN, base_url=BASE))
        with caplog.at_level(logging.DEBUG, logger="omnisend"):
            client.send(MSG)
            with pytest.raises(InsufficientBalance, match="code 103"):
                client.send(Message(to="+48500100200", text="hi", idempotency_key="key-2"))
    records = [r for r in caplog.records if r.name == "omnisend"]
    assert [(r.levelno, "key-1" in r.getMessage(), "m1" in r.getMessage()) for r in records[:1]] == [
        (logging.DEBUG, True, True)
    ]
    assert records[1].levelno == logging.WARNING and "key-2" in records[1].getMessage()
    assert "InsufficientBalance" in records[1].getMessage() and "1 attempt" in records[1].getMessage()
    assert len(records) == 2
    assert all(TOKEN not in r.getMessage() for r in records)


def test_events_a_flow_yields_reach_the_handler() -> None:
    """A router's flow yields ``RouteSkipped``; the client hands it on and resumes the flow."""

    class Skipping(Smsapi):
        def send_flow(self, message: Message, *, idempotency_key: str) -> Flow:  # type: ignore[override]
            resumed = yield RouteSkipped("mobizon", "breaker open")
            assert resumed is None
            result = yield Step(self.build_request(message, idempotency_key=idempotency_key), self.parse_response)
            return result

    events = Recorder()
    with respx.mock() as router:
        router.post(URL).mock(return_value=httpx.Response(200, json=OK))
        with Client(Skipping(token=TOKEN, base_url=BASE), on_event=events) as client:
            client.send(Message(to=["+48500100200", "+48500100201"], text="hi", metadata={"a": "b"}))
    assert RouteSkipped("mobizon", "breaker open") in events
    assert [type(e) for e in events] == [SendStarted, RouteSkipped, AttemptFinished, SendFinished]


def test_status_lookups_tell_attempts_but_are_not_sends() -> None:
    events = Recorder()
    with respx.mock() as router:
        router.get(url__startswith=f"{BASE}/sms.do").mock(
            return_value=httpx.Response(200, json={"count": 1, "list": [{"id": "m1", "status": "DELIVERED", "number": NUMBER}]})
        )
        with Client(Smsapi(token=TOKEN, base_url=BASE), on_event=events) as client:
            client.get_status("m1")
    assert [type(e) for e in events] == [AttemptFinished]


def test_through_a_router_send_finished_names_the_vendor_that_took_it() -> None:
    from omnisend import Failover
    from omnisend.testing import ClickatellEmulator, SmsapiEmulator

    first, second = ClickatellEmulator(balance=0), SmsapiEmulator()
    transport = httpx.MockTransport(
        lambda request: (first if request.url.host == "clickatell.test" else second).transport().handle_request(request)
    )
    router = Failover(first.make_provider("http://clickatell.test"), second.make_provider("http://smsapi.test"))
    events = Recorder()
    with Client(router, on_event=events, http_client=httpx.Client(transport=transport)) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
    assert result.provider == "smsapi"
    started, finished = events[0], events[-1]
    assert isinstance(started, SendStarted) and started.provider == router.name
    assert isinstance(finished, SendFinished) and finished.provider == "smsapi"
    assert [e.provider for e in events if isinstance(e, AttemptFinished)] == ["clickatell", "smsapi"]
