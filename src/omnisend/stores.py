"""Shared state in Redis: send claims and outcomes, rate limits, webhook replays.

Everything omnisend keeps across processes goes through a small store here, so many workers (the
``omnisend.celery`` tasks, web processes taking delivery callbacks) agree on it:

* :class:`RedisOutcomeStore` — per idempotency key, a claim (``SET NX`` with a TTL) taken by the
  task run that sends, and the final outcome (first writer wins), both kept for ``ttl``;
* :class:`RedisRateLimiter` — ``"50/second"`` held in *any* window of the period across every
  worker: a sliding log in one Lua script that admits or says how long to wait, on the Redis
  server's clock (workers' clocks may disagree; Redis's is one);
* :class:`RedisReplayStore` — the store of :class:`omnisend.webhooks.ReplayGuard`, so a callback a
  vendor repeats to another web process is still dropped;
* :class:`RedisBreakerStore` — the :class:`omnisend.routing.BreakerStore` of a router's circuit
  breakers, so a route one worker found down is skipped by every worker.

Needs the ``redis`` package: ``pip install 'omnisend[redis]'`` (``omnisend[celery]`` includes it).
Every key starts with ``prefix`` (``"omnisend:"``), so one Redis database can serve several apps.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from . import _codec
from .errors import ConfigurationError, OmnisendError, RateLimited
from .routing import BreakerState, BreakerStore

if TYPE_CHECKING:
    import redis

__all__ = [
    "Rate",
    "RedisBreakerStore",
    "RedisOutcomeStore",
    "RedisRateLimiter",
    "RedisReplayStore",
    "connect",
    "parse_rate",
]

DEFAULT_PREFIX: Final = "omnisend:"
#: How long claims and outcomes are kept by default: a week.
DEFAULT_TTL: Final = 7 * 24 * 3600


def connect(redis_url: str) -> redis.Redis:
    """A Redis client for ``redis_url`` (``redis://host:port/db``); raises ``ConfigurationError`` on a bad URL."""
    try:
        import redis as redis_lib
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ConfigurationError("Redis stores need the redis package: pip install 'omnisend[redis]'") from exc
    try:
        return redis_lib.Redis.from_url(redis_url, health_check_interval=30)
    except ValueError as exc:
        scheme = redis_url.split("://", 1)[0] if "://" in redis_url else "?"
        raise ConfigurationError(f"not a Redis URL (scheme {scheme!r}): use redis://host:port/db") from exc


def _client(redis_or_url: redis.Redis | str) -> redis.Redis:
    return connect(redis_or_url) if isinstance(redis_or_url, str) else redis_or_url


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


# -- claims and outcomes ---------------------------------------------------------------------------


class RedisOutcomeStore:
    """Per idempotency key: who is sending it (a claim) and how it ended (the outcome).

    Args:
        redis: a ``redis.Redis`` client or a ``redis://`` URL.
        prefix: the start of every key this store writes.
        ttl: seconds a claim or an outcome is kept (default a week); a message re-enqueued with the
            same key after that is sent again.
    """

    def __init__(self, redis: redis.Redis | str, *, prefix: str = DEFAULT_PREFIX, ttl: int = DEFAULT_TTL) -> None:
        if not isinstance(ttl, int) or ttl < 1:
            raise ConfigurationError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self.redis = _client(redis)
        self.prefix = prefix
        self.ttl = ttl

    def _claim_key(self, key: str) -> str:
        return f"{self.prefix}claim:{key}"

    def _outcome_key(self, key: str) -> str:
        return f"{self.prefix}outcome:{key}"

    def claim(self, key: str, claim: Mapping[str, Any]) -> bool:
        """Take the claim on ``key`` (``SET NX`` with the TTL); False when someone holds it."""
        return bool(self.redis.set(self._claim_key(key), _codec.dumps(dict(claim)), nx=True, ex=self.ttl))

    def current_claim(self, key: str) -> dict[str, Any] | None:
        """The claim on ``key``, or None."""
        raw = self.redis.get(self._claim_key(key))
        return None if raw is None else dict(_codec.loads(raw))

    def update_claim(self, key: str, claim: Mapping[str, Any]) -> None:
        """Replace the claim the caller holds (its TTL kept)."""
        self.redis.set(self._claim_key(key), _codec.dumps(dict(claim)), xx=True, keepttl=True)

    def finish(self, key: str, outcome: Mapping[str, Any]) -> bool:
        """Record the final outcome of ``key`` (``SET NX``); False if an outcome was there already.

        The claim stays until it expires: a late copy of the task that looked for an outcome just
        before this one was written then finds the claim, not a free key it could send again.
        """
        return bool(self.redis.set(self._outcome_key(key), _codec.dumps(dict(outcome)), nx=True, ex=self.ttl))

    def outcome(self, key: str) -> dict[str, Any] | None:
        """The recorded outcome of ``key`` (as stored), or None."""
        raw = self.redis.get(self._outcome_key(key))
        return None if raw is None else dict(_codec.loads(raw))

    def outcomes(self, keys: Iterable[str]) -> list[dict[str, Any] | None]:
        """The outcomes of ``keys``, in order (one round trip per 1,000 keys)."""
        keys = list(keys)
        found: list[dict[str, Any] | None] = []
        for start in range(0, len(keys), 1000):
            chunk = [self._outcome_key(k) for k in keys[start : start + 1000]]
            found.extend(None if raw is None else dict(_codec.loads(raw)) for raw in self.redis.mget(chunk))
        return found

    def forget(self, key: str) -> None:
        """Drop the claim and outcome of ``key`` (an operator's tool: the key can be sent again)."""
        self.redis.delete(self._claim_key(key), self._outcome_key(key))


# -- rate limits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` requests in any ``period`` seconds."""

    limit: int
    period: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


_UNITS: Final = (
    dict.fromkeys(("s", "sec", "second"), 1)
    | dict.fromkeys(("m", "min", "minute"), 60)
    | {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
)
_RATE: Final = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*([a-z]+?)s?\s*$", re.IGNORECASE)


def parse_rate(spec: str | Rate | tuple[int, float]) -> Rate:
    """``"50/second"``, ``"100/minute"``, ``"10/5 seconds"``, ``"1000/hour"``, ``"5/s"`` or ``(50, 1.0)`` → :class:`Rate`.

    Raises:
        ConfigurationError: the text is not a rate, or the count or period is not positive.
    """
    if isinstance(spec, Rate):
        rate = spec
    elif isinstance(spec, tuple) and len(spec) == 2:
        rate = Rate(int(spec[0]), float(spec[1]))
    elif isinstance(spec, str) and (match := _RATE.match(spec)):
        count, amount, unit = match.groups()
        seconds = _UNITS.get(unit.lower())
        if seconds is None:
            raise ConfigurationError(f"unknown unit {unit!r} in rate {spec!r}: use second, minute, hour or day")
        rate = Rate(int(count), float(amount or 1) * seconds)
    else:
        raise ConfigurationError(f"not a rate: {spec!r} (write it like '50/second' or '100/minute')")
    if rate.limit < 1 or not rate.period > 0 or math.isinf(rate.period):
        raise ConfigurationError(f"a rate needs a positive count and period, got {spec!r}")
    return rate


# A sliding log: when each request admitted recently may have reached the vendor, in a sorted set.
# One call drops what left the window and either admits this request (returns 0) or returns how
# many microseconds until the oldest leaves. A request still on its way (ARGV[4] > 0) is entered
# that far in the future, the latest it may arrive, until its answer stamps the real time. Time is the Redis server's, so workers on machines
# whose clocks disagree still share one window. Memory: at most ``limit`` entries per name.
_ADMIT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(period / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + period - now)
"""
# The request was answered: it reached the vendor at the latest now, so its entry counts from now.
_ANSWERED: Final = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
return 0
"""


class RedisRateLimiter:
    """Rates shared by every process using the same Redis, each held in any window of its period.

    ``"20/second"`` admits at most 20 requests in *every* one-second span (a sliding log), where a
    fixed window would let up to 40 through across a window boundary. The span is the vendor's:
    a request is admitted at one time and reaches the vendor a little later (a busy worker, the
    network). Without care, requests admitted a second apart arrive closer together and a vendor
    counting arrivals sees more than the limit. So a slot taken with ``until_answered=True``
    counts as arriving up to one period after admission until :meth:`answered` stamps the time of
    the answer, the latest it can have arrived.

    Args:
        redis: a ``redis.Redis`` client or a ``redis://`` URL.
        rates: name (a provider id such as ``"smsapi"``) → rate (``"50/second"``, :class:`Rate`).
        prefix: the start of every key this limiter writes.
        margin: seconds added to every window (default 10 ms or 1 % of the period, the smaller).
        sleep: how :meth:`acquire` waits (tests pass a recorder).
    """

    def __init__(
        self,
        redis: redis.Redis | str,
        rates: Mapping[str, str | Rate | tuple[int, float]],
        *,
        prefix: str = DEFAULT_PREFIX,
        margin: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rates = {str(name): parse_rate(spec) for name, spec in rates.items()}
        self.redis = _client(redis)
        self.prefix = prefix
        self.margin = margin
        self.sleep = sleep
        self._admit = self.redis.register_script(_ADMIT)
        self._answered = self.redis.register_script(_ANSWERED)
        self._token = uuid.uuid4().hex[:12]
        self._count = itertools.count()
        self._lock = threading.Lock()

    def _window_us(self, rate: Rate) -> int:
        margin = min(0.01, rate.period * 0.01) if self.margin is None else self.margin
        return int((rate.period + margin) * 1_000_000)

    def try_acquire(self, name: str, *, until_answered: bool = False) -> tuple[float, str | None]:
        """Take a slot for ``name`` now if there is one: ``(0.0, slot)``; else ``(seconds until one frees up, None)``.

        A name without a rate is always admitted (``(0.0, None)``). With ``until_answered`` the
        slot counts as arriving up to one period from now, until :meth:`answered` is called with it.
        """
        rate = self.rates.get(name)
        if rate is None:
            return 0.0, None
        with self._lock:
            slot = f"{self._token}:{os.getpid()}:{next(self._count)}"
        window = self._window_us(rate)
        wait_us = self._admit(
            keys=[f"{self.prefix}rate:{name}"], args=[rate.limit, window, slot, window if until_answered else 0]
        )
        wait = int(wait_us) / 1_000_000
        return (wait, None) if wait > 0 else (0.0, slot)

    def acquire(self, name: str, *, max_wait: float = 5.0, until_answered: bool = False) -> str | None:
        """Wait for a slot for ``name``; returns it (give it to :meth:`answered`), or None for a name without a rate.

        Raises:
            RateLimited: the next slot is more than ``max_wait`` seconds away (``accepted=False``,
                ``retry_after`` = that wait): nothing was sent, so a caller may try again later.
        """
        waited = 0.0
        while True:
            wait, slot = self.try_acquire(name, until_answered=until_answered)
            if wait <= 0:
                return slot
            if waited + wait > max_wait:
                raise RateLimited(
                    f"shared rate limit {self.rates[name]} reached; next slot in {wait:.3f} s",
                    provider=name,
                    retry_after=wait,
                    accepted=False,
                )
            self.sleep(wait)
            waited += wait

    def answered(self, name: str, slot: str) -> None:
        """The request that took ``slot`` has its answer: it counts from now (the latest it can have arrived)."""
        self._answered(keys=[f"{self.prefix}rate:{name}"], args=[slot])


# -- webhook replays ------------------------------------------------------------------------------


class RedisReplayStore:
    """Where :class:`omnisend.webhooks.ReplayGuard` remembers events, shared by every web process.

    Example:
        >>> guard = ReplayGuard(window=3600, store=RedisReplayStore("redis://127.0.0.1:6379/0"))  # doctest: +SKIP
    """

    def __init__(self, redis: redis.Redis | str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = _client(redis)
        self.prefix = f"{prefix}webhook:"

    def add(self, key: str, window: float) -> bool:
        """Remember ``key`` for ``window`` seconds; True if it was not remembered already (``SET NX PX``)."""
        return bool(self.redis.set(self.prefix + key, b"1", nx=True, px=max(1, int(window * 1000))))

    def __len__(self) -> int:
        return sum(1 for _ in self.redis.scan_iter(match=self.prefix.replace("*", r"\*") + "*", count=1000))


# -- router circuit breakers ------------------------------------------------------------------------

# One hash per route: failures, open_until (wall-clock seconds), error (JSON). Both scripts are
# read-modify-write, so they run in Redis, atomically.
_RECORD_FAILURE: Final = """
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') + 1
redis.call('HSET', KEYS[1], 'failures', failures)
if ARGV[1] == '1' or failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', ARGV[3], 'error', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return redis.call('HMGET', KEYS[1], 'failures', 'open_until', 'error')
"""
_CLAIM_PROBE: Final = """
local open_until = redis.call('HGET', KEYS[1], 'open_until')
if not open_until or tonumber(open_until) > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'open_until', ARGV[2])
return 1
"""


class RedisBreakerStore(BreakerStore):
    """Circuit-breaker state of a router's routes in Redis, shared by every worker using it.

    Example:
        >>> breaker = Breaker(failures=5, cooldown=30, store=RedisBreakerStore("redis://127.0.0.1:6379/0"))  # doctest: +SKIP
        >>> client = Client(Failover(Smsapi(token="..."), Clickatell(api_key="..."), breaker=breaker))  # doctest: +SKIP

    Args:
        redis: a ``redis.Redis`` client or a ``redis://`` URL.
        prefix: the start of every key this store writes (one hash per route name).
        ttl: seconds a route's state is kept after its last failure (a day by default).
    """

    def __init__(self, redis: redis.Redis | str, *, prefix: str = DEFAULT_PREFIX, ttl: int = 24 * 3600) -> None:
        self.redis = _client(redis)
        self.prefix = f"{prefix}breaker:"
        self.ttl = ttl
        self._record_failure = self.redis.register_script(_RECORD_FAILURE)
        self._claim_probe = self.redis.register_script(_CLAIM_PROBE)

    @staticmethod
    def _state(values: Sequence[bytes | str | None]) -> BreakerState:
        failures, open_until, error = (_text(value) for value in values)
        if not failures:
            return BreakerState()
        rebuilt = None
        if error:
            decoded = _codec.error_from_data(_codec.loads(error))
            rebuilt = decoded if isinstance(decoded, OmnisendError) else OmnisendError(str(decoded))
        return BreakerState(int(failures), float(open_until) if open_until else None, rebuilt)

    def get(self, key: str) -> BreakerState:
        return self._state(self.redis.hmget(self.prefix + key, ["failures", "open_until", "error"]))

    def record_failure(
        self, key: str, *, error: OmnisendError, now: float, threshold: int, open_for: float, trip: bool
    ) -> BreakerState:
        error_json = _codec.dumps(_codec.error_to_data(error))
        values = self._record_failure(
            keys=[self.prefix + key], args=["1" if trip else "0", threshold, repr(now + open_for), error_json, self.ttl]
        )
        return self._state(values)

    def record_success(self, key: str) -> None:
        self.redis.delete(self.prefix + key)

    def claim_probe(self, key: str, *, now: float, lease: float) -> bool:
        return bool(self._claim_probe(keys=[self.prefix + key], args=[repr(now), repr(now + lease)]))
