"""Send from a pool of Celery workers: one idempotency key per message, shared limits, nothing sent twice.

::

    from celery import Celery
    from omnisend import Client, Message
    from omnisend.celery import CelerySender
    from omnisend.providers import Smsapi

    app = Celery("sms", broker="redis://127.0.0.1:6379/0")
    sender = CelerySender(app, client=lambda: Client(Smsapi(token="...")),
                          redis_url="redis://127.0.0.1:6379/0", rate_limits={"smsapi": "50/second"})
    key = sender.enqueue(Message(to="+48500100200", text="Your code is 1234"))
    ...
    outcome = sender.outcome(key)      # None until final; then .ok, .result, .error

What a task queue adds to the ways a message can go out twice, and what this module does about each:

* **the same message enqueued twice** — the idempotency key is fixed before the task is queued and
  travels in it; the first run takes a claim on the key in Redis (``SET NX`` with a TTL), a run for
  a key that has a claim or an outcome sends nothing;
* **task retries** — only errors that say the message certainly did not go out are retried by the
  queue: ``RateLimited`` after its ``retry_after``, other ``retryable`` errors with ``accepted is
  False`` with exponential backoff; anything else (``DeliveryUnknown`` included) is final;
* **redelivery after a worker died** (``acks_late`` and ``reject_on_worker_lost``) — the redelivered
  run finds its own claim without an outcome: the message may have gone out. It sends again only
  where the vendor de-duplicates on the key (``provider.deduplicates``); otherwise it records
  ``DeliveryUnknown``, for you to reconcile;
* **a countdown longer than the broker's visibility timeout** (kombu#337: the task runs twice) —
  every countdown is capped at half the visibility timeout read from the app's config
  (``broker_transport_options["visibility_timeout"]``, Redis's default 3,600 s).

Outcomes are stored as JSON (never pickles) and come back as the typed result or error ``send()``
would have returned or raised. Needs ``pip install 'omnisend[celery]'``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

import httpx

from . import _codec
from ._answer import deadline_of
from ._inputs import new_key
from .client import Client
from .errors import ConfigurationError, DeliveryUnknown, OmnisendError, RateLimited, ValidationError
from .models import Message, SendResult
from .providers.base import Provider
from .stores import DEFAULT_PREFIX, DEFAULT_TTL, Rate, RedisOutcomeStore, RedisRateLimiter, connect

if TYPE_CHECKING:
    import redis
    from celery import Celery, Task

__all__ = ["CelerySender", "Outcome"]

logger = logging.getLogger("omnisend.celery")

#: Redis's (and SQS's) default visibility timeout, used when the app's config does not set one.
DEFAULT_VISIBILITY_TIMEOUT: Final = 3600.0
#: RabbitMQ closes a channel whose delivery stays unacknowledged longer than ``consumer_timeout``
#: (30 minutes by default): the same trap under another name.
RABBITMQ_CONSUMER_TIMEOUT: Final = 1800.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the send of one idempotency key ended: its result or its typed error."""

    key: str
    """The idempotency key."""
    result: SendResult | None
    """The result ``send()`` returned (``None`` when it raised)."""
    error: OmnisendError | None
    """The typed error ``send()`` raised, rebuilt with its class, vendor code and fields."""
    finished_at: datetime
    """When the outcome was recorded (UTC)."""
    runs: int = 1
    """Task runs it took (queue retries and redeliveries included)."""
    worker: str | None = None
    """``host:pid`` of the worker process that recorded it."""

    @property
    def ok(self) -> bool:
        """True when the message was sent (some recipients may still have failed: see ``result.failed``)."""
        return self.error is None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Outcome:
        error = None
        if data.get("error") is not None:
            rebuilt = _codec.error_from_data(data["error"])
            error = rebuilt if isinstance(rebuilt, OmnisendError) else OmnisendError(str(rebuilt))
        return cls(
            key=str(data["key"]),
            result=None if data.get("result") is None else _codec.result_from_data(data["result"]),
            error=error,
            finished_at=datetime.fromtimestamp(float(data.get("at", 0.0)), timezone.utc),
            runs=int(data.get("runs", 1)),
            worker=data.get("worker"),
        )


def _providers(provider: object) -> Iterator[tuple[str, Provider]]:
    """``(name, provider)`` for ``provider`` and, through routers, every provider inside it."""
    if isinstance(provider, Provider):
        yield provider.name, provider
    for route in getattr(provider, "routes", ()) or ():
        inner = getattr(route, "provider", route)
        name = getattr(route, "name", None)
        if name and isinstance(inner, Provider) and name != inner.name:
            yield str(name), inner
        yield from _providers(inner)


class CelerySender:
    """Queue messages on a Celery app; its workers send them once each, under shared rate limits.

    Creating it registers the send task (``name``) on ``app``: create it in the module your
    workers import (``celery -A yourmodule worker``), with the same arguments as where you enqueue.

    Args:
        app: the Celery app.
        client: a function that builds the ``Client`` each worker process sends with (called once
            per process, after the fork).
        redis_url: where claims, outcomes and rate limits live (``redis://host:port/db``); by
            default the app's broker, when that is Redis.
        redis: a ``redis.Redis`` client instead of ``redis_url``.
        rate_limits: provider id (or route name) → rate (``"50/second"``), shared by every worker
            and held in any window of its period; each HTTP request to that provider takes a slot.
        name: the task's name.
        ttl: seconds claims and outcomes are kept (a week by default).
        max_retries: queue retries per message (after the client's own retries) before its last
            error becomes final.
        backoff: first queue-retry wait in seconds; doubles each retry (with jitter), up to ``max_backoff``.
        max_backoff: the longest queue-retry wait, before the visibility-timeout cap.
        rate_limit_wait: the longest a request waits in the worker for a shared rate-limit slot;
            beyond it the send fails with ``RateLimited`` (``accepted=False``) and the queue retries it.
        prefix: the start of every Redis key written.
    """

    def __init__(
        self,
        app: Celery,
        *,
        client: Callable[[], Client],
        redis_url: str | None = None,
        redis: redis.Redis | None = None,
        rate_limits: Mapping[str, str | Rate | tuple[int, float]] | None = None,
        name: str = "omnisend.send",
        ttl: int = DEFAULT_TTL,
        max_retries: int = 8,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        rate_limit_wait: float = 5.0,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if not callable(client) or isinstance(client, Client):
            raise ConfigurationError(
                "CelerySender(client=...) takes a function that builds a Client, e.g. lambda: Client(...)"
            )
        if redis is None:
            redis_url = redis_url or _redis_broker(app)
            if not redis_url:
                raise ConfigurationError(
                    "CelerySender needs redis_url= (or redis=) for claims, outcomes and rate limits"
                )
            redis = connect(redis_url)
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a non-negative int, got {max_retries!r}")
        self.app = app
        self.client_factory = client
        self.store = RedisOutcomeStore(redis, prefix=prefix, ttl=ttl)
        self.limiter = RedisRateLimiter(redis, rate_limits or {}, prefix=prefix) if rate_limits else None
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rate_limit_wait = rate_limit_wait
        self._client: tuple[int, Client, list[tuple[str, str]]] | None = None
        self._lock = threading.Lock()
        sender = self

        def send(task: Task, payload: dict[str, Any]) -> dict[str, Any]:
            return sender._run(task, payload)

        send.__doc__ = "Send one omnisend message (its idempotency key inside); the outcome goes to Redis."
        self.task: Task = app.task(
            name=name,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            max_retries=None,  # counted here: max_retries above
        )(send)

    def __repr__(self) -> str:
        return f"CelerySender(task={self.task.name!r}, rate_limits={self.limiter.rates if self.limiter else {}!r})"

    # -- the producer side ------------------------------------------------------------------------

    def enqueue(self, message: Message, **options: Any) -> str:
        """Queue ``message`` and return its idempotency key (the message's own, or a new one).

        ``options`` go to Celery's ``apply_async`` (``queue=``, ``priority=``, ``countdown=``...);
        a ``countdown`` or ``eta`` beyond half the broker's visibility timeout is refused.

        Raises:
            ValidationError: ``message`` is not a ``Message`` or cannot travel as JSON.
            ConfigurationError: the countdown would outlive the visibility timeout.
        """
        key, payload = self._payload(message)
        self._check_delay(options)
        self.task.apply_async(args=[payload], **options)
        return key

    def enqueue_many(self, messages: Iterable[Message], *, connections: int = 4, **options: Any) -> list[str]:
        """Queue each message (one task each); their keys, in the order of ``messages``.

        Publishing is one broker round trip per message, so a busy broker, not this process, sets the
        pace: ``connections`` producers publish side by side (chunks of 100 messages each; the
        queue order across chunks may interleave). ``messages`` is read lazily, at most a few
        chunks ahead. A message that cannot travel raises ``ValidationError``; chunks before it
        may be queued already (give messages deterministic keys and enqueue again: nothing is sent twice).
        """
        if not isinstance(connections, int) or connections < 1:
            raise ConfigurationError(f"enqueue_many: connections must be a positive int, got {connections!r}")
        self._check_delay(options)

        def publish(chunk: list[dict[str, Any]]) -> None:
            with self.app.producer_or_acquire() as producer:
                for payload in chunk:
                    self.task.apply_async(args=[payload], producer=producer, **options)

        keys: list[str] = []
        chunks = _chunks((self._payload(m) for m in messages), 100)
        if connections == 1:
            for chunk in chunks:
                keys.extend(key for key, _ in chunk)
                publish([payload for _, payload in chunk])
            return keys
        from concurrent.futures import Future, ThreadPoolExecutor

        in_flight: list[Future[None]] = []
        with ThreadPoolExecutor(connections, thread_name_prefix="omnisend-enqueue") as pool:
            try:
                for chunk in chunks:
                    keys.extend(key for key, _ in chunk)
                    in_flight.append(pool.submit(publish, [payload for _, payload in chunk]))
                    while len(in_flight) >= 2 * connections:
                        in_flight.pop(0).result()
            finally:
                for future in in_flight:
                    future.result()
        return keys

    def outcome(self, key: str) -> Outcome | None:
        """How the send of ``key`` ended, or ``None`` while it is queued, running or waiting to retry."""
        data = self.store.outcome(key)
        return None if data is None else Outcome.from_data(data)

    def outcomes(self, keys: Iterable[str]) -> list[Outcome | None]:
        """:meth:`outcome` for many keys, in order, in few round trips."""
        return [None if data is None else Outcome.from_data(data) for data in self.store.outcomes(keys)]

    def wait(self, keys: Sequence[str], *, timeout: float = 60.0, interval: float = 0.1) -> list[Outcome]:
        """Poll until every key in ``keys`` has an outcome; their outcomes, in order.

        Raises:
            TimeoutError: some keys are not final after ``timeout`` seconds (the message says how many).
        """
        deadline = time.monotonic() + timeout
        found: dict[str, Outcome] = {}
        pending = list(dict.fromkeys(keys))
        while True:
            # Outcomes arrive roughly in queue order: each poll reads the first 1,000 still pending,
            # so waiting on a campaign of any size costs the same per poll.
            head = pending[:1000]
            for key, outcome in zip(head, self.outcomes(head), strict=True):
                if outcome is not None:
                    found[key] = outcome
            pending = [key for key in pending if key not in found]
            if not pending:
                return [found[key] for key in keys]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(pending)} of {len(set(keys))} messages have no outcome after {timeout:g} s")
            time.sleep(interval)

    def visibility_timeout(self) -> float:
        """Seconds the broker waits for an acknowledgement before it redelivers a task (app config)."""
        options = self.app.conf.broker_transport_options or {}
        if options.get("visibility_timeout") is not None:
            return float(options["visibility_timeout"])
        broker = str(self.app.conf.broker_url or "")
        return RABBITMQ_CONSUMER_TIMEOUT if broker.startswith(("amqp", "pyamqp")) else DEFAULT_VISIBILITY_TIMEOUT

    def max_countdown(self) -> float:
        """The longest any countdown may be: half the visibility timeout (the rest is for running)."""
        return self.visibility_timeout() / 2

    def _check_delay(self, options: Mapping[str, Any]) -> None:
        delay = options.get("countdown")
        eta = options.get("eta")
        if eta is not None:
            now = datetime.now(eta.tzinfo) if isinstance(eta, datetime) else None
            delay = (eta - now).total_seconds() if now is not None else None
        if delay is not None and delay > self.max_countdown():
            raise ConfigurationError(
                f"a countdown of {delay:g} s is longer than half the broker's visibility timeout "
                f"({self.visibility_timeout():g} s): the task would be delivered twice. Schedule it with "
                "Message(scheduled_at=...) or raise broker_transport_options['visibility_timeout']"
            )

    @staticmethod
    def _payload(message: Message) -> tuple[str, dict[str, Any]]:
        if not isinstance(message, Message):
            raise ValidationError(f"enqueue takes an omnisend.Message, got {type(message).__name__}")
        key = message.idempotency_key or new_key()
        if message.idempotency_key is None:
            message = message.model_copy(update={"idempotency_key": key})
        try:
            data = message.model_dump(mode="json", exclude_defaults=True)
        except ValueError as exc:  # pydantic's serialization error
            raise ValidationError(
                f"the message cannot travel through the queue as JSON: {exc}", field="options", idempotency_key=key
            ) from exc
        data["idempotency_key"] = key
        return key, {"v": 1, "message": data}

    # -- the worker side --------------------------------------------------------------------------

    def client(self) -> Client:
        """This process's client (built on first use, again after a fork), with the shared limits."""
        pid = os.getpid()
        current = self._client
        if current is not None and current[0] == pid:
            return current[1]
        with self._lock:
            if self._client is None or self._client[0] != pid:
                client = self.client_factory()
                if not isinstance(client, Client):
                    raise ConfigurationError(
                        f"CelerySender's client= must build an omnisend.Client, got {type(client).__name__}"
                    )
                self._client = (pid, client, self._install_limits(client))
                self._check_send_time(client)
            return self._client[1]

    def longest_send(self, client: Client) -> float:
        """The longest one run of the task may take with ``client``: the call's deadline (the longest of
        its timeouts; a whole send, retries and routes included, ends by then) plus the longest waits
        for rate-limit slots, one per attempt per route (``inf`` when a timeout is ``None``)."""
        deadline = deadline_of(client.timeout)
        if deadline is None:
            return math.inf
        if self.limiter is None:
            return deadline
        routes = sum(1 for _, provider in _providers(client.provider) if not getattr(provider, "routes", None))
        return deadline + max(1, routes) * client.retry.max_attempts * self.rate_limit_wait

    def _check_send_time(self, client: Client) -> None:
        longest, limit = self.longest_send(client), self.max_countdown()
        if longest > limit:
            logger.warning(
                "omnisend: one send may take up to %s s with this client, more than half the broker's visibility "
                "timeout (%g s): a task still sending could be given to a second worker, which would then record "
                "DeliveryUnknown (or re-send with the same key where the vendor de-duplicates). Raise "
                "broker_transport_options['visibility_timeout'] or lower the client's timeout or attempts",
                "unbounded (a timeout is None)" if math.isinf(longest) else f"{longest:g}",
                self.visibility_timeout(),
            )

    def _install_limits(self, client: Client) -> list[tuple[str, str]]:
        """Hook the shared rate limits into the client's HTTP requests; (base URL, limit name) pairs."""
        if self.limiter is None:
            return []
        named = list(_providers(client.provider))
        unknown = set(self.limiter.rates) - {name for name, _ in named}
        if unknown:
            raise ConfigurationError(
                f"rate_limits name {', '.join(sorted(unknown))}, which the client does not send through "
                f"(it has: {', '.join(sorted({name for name, _ in named}))})"
            )
        bases = [
            (base, name)
            for name, provider in named
            if name in self.limiter.rates and (base := getattr(provider, "base_url", None))
        ]
        bases.sort(key=lambda item: len(item[0]), reverse=True)  # the most specific base URL first
        limiter, wait = self.limiter, self.rate_limit_wait

        def take_slot(request: httpx.Request) -> None:
            url = str(request.url)
            for base, name in bases:
                if url.startswith(base):
                    slot = limiter.acquire(name, max_wait=wait, until_answered=True)
                    if slot is not None:
                        request.extensions["omnisend.rate_slot"] = (name, slot)
                    return

        def answered(response: httpx.Response) -> None:
            taken = response.request.extensions.get("omnisend.rate_slot")
            if taken is not None:
                limiter.answered(*taken)

        hooks = client._http.event_hooks
        hooks["request"].append(take_slot)
        hooks["response"].append(answered)
        return bases

    def _run(self, task: Task, payload: Mapping[str, Any]) -> dict[str, Any]:
        request = task.request
        data = dict(payload.get("message") or {})
        key = str(data.get("idempotency_key") or "")
        if not key:
            raise ConfigurationError("an omnisend task without an idempotency key: enqueue with CelerySender.enqueue")
        claim = {
            "task": request.id,
            "state": "sending",
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "pid": os.getpid(),
            "since": time.time(),
            "runs": 1,
        }
        store = self.store
        final = {"key": key, "run": "final already: nothing sent"}
        if store.outcome(key) is not None:
            return final
        if not store.claim(key, claim):
            held = store.current_claim(key)
            if held is None:  # the claim expired between the two calls
                if not store.claim(key, claim):
                    return {"key": key, "run": "claimed by another task: nothing sent"}
            elif held.get("task") != request.id:
                logger.info("omnisend: %s is being sent by task %s; this copy sends nothing", key, held.get("task"))
                return {"key": key, "run": "claimed by another task: nothing sent"}
            else:
                claim["runs"] = int(held.get("runs", 1)) + 1
                if held.get("state") == "sending":
                    return self._recover(task, key, data, held, claim)
                store.update_claim(key, claim)  # "waiting": this task's own queue retry
        if store.outcome(key) is not None:  # written between the first look and the claim
            return final
        return self._send(task, key, data, claim)

    def _recover(
        self, task: Task, key: str, data: dict[str, Any], held: Mapping[str, Any], claim: dict[str, Any]
    ) -> dict[str, Any]:
        """A redelivered run: an earlier run of this task stopped while sending; it may have gone out."""
        if self.store.outcome(key) is not None:
            return {"key": key, "run": "final already: nothing sent"}
        provider = self.client().provider
        since = datetime.fromtimestamp(float(held.get("since", 0.0)), timezone.utc).isoformat(timespec="seconds")
        if provider.deduplicates:
            logger.warning(
                "omnisend: %s: a worker (%s) stopped while sending it; sending again with the same key (%s de-duplicates)",
                key,
                held.get("worker"),
                provider.name,
            )
            self.store.update_claim(key, claim)
            return self._send(task, key, data, claim)
        error = DeliveryUnknown(
            f"a worker ({held.get('worker')}) stopped while sending this message (since {since}); "
            f"{provider.name} cannot de-duplicate, so it was not sent again: check it did not arrive "
            "before re-sending with the same idempotency_key",
            provider=provider.name,
            idempotency_key=key,
            retryable=False,
        )
        logger.warning("omnisend: %s", error)
        self._finish(key, claim, error=error)
        return {"key": key, "run": "DeliveryUnknown after a worker was lost"}

    def _send(self, task: Task, key: str, data: dict[str, Any], claim: dict[str, Any]) -> dict[str, Any]:
        try:
            message = Message(**data)
            result = self.client().send(message)
        except OmnisendError as error:
            countdown = self._countdown(error, task.request.retries)
            if countdown is None:
                self._finish(key, claim, error=error)
                return {"key": key, "run": f"final: {type(error).__name__}"}
            self.store.update_claim(key, {**claim, "state": "waiting", "error": type(error).__name__})
            logger.info("omnisend: %s: %s; queue retry in %.2f s", key, type(error).__name__, countdown)
            raise task.retry(countdown=countdown, exc=error) from None
        except Exception as exc:
            # Not omnisend's typed world (a bug, a broken client factory): the outcome is unknown.
            unknown = DeliveryUnknown(
                f"unexpected {type(exc).__name__} while sending: {exc}", idempotency_key=key, retryable=False
            )
            unknown.__cause__ = exc
            self._finish(key, claim, error=unknown)
            raise
        self._finish(key, claim, result=result)
        return {"key": key, "run": "sent", "message_id": result.message_id}

    def _countdown(self, error: OmnisendError, retries: int) -> float | None:
        """Seconds until the queue tries again, or None when ``error`` is final."""
        if retries >= self.max_retries or error.accepted is not False:
            return None
        backoff = min(self.max_backoff, self.backoff * 2**retries) * random.uniform(0.5, 1.0)
        if isinstance(error, RateLimited):
            wait = error.retry_after if error.retry_after is not None else backoff
        elif error.retryable:
            wait = backoff
        else:
            return None
        return max(0.0, min(wait, self.max_countdown()))

    def _finish(
        self,
        key: str,
        claim: Mapping[str, Any],
        *,
        result: SendResult | None = None,
        error: OmnisendError | None = None,
    ) -> None:
        outcome = {
            "key": key,
            "ok": error is None,
            "result": None if result is None else _codec.result_to_data(result),
            "error": None if error is None else _codec.error_to_data(error),
            "at": time.time(),
            "runs": claim.get("runs", 1),
            "worker": claim.get("worker"),
        }
        if not self.store.finish(key, outcome):
            logger.warning("omnisend: %s already had an outcome; this run's is dropped", key)


def _chunks(items: Iterable[tuple[str, dict[str, Any]]], size: int) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    chunk: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _redis_broker(app: Celery) -> str | None:
    broker = str(app.conf.broker_url or "")
    return broker if broker.startswith(("redis://", "rediss://", "unix://")) else None
