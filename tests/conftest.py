"""Shared fixtures: recorded sleeps, clients wired to emulators (in-process or over TCP)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings

from omnisend import AsyncClient, Client, OmnisendError, RetryPolicy
from omnisend.testing import Emulator, EmulatorServer

FIXTURES = Path(__file__).parent / "fixtures"

# No per-example deadline: a property test must not fail because a shared CI machine was busy.
settings.register_profile("omnisend", deadline=None)
settings.load_profile("omnisend")


def _no_change_after_raise(self: BaseException, name: str, value: object) -> None:
    """``OmnisendError.__setattr__`` for the whole suite: an error that was raised is never changed."""
    if self.__traceback__ is not None:
        raise AssertionError(f"{type(self).__name__}.{name} set after the error was raised")
    BaseException.__setattr__(self, name, value)


@pytest.fixture(autouse=True)
def errors_never_change_after_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test checks it: omnisend builds each error once, complete, and never changes it once raised."""
    monkeypatch.setattr(OmnisendError, "__setattr__", _no_change_after_raise)


def load_codes(name: str) -> dict[str, Any]:
    """The vendor's documented code list kept in tests/fixtures/<name>_codes.json."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}_codes.json").read_text(encoding="utf-8"))
    return data


class Sleeps(list[float]):
    """A sleep function that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def policy(sleeps: Sleeps) -> RetryPolicy:
    """The default policy, but sleeping into a list."""
    return RetryPolicy(sleep=sleeps)


def inprocess_client(emulator: Emulator, policy: RetryPolicy | None, **options: Any) -> Client:
    """A Client talking to ``emulator`` through its in-process transport."""
    provider = emulator.make_provider("http://emulator.test", **options)
    return Client(provider, retry=policy, http_client=httpx.Client(transport=emulator.transport()))


def inprocess_async_client(emulator: Emulator, policy: RetryPolicy | None, **options: Any) -> AsyncClient:
    provider = emulator.make_provider("http://emulator.test", **options)
    return AsyncClient(provider, retry=policy, http_client=httpx.AsyncClient(transport=emulator.transport()))


@pytest.fixture
def serve() -> Iterator[Callable[[Emulator], EmulatorServer]]:
    """Serve emulators over real TCP on 127.0.0.1; all are stopped after the test."""
    servers: list[EmulatorServer] = []

    def start(emulator: Emulator) -> EmulatorServer:
        server = emulator.serve()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Tests that take seconds each: ``pytest -m "not slow"`` is the fast inner loop; ``make test`` runs all.
SLOW_MODULES = {"test_fuzz.py", "test_fault_injection.py", "test_benchmarks.py"}
SLOW_TESTS = {"test_examples_run", "test_one_async_client_shared_by_200_tasks"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES or getattr(item, "originalname", item.name) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


# -- a real redis-server (the Redis and Celery tests) ------------------------------------------


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A redis-server on a free port of 127.0.0.1 for the session; skipped without one (a failure under CI=true)."""
    from benchmarks.queue_run import MISSING, redis_server

    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """Database 1 of the session's redis-server, emptied for this test (workers use database 0)."""
    from omnisend.stores import connect

    url = redis_server_url.rsplit("/", 1)[0] + "/1"
    client = connect(url)
    client.flushdb()
    client.close()
    return url
