"""Shared state in a real redis-server (omnisend.stores): rates in any window, claims, outcomes, webhook replays."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from benchmarks.queue_run import max_in_window

from omnisend import AuthError, ConfigurationError, DeliveryReport, DeliveryStatus, RateLimited, ServiceUnavailable
from omnisend.routing import BreakerStore, MemoryBreakerStore
from omnisend.stores import (
    Rate,
    RedisBreakerStore,
    RedisOutcomeStore,
    RedisRateLimiter,
    RedisReplayStore,
    connect,
    parse_rate,
)
from omnisend.webhooks import MemoryReplayStore, ReplayGuard, ReplayStore


@pytest.mark.parametrize(
    ("spec", "rate"),
    [
        ("50/second", Rate(50, 1.0)),
        ("50/s", Rate(50, 1.0)),
        ("50 per second", Rate(50, 1.0)),
        ("100/minute", Rate(100, 60.0)),
        ("10/5 seconds", Rate(10, 5.0)),
        ("10/0.5s", Rate(10, 0.5)),
        ("1000/hour", Rate(1000, 3600.0)),
        ("5/day", Rate(5, 86400.0)),
        ((20, 2.0), Rate(20, 2.0)),
        (Rate(3, 1.0), Rate(3, 1.0)),
    ],
)
def test_rates_are_read_from_the_usual_spellings(spec: object, rate: Rate) -> None:
    assert parse_rate(spec) == rate  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("fast", "not a rate"),
        ("50/fortnight", "unknown unit 'fortnight'"),
        ("0/second", "positive count"),
        ((5, 0), "positive count"),
        (50, "not a rate"),
    ],
)
def test_a_bad_rate_is_a_configuration_error(spec: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        parse_rate(spec)  # type: ignore[arg-type]


def test_a_rate_holds_in_every_window_across_threads_and_clients(redis_url: str) -> None:
    """Four "workers" (each its own limiter and connection) share 5 a second: never 6 arrive in any one-second span.

    "Arrive" is when the worker gets to record it, after being admitted (a loaded machine delays
    that), like a request reaching the vendor; the answer comes after. A fixed window would let 10
    through across a window boundary; this is the sliding log."""
    arrived: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 2.5

    def worker() -> None:
        limiter = RedisRateLimiter(redis_url, {"smsapi": "5/second"})
        while time.monotonic() < stop:
            slot = limiter.acquire("smsapi", until_answered=True)
            with lock:
                arrived.append(time.monotonic())
            limiter.answered("smsapi", slot or "")

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(worker) for _ in range(4)]:
            future.result()
    assert max_in_window(arrived, 1.0) <= 5
    assert len(arrived) >= 12  # about 5 a second over 2.5 s: the limit is a rate, not a stop


def test_a_slot_too_far_away_is_rate_limited_with_its_wait(redis_url: str) -> None:
    waits: list[float] = []
    limiter = RedisRateLimiter(redis_url, {"smsapi": "1/minute"}, sleep=waits.append)
    assert limiter.acquire("smsapi") is not None
    with pytest.raises(RateLimited, match=r"shared rate limit 1/60s reached; next slot in") as info:
        limiter.acquire("smsapi", max_wait=5.0)
    assert info.value.accepted is False and info.value.retryable is True
    assert 55 < (info.value.retry_after or 0) <= 60.1
    assert waits == []  # it did not sleep for a slot it could not get in time
    assert limiter.acquire("other") is None  # a name without a rate is never held back


def test_a_request_in_flight_counts_until_answered_then_from_its_answer(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, {"smsapi": "1/2s"})
    slot = limiter.acquire("smsapi", until_answered=True)
    assert slot is not None
    in_flight, _ = limiter.try_acquire("smsapi")
    assert 3.8 < in_flight <= 4.1  # it may still arrive up to one period from now
    time.sleep(0.3)  # the request is on its way for 0.3 s
    limiter.answered("smsapi", slot)
    answered, _ = limiter.try_acquire("smsapi")
    assert 1.8 < answered <= 2.1  # the window now runs from the answer

    plain = RedisRateLimiter(redis_url, {"other": "1/2s"})
    plain.acquire("other")
    admitted_only, _ = plain.try_acquire("other")
    assert 1.8 < admitted_only <= 2.1  # without until_answered the slot counts from admission


def test_claims_are_taken_once_and_outcomes_written_once(redis_url: str) -> None:
    store = RedisOutcomeStore(redis_url, ttl=600)
    assert store.claim("k1", {"task": "a"}) is True
    assert store.claim("k1", {"task": "b"}) is False
    assert store.current_claim("k1") == {"task": "a"}
    assert 0 < store.redis.ttl("omnisend:claim:k1") <= 600
    store.update_claim("k1", {"task": "a", "state": "waiting"})
    assert store.current_claim("k1") == {"task": "a", "state": "waiting"}
    assert 0 < store.redis.ttl("omnisend:claim:k1") <= 600  # the TTL is kept

    assert store.finish("k1", {"key": "k1", "ok": True}) is True
    assert store.current_claim("k1") == {"task": "a", "state": "waiting"}  # kept: a late copy finds it
    assert store.finish("k1", {"key": "k1", "ok": False}) is False  # the first outcome stays
    assert store.outcome("k1") == {"key": "k1", "ok": True}
    assert store.outcomes(["k1", "k2"]) == [{"key": "k1", "ok": True}, None]
    assert 0 < store.redis.ttl("omnisend:outcome:k1") <= 600
    store.forget("k1")
    assert store.outcome("k1") is None


def test_only_one_of_many_concurrent_claims_wins(redis_url: str) -> None:
    store = RedisOutcomeStore(redis_url)
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda n: store.claim("same", {"task": n}), range(32)))
    assert wins.count(True) == 1


def test_a_bad_ttl_or_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ttl must be a positive"):
        RedisOutcomeStore("redis://127.0.0.1:1/0", ttl=0)
    with pytest.raises(ConfigurationError, match="not a Redis URL"):
        connect("http://user:secret@example.invalid/0")


def _report(event: str) -> DeliveryReport:
    return DeliveryReport(
        "smsapi", "m1", DeliveryStatus.DELIVERED, "DELIVERED", event_id=event, timestamp=datetime.now(timezone.utc)
    )


def test_replay_guards_in_two_processes_share_what_they_have_seen(redis_url: str) -> None:
    web1 = ReplayGuard(window=60, store=RedisReplayStore(redis_url))
    web2 = ReplayGuard(window=60, store=RedisReplayStore(redis_url))
    assert isinstance(web1.store, ReplayStore)
    assert [r.event_id for r in web1.filter([_report("e1"), _report("e2")])] == ["e1", "e2"]
    assert web2.seen(_report("e1")) is True  # the vendor's retry reached the other process: dropped
    assert web2.filter([_report("e2"), _report("e3")])[0].event_id == "e3"
    assert len(web1) == 3
    ttl_ms = web1.store.redis.pttl("omnisend:webhook:smsapi:e1")  # type: ignore[attr-defined]
    assert 0 < ttl_ms <= 60_000


def test_a_replayed_event_arriving_at_many_threads_at_once_passes_once(redis_url: str) -> None:
    guard = ReplayGuard(window=60, store=RedisReplayStore(redis_url))
    with ThreadPoolExecutor(8) as pool:
        fresh = list(pool.map(lambda _: not guard.seen(_report("burst")), range(32)))
    assert fresh.count(True) == 1


def test_the_memory_store_forgets_after_the_window() -> None:
    now = [0.0]
    store = MemoryReplayStore(clock=lambda: now[0])
    guard = ReplayGuard(window=10, store=store)
    assert guard.seen(_report("x")) is False and guard.seen(_report("x")) is True
    now[0] = 10.5
    assert guard.seen(_report("x")) is False
    assert len(guard) == 1


@pytest.fixture(params=["memory", "redis"])
def breaker_store(request: pytest.FixtureRequest) -> BreakerStore:
    if request.param == "memory":
        return MemoryBreakerStore()
    return RedisBreakerStore(request.getfixturevalue("redis_url"))


def test_the_redis_breaker_store_keeps_the_same_contract_as_the_memory_one(breaker_store: BreakerStore) -> None:
    store = breaker_store
    assert store.get("x").closed and not store.claim_probe("x", now=1.0, lease=1.0)
    error = ServiceUnavailable("down", provider="x", accepted=False, code=503)
    state = store.record_failure("x", error=error, now=100.0, threshold=2, open_for=10.0, trip=False)
    assert state.failures == 1 and state.open_until is None and not state.is_open(100.0)
    state = store.record_failure("x", error=error, now=101.25, threshold=2, open_for=10.0, trip=False)
    assert state.failures == 2 and state.open_until == 111.25 and state.is_open(111.0)
    assert isinstance(state.error, ServiceUnavailable) and state.error.code == 503 and state.error.provider == "x"
    assert not store.claim_probe("x", now=111.0, lease=10.0)
    assert store.claim_probe("x", now=111.25, lease=10.0)
    assert not store.claim_probe("x", now=111.25, lease=10.0)  # one probe at a time
    assert store.get("x").open_until == 121.25
    store.record_success("x")
    assert store.get("x").closed and store.get("other").closed
    tripped = store.record_failure(
        "y", error=AuthError("bad key", provider="y"), now=5.0, threshold=5, open_for=30.0, trip=True
    )
    assert tripped.failures == 1 and tripped.open_until == 35.0 and isinstance(store.get("y").error, AuthError)


def test_one_probe_wins_among_processes_racing_for_it(redis_url: str) -> None:
    stores = [RedisBreakerStore(redis_url) for _ in range(4)]  # four "workers"
    stores[0].record_failure("r", error=AuthError("x"), now=0.0, threshold=1, open_for=1.0, trip=True)
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda n: stores[n % 4].claim_probe("r", now=2.0, lease=30.0), range(32)))
    assert wins.count(True) == 1
