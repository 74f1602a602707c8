"""The Celery app the queue tests and benchmarks start real workers with (``celery -A benchmarks.queue_app worker``).

Configured from the environment the test sets for its worker processes:

* ``OMNISEND_TEST_REDIS`` — the test's redis-server (broker, claims, outcomes, limits);
* ``OMNISEND_TEST_<PROVIDER>_URL`` — the emulator each sender's client talks to over TCP;
* ``OMNISEND_TEST_VISIBILITY_TIMEOUT`` — the broker's visibility timeout (60 s: a killed worker's
  task comes back within a minute, a killed pool process's at once; above twice every client's
  longest send, so no worker warns).

A worker marks itself ready in Redis (``tests:ready:<hostname>``) once it consumes, so tests wait
for that key instead of sleeping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
from celery import Celery
from celery.signals import worker_ready

from omnisend import Breaker, Client, Failover, RetryPolicy, Route
from omnisend.celery import CelerySender
from omnisend.providers import Clickatell
from omnisend.stores import RedisBreakerStore, connect
from omnisend.testing import get_emulator

REDIS = os.environ.get("OMNISEND_TEST_REDIS", "redis://127.0.0.1:6379/0")
#: The client's read timeout: the emulator's slow fault answers after it.
READ_TIMEOUT = 0.6
#: Queue retries come fast in tests (the client's own retries even faster).
QUEUE_RETRIES: dict[str, Any] = {"backoff": 0.05, "max_backoff": 0.3, "max_retries": 6}


def client_for(name: str) -> Callable[[], Client]:
    """A factory for a Client talking to the ``name`` emulator the test serves (its URL from the environment)."""

    def build() -> Client:
        provider = get_emulator(name)().make_provider(os.environ[f"OMNISEND_TEST_{name.upper()}_URL"])
        policy = RetryPolicy(max_attempts=2, initial_wait=0.001, max_wait=0.005, max_retry_after=0.01)
        # Reads cut at READ_TIMEOUT, connects at 2 s; the whole call (retries included) within 10 s.
        return Client(provider, retry=policy, timeout=httpx.Timeout(10.0, read=READ_TIMEOUT, connect=2.0))

    return build


def routed_client(redis_url: str, prefix: str) -> Callable[[], Client]:
    """Failover from Clickatell (with a key it refuses: ``AuthError`` opens its circuit at once) to SMSAPI,
    the breaker's state in Redis, shared by every worker."""

    def build() -> Client:
        clickatell = Clickatell(api_key="revoked-key", base_url=os.environ["OMNISEND_TEST_CLICKATELL_URL"])
        smsapi = get_emulator("smsapi")().make_provider(os.environ["OMNISEND_TEST_SMSAPI_URL"])
        breaker = Breaker(failures=3, cooldown=600, store=RedisBreakerStore(redis_url, prefix=prefix))
        router = Failover(Route(clickatell, sender="15551234567"), Route(smsapi), breaker=breaker)
        return Client(router, retry=None, timeout=httpx.Timeout(READ_TIMEOUT, connect=2.0))

    return build


def make_app(redis_url: str, *, queue: str = "omnisend-tests", visibility_timeout: float = 60.0) -> tuple[Celery, dict[str, CelerySender]]:
    """The app and its senders: workers build them from the environment, the test process from its own values.

    * ``smsapi`` — SMSAPI de-duplicates on the key;
    * ``clickatell`` — Clickatell does not;
    * ``limited`` — SMSAPI at 20 requests in any one second, across every worker;
    * ``routed`` — a Failover whose breaker state lives in Redis (:func:`routed_client`).
    """
    app = Celery("omnisend_tests", broker=redis_url)
    app.conf.update(
        broker_transport_options={"visibility_timeout": visibility_timeout},
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_default_queue=queue,
    )
    senders = {
        "smsapi": CelerySender(app, client=client_for("smsapi"), redis_url=redis_url, name="tests.smsapi", **QUEUE_RETRIES),
        "clickatell": CelerySender(
            app, client=client_for("clickatell"), redis_url=redis_url, name="tests.clickatell", **QUEUE_RETRIES
        ),
        "limited": CelerySender(
            app,
            client=client_for("smsapi"),
            redis_url=redis_url,
            name="tests.limited",
            rate_limits={"smsapi": "20/second"},
            **QUEUE_RETRIES,
        ),
        "routed": CelerySender(
            app, client=routed_client(redis_url, f"omnisend:{queue}:"), redis_url=redis_url, name="tests.routed"
        ),
    }
    return app, senders


app, senders = make_app(
    REDIS,
    queue=os.environ.get("OMNISEND_TEST_QUEUE", "omnisend-tests"),
    visibility_timeout=float(os.environ.get("OMNISEND_TEST_VISIBILITY_TIMEOUT", "60")),
)


@worker_ready.connect
def _ready(sender: Any = None, **_: Any) -> None:
    connect(REDIS).set(f"tests:ready:{sender.hostname}", os.getpid(), ex=600)
