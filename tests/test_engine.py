"""The send engine without any I/O: the driver's commands, and the one verdict per attempt.

These drive :func:`omnisend._engine.drive` by hand, answering each ``Send`` with a response (or an
exception) and each ``Pause`` with ``None``, as ``Client`` and ``AsyncClient`` do.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from omnisend import DeliveryUnknown, Message, RateLimited, RetryPolicy, ServiceUnavailable, TransportError
from omnisend._engine import Call, Outcome, Pause, Send, drive, verdict
from omnisend.providers import Clickatell, Smsapi
from omnisend.providers.base import Repeat, Step

TO = "+48500100200"


def smsapi_ok(request: httpx.Request) -> httpx.Response:
    body = {"count": 1, "list": [{"id": "M1", "points": 1, "number": TO[1:], "status": "QUEUE"}]}
    return httpx.Response(200, json=body, request=request)


def run_by_hand(provider: Any, answers: list[Any], policy: RetryPolicy) -> tuple[list[Any], Any]:
    """Drive one send; each ``Send`` takes the next answer (a function of the request, or an exception)."""
    message = Message(to=TO, text="hi")
    call = Call(provider, idempotency_key="key-1", key_from_caller=False, timeout=None)
    driver = drive(call, provider.send_step(message, idempotency_key="key-1"), policy, lambda: False)
    commands: list[Any] = []
    answer: object = None
    while True:
        try:
            command = driver.send(answer)
        except StopIteration as done:
            return commands, done.value
        commands.append(command)
        if isinstance(command, Send):
            given = answers.pop(0)
            answer = given if isinstance(given, BaseException) else given(command.request)
        else:
            answer = None


def test_a_retried_send_is_send_pause_send_with_the_same_request() -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, request=request)

    commands, result = run_by_hand(Smsapi(token="t0ken"), [busy, smsapi_ok], RetryPolicy(jitter=False))
    assert [type(c) for c in commands] == [Send, Pause, Send]
    assert commands[0].request is commands[2].request and commands[1].seconds == 0.5
    assert result.message_id == "M1" and result.attempts == 2 and result.idempotency_key == "key-1"


def test_a_dropped_answer_where_the_vendor_cannot_deduplicate_is_one_send_and_no_pause() -> None:
    drop = httpx.ReadError("connection reset")
    with pytest.raises(DeliveryUnknown, match="cannot de-duplicate") as info:
        run_by_hand(Clickatell(api_key="k3y"), [drop], RetryPolicy())
    error = info.value
    assert error.retryable is False and error.attempts == 1 and error.idempotency_key == "key-1"
    assert isinstance(error.__cause__, httpx.ReadError)


def test_a_dropped_answer_where_the_vendor_deduplicates_is_sent_again_with_the_same_key() -> None:
    commands, result = run_by_hand(
        Smsapi(token="t0ken"), [httpx.ReadError("reset"), smsapi_ok], RetryPolicy(jitter=False)
    )
    assert [type(c) for c in commands] == [Send, Pause, Send] and result.attempts == 2
    assert b"idx=key-1" in commands[2].request.content


def verdict_of(error: Exception, repeat: Repeat, attempt: int = 1, **policy: Any) -> Any:
    provider = Smsapi(token="t0ken")
    call = Call(provider, idempotency_key="k", key_from_caller=False, timeout=None)
    call.start_step(Step(httpx.Request("POST", "http://x.test"), lambda r: r, repeat=repeat))
    call.step_attempts = attempt
    return verdict(error, call, RetryPolicy(jitter=False, **policy))


@pytest.mark.parametrize(
    ("error", "repeat", "outcome", "retry"),
    [
        (TransportError("refused", accepted=False, retryable=True), Repeat.ONCE, Outcome.NOT_SENT, True),
        (TransportError("no answer", accepted=None), Repeat.ONCE, Outcome.MAY_HAVE_LANDED, False),
        (TransportError("no answer", accepted=None), Repeat.DEDUPLICATED, Outcome.MAY_HAVE_LANDED, True),
        (TransportError("no answer", accepted=None), Repeat.READ, Outcome.MAY_HAVE_LANDED, True),
        (ServiceUnavailable("busy", accepted=None), Repeat.ONCE, Outcome.MAY_HAVE_LANDED, False),
        (ServiceUnavailable("busy"), Repeat.ONCE, Outcome.NOT_SENT, True),
        (RateLimited("slow down", retry_after=2.0), Repeat.ONCE, Outcome.NOT_SENT, True),
    ],
)
def test_one_verdict_per_attempt(error: Exception, repeat: Repeat, outcome: Outcome, retry: bool) -> None:
    decision = verdict_of(error, repeat)
    assert (decision.outcome, decision.retry) == (outcome, retry)
    assert (decision.wait is not None) == retry
    if not retry and outcome is Outcome.MAY_HAVE_LANDED:
        assert isinstance(decision.error, DeliveryUnknown) and decision.error.retryable is False


def test_the_verdict_waits_what_the_vendor_asks_and_stops_at_the_cap_and_the_last_attempt() -> None:
    assert verdict_of(RateLimited("slow", retry_after=2.0), Repeat.ONCE).wait == 2.0
    assert verdict_of(RateLimited("slow", retry_after=90.0), Repeat.ONCE).retry is False
    last = verdict_of(ServiceUnavailable("busy"), Repeat.ONCE, attempt=3)
    assert last.retry is False and "max_attempts=3" in last.reason


def test_the_verdict_never_changes_the_error_it_is_given() -> None:
    error = TransportError("no answer", accepted=None)
    before = dict(error.__dict__)
    decision = verdict_of(error, Repeat.ONCE)
    assert error.__dict__ == before and decision.error is not error


def test_a_send_never_imports_tenacity() -> None:
    """The engine retries by itself: tenacity is loaded only when a tenacity object is asked for."""
    import subprocess
    import sys

    program = (
        "import sys, httpx\n"
        "from omnisend import Client, Message\n"
        "from omnisend.providers import Smsapi\n"
        'body = b\'{"count": 1, "list": [{"id": "M1", "points": 1, "number": "48500100200", "status": "QUEUE"}]}\'\n'
        "transport = httpx.MockTransport(lambda r: httpx.Response(200, content=body))\n"
        "with Client(Smsapi(token='t0ken'), http_client=httpx.Client(transport=transport)) as client:\n"
        "    assert client.send(Message(to='+48500100200', text='hi')).message_id == 'M1'\n"
        "assert 'tenacity' not in sys.modules, 'a send imported tenacity'\n"
        "from omnisend import RetryPolicy\n"
        "RetryPolicy().retrying(label='x')\n"
        "assert 'tenacity' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_cancelled_async_send_is_told_as_it_may_have_landed(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from omnisend import AsyncClient
    from omnisend.events import SendFinished

    seen: list[object] = []

    async def main() -> None:
        entered = asyncio.Event()

        async def hang(request: httpx.Request) -> httpx.Response:
            entered.set()
            await asyncio.Event().wait()  # the request is out; no answer ever comes
            raise AssertionError("unreachable")

        http = httpx.AsyncClient(transport=httpx.MockTransport(hang))
        async with AsyncClient(Clickatell(api_key="k3y"), http_client=http, on_event=seen.append) as client:
            task = asyncio.ensure_future(client.send(Message(to=TO, text="hi")))
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with caplog.at_level("WARNING", logger="omnisend"):
        asyncio.run(main())
    (finished,) = [e for e in seen if isinstance(e, SendFinished)]
    assert isinstance(finished.error, DeliveryUnknown) and finished.attempts == 1
    assert "cancelled after a request went out" in caplog.text and finished.idempotency_key in caplog.text


def test_an_async_send_many_left_early_logs_the_keys_it_did_not_hand_over(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import contextlib

    from omnisend import AsyncClient

    async def main() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(smsapi_ok))
        messages = [Message(to=TO, text=f"hi {n}", idempotency_key=f"key-{n}") for n in range(20)]
        async with AsyncClient(Smsapi(token="t0ken"), http_client=http) as client:
            async with contextlib.aclosing(client.send_many(messages, concurrency=5, batch=False)) as outcomes:
                async for _ in outcomes:
                    break  # the others were sent (or are on their way): their keys must be told

    with caplog.at_level("WARNING", logger="omnisend"):
        asyncio.run(main())
    assert "send_many stopped early" in caplog.text and "key-1" in caplog.text


def test_a_long_retry_after_is_not_waited_whatever_the_error_class() -> None:
    busy = ServiceUnavailable("busy", retry_after=3600.0)
    decision = verdict_of(busy, Repeat.ONCE)
    assert decision.retry is False and "max_retry_after" in decision.reason


def test_a_chained_transport_error_keeps_no_frames_holding_the_request() -> None:
    from omnisend._answer import clean_cause

    try:
        raise httpx.ReadError("reset", request=httpx.Request("POST", "https://x.test", headers={"authorization": "k"}))
    except httpx.ReadError as exc:
        chained = clean_cause(exc)
    assert chained.__traceback__ is None and isinstance(chained, httpx.ReadError)


def test_a_retry_refused_after_its_wait_is_not_announced_as_a_retry() -> None:
    """A failed attempt is told with its wait only once the retry really begins: a client closed
    during the wait ends the send, and the attempt is told as not retried."""
    from omnisend import Client, ClientClosed
    from omnisend.events import AttemptFinished

    seen: list[object] = []
    transport = httpx.MockTransport(lambda request: httpx.Response(503, request=request))
    client = Client(Smsapi(token="t0ken"), http_client=httpx.Client(transport=transport), on_event=seen.append)
    policy = RetryPolicy(sleep=lambda seconds: client.close(), jitter=False)  # closed while waiting
    with pytest.raises(ClientClosed, match="closed"):
        client.send(Message(to=TO, text="hi"), retry=policy)
    (attempt,) = [e for e in seen if isinstance(e, AttemptFinished)]
    assert attempt.error is not None and attempt.retry_in is None


# -- a step that sends nothing (Repeat.PREPARE) ----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        (TransportError("no answer", accepted=None), TransportError),
        (DeliveryUnknown("no answer"), TransportError),
        (ServiceUnavailable("busy", accepted=None, retryable=False), ServiceUnavailable),
    ],
    ids=["timeout", "delivery-unknown", "ambiguous-vendor-code"],
)
def test_a_step_that_sends_nothing_fails_as_certainly_not_sent_and_is_retried(error: Any, cls: type) -> None:
    decision = verdict_of(error, Repeat.PREPARE)
    new = decision.error
    assert decision.outcome is Outcome.NOT_SENT and decision.retry is True and decision.wait == 0.5
    assert type(new) is cls and new is not error and new.accepted is False and new.retryable is True
    assert f"{error.message}; the message was never sent (this step only prepares it), so nothing went out" in str(new)
    assert error.accepted is None  # the error raised is never changed
    if isinstance(error, DeliveryUnknown):
        assert new.__cause__ is error


def test_a_step_that_sends_nothing_stops_at_the_last_attempt_and_never_retries_a_redirect() -> None:
    last = verdict_of(TransportError("no answer", accepted=None), Repeat.PREPARE, attempt=3)
    assert (last.outcome, last.retry, last.error.accepted) == (Outcome.NOT_SENT, False, False)
    redirect = verdict_of(TransportError("moved", accepted=None, http_status=302), Repeat.PREPARE)
    assert (redirect.outcome, redirect.retry) == (Outcome.NOT_SENT, False)
    certain = ServiceUnavailable("busy")  # already certainly not sent: kept as it is
    assert verdict_of(certain, Repeat.PREPARE).error is certain


def test_a_flow_sees_its_prepare_step_fail_as_not_sent_and_never_reaches_the_step_that_sends() -> None:
    """The flow does not rewrite errors: the engine hands it (and its caller) the not-sent error."""
    provider = Clickatell(api_key="k3y")
    seen: list[BaseException] = []

    def flow() -> Any:
        try:
            yield Step(httpx.Request("POST", "https://x.test/prepare"), lambda r: r, repeat=Repeat.PREPARE)
        except TransportError as exc:
            seen.append(exc)
            raise
        yield Step(httpx.Request("POST", "https://x.test/send"), lambda r: r)  # pragma: no cover

    call = Call(provider, idempotency_key="key-1", key_from_caller=False, timeout=None)
    driver = drive(call, flow(), RetryPolicy(jitter=False), lambda: False)
    commands: list[Any] = []
    answer: object = None
    with pytest.raises(TransportError, match="was never sent") as info:
        while True:
            command = driver.send(answer)
            commands.append(command)
            answer = httpx.ReadTimeout("slow") if isinstance(command, Send) else None
    error = info.value
    assert [type(c) for c in commands] == [Send, Pause, Send, Pause, Send]
    assert all(c.request.url.path == "/prepare" for c in commands if isinstance(c, Send))
    assert not isinstance(error, DeliveryUnknown) and error.accepted is False and error.attempts == 3
    assert seen == [error] and error.idempotency_key == "key-1"


def test_the_retry_log_numbers_attempts_as_the_events_do_across_steps(caplog: pytest.LogCaptureFixture) -> None:
    """In a flow of several steps, "attempt N failed" is the call's N-th attempt, the number its
    ``AttemptFinished`` event carries, not the count within one step."""
    from omnisend.events import AttemptFinished

    def status(response: httpx.Response) -> int:
        if response.status_code == 503:
            raise ServiceUnavailable("busy", http_status=503)
        return response.status_code

    def flow() -> Any:
        yield Step(httpx.Request("POST", "https://x.test/first"), status, repeat=Repeat.READ)
        return (yield Step(httpx.Request("POST", "https://x.test/second"), status, repeat=Repeat.READ))

    seen: list[object] = []
    statuses = iter([503, 200, 503, 200])  # each step fails once, then succeeds
    transport = httpx.MockTransport(lambda request: httpx.Response(next(statuses), request=request))
    call = Call(Smsapi(token="t0ken"), idempotency_key="k", key_from_caller=False, timeout=None, on_event=seen.append)
    driver = drive(call, flow(), RetryPolicy(jitter=False), lambda: False)
    answer: object = None
    with caplog.at_level("INFO", logger="omnisend"), httpx.Client(transport=transport) as http:
        with pytest.raises(StopIteration) as done:
            while True:
                command = driver.send(answer)
                answer = http.send(command.request) if isinstance(command, Send) else None
    assert done.value.value == 200
    logged = [r.getMessage().split(" failed")[0] for r in caplog.records if "retrying" in r.getMessage()]
    told = [e.attempt for e in seen if isinstance(e, AttemptFinished) and e.error is not None]
    assert logged == ["smsapi: attempt 1", "smsapi: attempt 3"] and told == [1, 3]


def test_a_send_cancelled_while_a_step_that_sends_nothing_is_out_was_not_sent() -> None:
    """Cancelled during a ``Repeat.PREPARE`` request (a campaign being set up): nothing can have gone
    out, so the send ends certainly not sent; during a sending request it may have been sent."""
    for repeat, expected, words in [
        (Repeat.PREPARE, TransportError, "while preparing the send"),
        (Repeat.ONCE, DeliveryUnknown, "it may have been sent"),
    ]:
        call = Call(Smsapi(token="t0ken"), idempotency_key="k", key_from_caller=False, timeout=None)
        call.start_step(Step(httpx.Request("POST", "https://x.test/step"), lambda r: r, repeat=repeat))
        call.in_flight = True
        error = call.cancelled()
        assert type(error) is expected and words in error.message
        assert error.accepted is (False if repeat is Repeat.PREPARE else None)


@pytest.mark.parametrize(("repeat", "retryable"), [(Repeat.ONCE, False), (Repeat.DEDUPLICATED, True)])
def test_a_send_cancelled_between_steps_after_one_sent_may_have_been_sent(repeat: Repeat, retryable: bool) -> None:
    """A split send cancelled after its first chunk went out, before the next request: never told as
    "certainly not sent"; a repeat is safe only where the vendor de-duplicates."""
    call = Call(Smsapi(token="t0ken"), idempotency_key="k", key_from_caller=False, timeout=None)
    first = Step(httpx.Request("POST", "https://x.test/chunk-1"), lambda r: r.status_code, repeat=repeat)
    call.start_step(first)
    assert call.finish(first, httpx.Response(200)) == 200
    call.start_step(Step(httpx.Request("POST", "https://x.test/chunk-2"), lambda r: r, repeat=repeat))
    error = call.cancelled()
    assert isinstance(error, DeliveryUnknown) and error.retryable is retryable and "may have been sent" in error.message
    fresh = Call(Smsapi(token="t0ken"), idempotency_key="k", key_from_caller=False, timeout=None)
    fresh.start_step(Step(httpx.Request("POST", "https://x.test/chunk-1"), lambda r: r, repeat=repeat))
    assert fresh.cancelled().accepted is False  # nothing out yet: certainly not sent
