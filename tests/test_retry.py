"""The retry engine: Retry-After parsing, backoff, decisions, and the client loop (respx)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
import respx
import tenacity

from omnisend import (
    AsyncClient,
    AuthError,
    Client,
    ConfigurationError,
    DeliveryUnknown,
    Message,
    OmnisendError,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    TransportError,
)
from omnisend.providers import Smsapi
from omnisend.retry import parse_retry_after

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)
BASE = "https://api.smsapi.test"
URL = f"{BASE}/sms.do"
OK = {"count": 1, "list": [{"id": "1", "number": "48500100200", "status": "QUEUE"}]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("  3 ", 3.0),
        ("-1", None),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("1e400", None),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Sun, 22 Nov 2026 12:00:10 GMT", 10.0),
        ("Sunday, 22-Nov-26 12:00:10 GMT", 10.0),
        ("Mon, 99 Foo 2026 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(initial_wait=0.5, max_wait=3.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_stays_within_half_to_full() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=8.0)
    waits = [policy.backoff(3) for _ in range(200)]
    assert all(2.0 <= w <= 4.0 for w in waits) and len(set(waits)) > 100


@pytest.mark.parametrize(
    ("error", "attempt", "retry", "reason"),
    [
        (RateLimited(), 1, True, "RateLimited is retryable"),
        (RateLimited(retry_after=61), 1, False, "above max_retry_after"),
        (RateLimited(retry_after=60), 1, True, "retryable"),
        (ServiceUnavailable(), 2, True, "retryable"),
        (ServiceUnavailable(), 3, False, "max_attempts=3 reached"),
        (AuthError(), 1, False, "AuthError is not retryable"),
        (DeliveryUnknown(), 1, False, "cannot de-duplicate"),
        (ValueError("x"), 1, False, "not an omnisend error"),
    ],
)
def test_explain(error: BaseException, attempt: int, retry: bool, reason: str) -> None:
    decision = RetryPolicy().explain(error, attempt)
    assert decision.retry is retry and reason in decision.reason


@pytest.mark.parametrize("kwargs", [dict(max_attempts=0), dict(initial_wait=-1), dict(max_retry_after=-5)])
def test_bad_policy_is_a_configuration_error(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError, match="RetryPolicy"):
        RetryPolicy(**kwargs)


def client(policy: RetryPolicy | None) -> Client:
    return Client(Smsapi(token="t0ken-for-tests", base_url=BASE), retry=policy)


MSG = Message(to="+48500100200", text="hi")


@pytest.mark.parametrize(
    ("failures", "expected_sleeps"),
    [
        ([httpx.Response(429, headers={"Retry-After": "2"})], [2.0]),
        ([httpx.Response(429, headers={"Retry-After-Ms": "1500"})], [1.5]),
        ([httpx.Response(429, headers={"Retry-After": "0"})], [0.0]),
        ([httpx.Response(200, json={"error": 52})], [60.0]),
        ([httpx.Response(503, headers={"Retry-After": "4"}), httpx.Response(429, headers={"Retry-After": "1"})], [4.0, 1.0]),
    ],
)
def test_retry_after_is_honoured(sleeps, failures: list, expected_sleeps: list[float]) -> None:
    with respx.mock() as router:
        route = router.post(URL).mock(side_effect=[*failures, httpx.Response(200, json=OK)])
        result = client(RetryPolicy(sleep=sleeps)).send(MSG)
    assert sleeps == expected_sleeps
    assert result.attempts == route.call_count == len(failures) + 1


def test_retry_after_above_the_cap_is_not_retried(sleeps) -> None:
    with respx.mock() as router:
        route = router.post(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
        with pytest.raises(RateLimited, match="HTTP 429") as info:
            client(RetryPolicy(sleep=sleeps)).send(MSG)
    assert route.call_count == 1 and sleeps == [] and info.value.retry_after == 3600.0


def test_backoff_without_hint(sleeps) -> None:
    with respx.mock() as router:
        router.post(URL).mock(side_effect=[httpx.Response(200, json={"error": 200})] * 3 + [httpx.Response(200, json=OK)])
        with pytest.raises(ServiceUnavailable, match="code 200") as info:
            client(RetryPolicy(sleep=sleeps, jitter=False, initial_wait=0.25)).send(MSG)
    assert sleeps == [0.25, 0.5] and info.value.attempts == 3


@pytest.mark.parametrize(("max_attempts", "calls"), [(1, 1), (2, 2), (5, 5)])
def test_attempt_counts(sleeps, max_attempts: int, calls: int) -> None:
    with respx.mock() as router:
        route = router.post(URL).mock(return_value=httpx.Response(503))
        with pytest.raises(ServiceUnavailable, match="HTTP 503") as info:
            client(RetryPolicy(max_attempts=max_attempts, sleep=sleeps)).send(MSG)
    assert route.call_count == calls == info.value.attempts


def test_retry_none_disables_retries() -> None:
    with respx.mock() as router:
        route = router.post(URL).mock(return_value=httpx.Response(503))
        with pytest.raises(ServiceUnavailable, match="HTTP 503"):
            client(None).send(MSG)
    assert route.call_count == 1


def test_per_call_retry_override(sleeps) -> None:
    with respx.mock() as router:
        route = router.post(URL).mock(return_value=httpx.Response(503))
        with pytest.raises(ServiceUnavailable, match="HTTP 503"):
            client(RetryPolicy(sleep=sleeps)).send(MSG, retry=RetryPolicy(max_attempts=2, sleep=sleeps))
    assert route.call_count == 2


def test_the_key_is_reused_on_every_attempt_and_new_per_send(sleeps) -> None:
    with respx.mock() as router:
        route = router.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(429), httpx.Response(200, json=OK), httpx.Response(200, json=OK)])
        c = client(RetryPolicy(sleep=sleeps))
        first, second = c.send(MSG), c.send(MSG)
    keys = [dict(x.split("=") for x in call.request.content.decode().split("&"))["idx"] for call in route.calls]
    assert keys[0] == keys[1] == keys[2] == first.idempotency_key
    assert keys[3] == second.idempotency_key != first.idempotency_key


def test_never_a_tenacity_retry_error(sleeps) -> None:
    with respx.mock() as router:
        router.post(URL).mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(TransportError, match="could not connect") as info:
            client(RetryPolicy(sleep=sleeps)).send(MSG)
    assert not isinstance(info.value, tenacity.RetryError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_one_log_line_per_retry(sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="omnisend")
    with respx.mock() as router:
        router.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json=OK)])
        client(RetryPolicy(sleep=sleeps)).send(MSG)
    lines = [r.getMessage() for r in caplog.records if r.name == "omnisend"]
    assert len(lines) == 2
    assert lines[0].startswith("smsapi: attempt 1 failed with smsapi: HTTP 503")
    assert lines[1] == "smsapi: attempt 2 failed with smsapi: HTTP 429 Too Many Requests (HTTP 429); retrying in 1.00s"


@pytest.mark.parametrize("code", [101, 103, 13, 104, 105])
def test_no_retry_on_non_retryable_classes(sleeps, code: int) -> None:
    with respx.mock() as router:
        route = router.post(URL).mock(return_value=httpx.Response(200, json={"error": code}))
        with pytest.raises(OmnisendError, match=f"code {code}"):
            client(RetryPolicy(sleep=sleeps)).send(MSG)
    assert route.call_count == 1 and sleeps == []


def test_async_and_sync_make_the_same_decisions(sleeps) -> None:
    import asyncio

    answers = [httpx.Response(503), httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json=OK)]

    async def run_async() -> tuple[int, list[float]]:
        async_sleeps: list[float] = []
        with respx.mock() as router:
            route = router.post(URL).mock(side_effect=list(answers))
            async with AsyncClient(Smsapi(token="t0ken-for-tests", base_url=BASE), retry=RetryPolicy(sleep=async_sleeps.append, jitter=False)) as ac:
                result = await ac.send(MSG)
        return route.call_count + result.attempts, async_sleeps

    with respx.mock() as router:
        route = router.post(URL).mock(side_effect=list(answers))
        result = client(RetryPolicy(sleep=sleeps, jitter=False)).send(MSG)
    assert asyncio.run(run_async()) == (route.call_count + result.attempts, sleeps)


@pytest.mark.anyio
async def test_async_sleep_may_be_a_coroutine() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    with respx.mock() as router:
        router.post(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json=OK)])
        async with AsyncClient(Smsapi(token="t0ken-for-tests", base_url=BASE), retry=RetryPolicy(sleep=fake_sleep)) as ac:
            result = await ac.send(MSG)
    assert slept == [2.0] and result.attempts == 2


@pytest.mark.anyio
async def test_cancelling_an_async_send_stops_retrying() -> None:
    import asyncio

    started = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        started.set()
        await asyncio.sleep(30)

    with respx.mock() as router:
        route = router.post(URL).mock(return_value=httpx.Response(503))
        async with AsyncClient(Smsapi(token="t0ken-for-tests", base_url=BASE), retry=RetryPolicy(sleep=slow_sleep)) as ac:
            task = asyncio.create_task(ac.send(MSG))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.05)
    assert route.call_count == 1
