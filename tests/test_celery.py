"""omnisend.celery: one idempotency key per message through a task queue, never sent twice.

The first part runs the task in this process (Celery's eager mode) against a real redis-server and
an in-process emulator, to pin each decision: what is retried by the queue, what is final, what a
redelivered run does. The second part (``slow``) starts real ``celery worker`` processes and an
emulator over TCP: random vendor faults over 1,000+ messages, a worker killed with SIGKILL
mid-send, and a rate shared by two workers, measured at the emulator.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from benchmarks.queue_run import Emulators, Workers, run_breaker, run_faults, run_kill, run_rate
from celery import Celery

from omnisend import (
    Client,
    ConfigurationError,
    DeliveryUnknown,
    Failover,
    InvalidRecipient,
    Message,
    RateLimited,
    RetryPolicy,
    Route,
    SendResult,
    ServiceUnavailable,
    ValidationError,
)
from omnisend.celery import CelerySender, Outcome
from omnisend.testing import Emulator, Fault, get_emulator
from tests.conftest import inprocess_client

NUMBER = "+48500100200"


@pytest.fixture
def app() -> Celery:
    app = Celery(f"omnisend-test-{uuid.uuid4().hex[:6]}", broker="memory://")
    app.conf.update(task_always_eager=True, broker_transport_options={"visibility_timeout": 100})
    return app


@pytest.fixture
def make_sender(app: Celery, redis_url: str) -> Callable[..., tuple[CelerySender, Emulator]]:
    def make(provider: str = "smsapi", *, attempts: int = 1, **options: Any) -> tuple[CelerySender, Emulator]:
        emulator = get_emulator(provider)()
        policy = RetryPolicy(max_attempts=attempts, sleep=lambda _: None)
        sender = CelerySender(
            app,
            client=lambda: inprocess_client(emulator, policy),
            redis_url=redis_url,
            name=f"test.{provider}.{uuid.uuid4().hex[:6]}",
            **{"backoff": 0.0, **options},
        )
        return sender, emulator

    return make


def message(emulator: Emulator, key: str | None = None) -> Message:
    msg = emulator.demo_message(NUMBER, "Your code is 1234")
    return msg.model_copy(update={"idempotency_key": key}) if key else msg


def done(sender: CelerySender, key: str) -> Outcome:
    outcome = sender.outcome(key)
    assert outcome is not None, f"no outcome for {key}"
    return outcome


def test_enqueue_fixes_the_key_and_the_outcome_comes_back_typed(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender()
    assert sender.outcome("never-enqueued") is None
    key = sender.enqueue(message(emulator))
    outcome = done(sender, key)
    assert outcome.ok and outcome.error is None and outcome.key == key and outcome.runs == 1
    assert isinstance(outcome.result, SendResult) and outcome.result.idempotency_key == key
    (record,) = emulator.messages.values()
    assert record.idempotency_key == key and outcome.result.message_id == record.id
    assert outcome.worker and outcome.worker.endswith(f":{os.getpid()}")


def test_a_message_enqueued_twice_is_sent_once(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender("clickatell")  # a vendor that cannot de-duplicate by itself
    first = sender.enqueue(message(emulator, "order-42"))
    again = sender.enqueue_many([message(emulator, "order-42"), message(emulator, "order-42")])
    assert [first, *again] == ["order-42"] * 3
    assert emulator.accepted_count == 1 and done(sender, "order-42").ok


@pytest.mark.parametrize("claim_expired", [False, True], ids=["claim-kept", "claim-expired"])
def test_a_copy_that_looked_just_before_the_first_finished_sends_nothing(
    make_sender: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, claim_expired: bool
) -> None:
    """Found by the queue fault run: copy B saw no outcome, copy A finished and dropped its claim, B
    took a fresh claim and sent again (5 duplicates in 1,000 Clickatell messages)."""
    sender, emulator = make_sender("clickatell")
    msg = message(emulator, "k-race")
    sender.enqueue(msg)  # copy A sends and records its outcome
    if claim_expired:
        sender.store.redis.delete("omnisend:claim:k-race")
    looks: list[str] = []
    real = sender.store.outcome

    def outcome_lands_after_the_first_look(key: str) -> dict[str, Any] | None:
        looks.append(key)
        return None if len(looks) == 1 else real(key)

    monkeypatch.setattr(sender.store, "outcome", outcome_lands_after_the_first_look)
    sender.enqueue(msg)  # copy B
    assert emulator.accepted_count == 1 and len(looks) >= 1


def test_enqueue_many_returns_the_keys_in_order_over_several_connections(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender()
    messages = [emulator.demo_message(f"+4850020{n:04d}", f"n{n}") for n in range(250)]
    keys = sender.enqueue_many(iter(messages), connections=3)
    outcomes = sender.wait(keys, timeout=30)
    assert [o.result.recipients[0].to for o in outcomes if o.result] == [m.to for m in messages]
    assert len(set(keys)) == 250 and emulator.accepted_count == 250
    with pytest.raises(ConfigurationError, match="connections must be a positive int"):
        sender.enqueue_many(messages, connections=0)


def test_rate_limited_is_retried_by_the_queue_after_retry_after(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender("clickatell")
    emulator.script(Fault.vendor_error(emulator.rate_limit_code), Fault.http_error(503))
    key = sender.enqueue(message(emulator))
    outcome = done(sender, key)
    assert outcome.ok and outcome.runs == 3 and emulator.accepted_count == 1


def test_countdowns_follow_the_error_and_stay_below_the_visibility_timeout(make_sender: Callable[..., Any]) -> None:
    sender, _ = make_sender(backoff=1.0, max_backoff=1000.0, max_retries=20)
    assert sender.visibility_timeout() == 100 and sender.max_countdown() == 50
    assert sender._countdown(RateLimited("x", retry_after=7.5, accepted=False), 0) == 7.5
    assert sender._countdown(RateLimited("x", retry_after=7200, accepted=False), 0) == 50  # capped
    assert 0.5 <= (sender._countdown(ServiceUnavailable("x"), 0) or 0) <= 1.0
    assert 4.0 <= (sender._countdown(ServiceUnavailable("x"), 3) or 0) <= 8.0
    assert sender._countdown(ServiceUnavailable("x"), 12) == 50  # backoff grows, the cap holds
    assert sender._countdown(ServiceUnavailable("x", accepted=None), 0) is None  # may have landed
    assert sender._countdown(DeliveryUnknown("x"), 0) is None
    assert sender._countdown(InvalidRecipient("x"), 0) is None
    assert sender._countdown(ServiceUnavailable("x"), 20) is None  # out of queue retries


def test_a_retryable_error_that_never_clears_ends_final_after_max_retries(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender(max_retries=3)
    emulator.script(*[Fault.http_error(503)] * 10)
    key = sender.enqueue(message(emulator))
    outcome = done(sender, key)
    assert isinstance(outcome.error, ServiceUnavailable) and outcome.runs == 4
    assert outcome.error.accepted is False and outcome.error.idempotency_key == key
    assert emulator.accepted_count == 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [(Fault.drop_after_accept(), DeliveryUnknown), (Fault.vendor_error(25), InvalidRecipient)],
    ids=["delivery-unknown", "invalid-recipient"],
)
def test_delivery_unknown_and_refusals_are_final_at_once(
    make_sender: Callable[..., Any], fault: Fault, error: type[Exception]
) -> None:
    sender, emulator = make_sender("clickatell")
    emulator.script(fault)
    key = sender.enqueue(message(emulator))
    outcome = done(sender, key)
    assert type(outcome.error) is error and outcome.runs == 1 and outcome.error.idempotency_key == key


def _redelivered(sender: CelerySender, msg: Message, task_id: str) -> None:
    """What the broker does after a worker died mid-send: the same task (same id) runs again."""
    sender.store.claim(msg.idempotency_key or "", {"task": task_id, "state": "sending", "worker": "gone:1", "since": 0})
    sender.task.apply(args=[{"v": 1, "message": msg.model_dump(mode="json")}], task_id=task_id)


@pytest.mark.parametrize("landed", [True, False], ids=["first-copy-landed", "first-copy-lost"])
def test_a_redelivered_run_resends_on_a_deduplicating_vendor(make_sender: Callable[..., Any], landed: bool) -> None:
    sender, emulator = make_sender("smsapi")
    msg = message(emulator, "k-redelivered")
    if landed:
        with inprocess_client(emulator, None) as client:
            client.send(msg)
    _redelivered(sender, msg, "task-1")
    outcome = done(sender, "k-redelivered")
    assert outcome.ok and outcome.runs == 2 and emulator.accepted_count == 1
    assert outcome.result is not None and outcome.result.deduplicated is landed


def test_a_redelivered_run_records_delivery_unknown_where_the_vendor_cannot_deduplicate(
    make_sender: Callable[..., Any],
) -> None:
    sender, emulator = make_sender("clickatell")
    msg = message(emulator, "k-unknown")
    _redelivered(sender, msg, "task-1")
    outcome = done(sender, "k-unknown")
    assert isinstance(outcome.error, DeliveryUnknown) and outcome.error.accepted is None
    assert outcome.error.idempotency_key == "k-unknown" and outcome.error.provider == "clickatell"
    assert "gone:1" in str(outcome.error) and "cannot de-duplicate" in str(outcome.error)
    assert emulator.accepted_count == 0  # not sent again


def test_a_run_for_a_key_claimed_by_another_task_sends_nothing(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender("clickatell")
    msg = message(emulator, "k-busy")
    sender.store.claim("k-busy", {"task": "another-task", "state": "sending"})
    sender.task.apply(args=[{"v": 1, "message": msg.model_dump(mode="json")}], task_id="this-task")
    assert emulator.accepted_count == 0 and sender.outcome("k-busy") is None


def test_an_unexpected_exception_is_recorded_as_delivery_unknown_and_raised(
    make_sender: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, emulator = make_sender()

    def broken(self: Client, message: Message, **_: Any) -> SendResult:
        raise RuntimeError("a bug in a custom provider")

    monkeypatch.setattr(Client, "send", broken)
    sender.app.conf.task_eager_propagates = True
    with pytest.raises(RuntimeError, match="a bug in a custom provider"):
        sender.enqueue(message(emulator, "k-bug"))
    outcome = done(sender, "k-bug")
    assert isinstance(outcome.error, DeliveryUnknown) and "unexpected RuntimeError" in str(outcome.error)


def test_the_producer_side_refuses_what_would_break_the_guarantees(make_sender: Callable[..., Any], app: Celery) -> None:
    sender, emulator = make_sender()
    with pytest.raises(ConfigurationError, match="longer than half the broker's visibility timeout"):
        sender.enqueue(message(emulator), countdown=60)
    with pytest.raises(ValidationError, match="enqueue takes an omnisend.Message"):
        sender.enqueue({"to": NUMBER})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="cannot travel through the queue as JSON"):
        sender.enqueue(message(emulator).model_copy(update={"options": {"x": object()}}))
    with pytest.raises(ConfigurationError, match="takes a function that builds a Client"):
        CelerySender(app, client=Client(emulator.make_provider("http://x")), redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError, match="needs redis_url="):
        CelerySender(app, client=lambda: Client(emulator.make_provider("http://x")))
    with pytest.raises(TimeoutError, match="1 of 1 messages have no outcome after 0.05 s"):
        sender.wait(["nothing"], timeout=0.05, interval=0.01)


def test_rate_limits_naming_a_provider_the_client_lacks_are_refused(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender(rate_limits={"smsapy": "5/second"})
    with pytest.raises(ConfigurationError, match="rate_limits name smsapy, which the client does not send through"):
        sender.client()


def test_rate_limits_take_a_slot_per_http_request(make_sender: Callable[..., Any]) -> None:
    sender, emulator = make_sender(attempts=3, rate_limits={"smsapi": "2/minute"}, rate_limit_wait=0.0)
    emulator.script(Fault.http_error(503))  # one failed request, one good one: both slots taken
    key = sender.enqueue(message(emulator))
    assert done(sender, key).ok
    limited = sender.enqueue(message(emulator, "k-third"))
    outcome = done(sender, limited)
    assert isinstance(outcome.error, RateLimited) and "shared rate limit 2/60s" in str(outcome.error)
    assert outcome.error.accepted is False and emulator.accepted_count == 1


def test_a_client_that_can_outlast_the_visibility_timeout_is_reported(
    make_sender: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    sender, emulator = make_sender(attempts=3)  # visibility timeout 100 s in this app
    provider = emulator.make_provider("http://x")
    assert sender.longest_send(Client(provider, timeout=httpx.Timeout(20.0, connect=5.0))) == 20.0  # the deadline
    assert sender.longest_send(Client(provider, timeout=None)) == float("inf")
    limited, _ = make_sender(rate_limits={"smsapi": "5/second"}, rate_limit_wait=2.0)
    assert limited.longest_send(Client(provider, timeout=20.0)) == 20.0 + 3 * 2.0  # 3 attempts may each wait
    sender.client_factory = lambda: Client(provider, timeout=80.0)
    with caplog.at_level("WARNING", logger="omnisend.celery"):
        sender.client()
    assert "up to 80 s with this client, more than half the broker's visibility timeout (100 s)" in caplog.text
    quick, _ = make_sender(attempts=1)
    caplog.clear()
    quick.client_factory = lambda: Client(emulator.make_provider("http://x"), retry=None, timeout=5.0)
    with caplog.at_level("WARNING", logger="omnisend.celery"):
        quick.client()
    assert caplog.text == ""


def test_rate_limits_apply_per_route_inside_a_router(
    app: Celery, redis_url: str, serve: Callable[[Emulator], Any]
) -> None:
    """A route out of shared slots refuses with RateLimited(accepted=False): the router moves on."""
    smsapi, clickatell = get_emulator("smsapi")(), get_emulator("clickatell")()
    routes = [
        Route(smsapi.make_provider(serve(smsapi).base_url)),
        Route(clickatell.make_provider(serve(clickatell).base_url), sender="15551234567"),
    ]
    sender = CelerySender(
        app,
        client=lambda: Client(Failover(*routes), retry=None),
        redis_url=redis_url,
        name="test.routed-limits",
        rate_limits={"smsapi": "1/minute"},
        rate_limit_wait=0.0,
    )
    first, second = (sender.enqueue(message(smsapi).model_copy(update={"sender": None})) for _ in range(2))
    one, two = done(sender, first), done(sender, second)
    assert one.result is not None and one.result.provider == "smsapi"
    assert two.result is not None and two.result.provider == "clickatell"
    assert [type(e) for e in two.result.route_errors] == [RateLimited]
    assert (smsapi.accepted_count, clickatell.accepted_count) == (1, 1)


# -- real workers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulators() -> Iterator[Emulators]:
    with Emulators() as emulators:
        yield emulators


@pytest.fixture(scope="module")
def thread_workers(redis_server_url: str, emulators: Emulators) -> Iterator[Workers]:
    """Two worker processes, eight threads each."""
    with Workers(redis_server_url, urls=emulators.urls, count=2, pool="threads", concurrency=8) as workers:
        yield workers


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("provider", "messages"), [("smsapi", 1000), ("clickatell", 300)])
def test_fault_injection_through_the_queue(
    redis_server_url: str, emulators: Emulators, thread_workers: Workers, provider: str, messages: int
) -> None:
    run = run_faults(redis_server_url, emulators, thread_workers, provider=provider, messages=messages, seed=11)
    report = run.summary()
    assert run.final == messages, report
    assert run.duplicates == 0, report
    assert run.untyped == [], report
    assert run.mismatches == [], report
    assert run.ok + run.delivery_unknown_landed == run.accepted, report
    assert run.enqueued == messages + messages // 10, report
    assert run.ok > messages // 2, report
    assert sum(run.faults.values()) > messages // 5, report
    if messages >= 1000:  # about 1.5 % of messages need a queue retry: certain at this size, not at 300
        assert run.runs > messages, report


@pytest.mark.slow
@pytest.mark.redis
def test_rate_limits_hold_across_two_workers(redis_server_url: str, emulators: Emulators, thread_workers: Workers) -> None:
    run = run_rate(redis_server_url, emulators, thread_workers, messages=70)
    assert run.max_in_any_second <= 20, run.summary()
    assert run.seconds >= 2.5, run.summary()  # 70 requests at 20 in any second take at least 3 windows


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(240)
def test_a_worker_killed_with_sigkill_mid_send_neither_loses_nor_doubles_the_message(
    redis_server_url: str, emulators: Emulators
) -> None:
    """The pool process sending is killed while the vendor holds the request it already took.

    ``reject_on_worker_lost`` puts the task back; the redelivered run finds its own claim: SMSAPI
    (de-duplicates) is sent again with the same key and answers "duplicate" (one message), Clickatell
    is recorded as DeliveryUnknown (one message, not sent again)."""
    with Workers(redis_server_url, urls=emulators.urls, count=2, pool="prefork", concurrency=1) as workers:
        smsapi = run_kill(redis_server_url, emulators, workers, provider="smsapi")
        assert smsapi.accepted == 1 and smsapi.outcome.ok, smsapi.summary()
        assert smsapi.outcome.result is not None and smsapi.outcome.result.deduplicated, smsapi.summary()
        assert smsapi.outcome.runs == 2, smsapi.summary()
        clickatell = run_kill(redis_server_url, emulators, workers, provider="clickatell")
        assert clickatell.accepted == 1, clickatell.summary()
        assert isinstance(clickatell.outcome.error, DeliveryUnknown), clickatell.summary()
        assert clickatell.outcome.runs == 2, clickatell.summary()



@pytest.mark.slow
@pytest.mark.redis
def test_a_routers_breaker_state_is_shared_across_workers(
    redis_server_url: str, emulators: Emulators, thread_workers: Workers
) -> None:
    """Clickatell refuses the key: the first send opens its circuit (AuthError) and fails over to SMSAPI.
    With the breaker in Redis, no other worker process tries Clickatell again; with each process's own
    breaker, each would (one request per process at least)."""
    run = run_breaker(redis_server_url, emulators, thread_workers, messages=30)
    assert all(o.ok and o.result is not None and o.result.provider == "smsapi" for o in run.outcomes), run.summary()
    first = run.outcomes[0].result
    assert first is not None and [type(e).__name__ for e in first.route_errors] == ["AuthError"], run.summary()
    assert run.clickatell_requests == 1, run.summary()
    assert len(run.workers) == 2, run.summary()  # both worker processes sent, and skipped Clickatell
