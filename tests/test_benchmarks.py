"""Every benchmark module imports and its smallest configuration runs, so ``make bench`` cannot rot.

The figures themselves are not checked here (tiny sizes on a busy machine mean nothing): only
that each benchmark talks to the loopback server, completes, and reports what it promises.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MODULES = [
    "bench_sync_send",
    "bench_async_send_many",
    "bench_batching",
    "bench_smsapi_official",
    "bench_import_time",
    "bench_memory",
]


def load(name: str) -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """One benchmark server (a separate process) for the whole module."""
    harness = load("_harness")
    with harness.emulator_server("smsapi") as url:
        yield url


def test_run_all_knows_all_six() -> None:
    run_all = load("run_all")
    assert sorted(run_all.FULL) == sorted(run_all.QUICK) == [1, 2, 3, 4, 5, 6]


def test_the_server_counts_requests(base_url: str) -> None:
    harness = load("_harness")
    before = harness.server_stats(base_url)
    after = harness.server_stats(base_url)
    assert after["requests"] == before["requests"]  # stats requests are not counted


def test_sync_send(base_url: str) -> None:
    figure = load("bench_sync_send").run(count=3, rounds=2, base_url=base_url)
    assert figure.number == 1 and figure.ratio is not None and figure.ratio > 0 and figure.met is not None


def test_async_send_many(base_url: str) -> None:
    figure = load("bench_async_send_many").run(
        count=10, rounds=2, httpx_count=5, httpx_rounds=1, concurrency=4, base_url=base_url
    )
    assert figure.number == 2 and figure.data["gain_vs_httpx"] > 0 and figure.data["ratio_vs_raw"] > 0


def test_batching(base_url: str) -> None:
    figure = load("bench_batching").run(recipients=30, base_url=base_url)
    assert figure.data["batched_requests"] == 1 and figure.data["single_requests"] == 30


def test_official_client(base_url: str) -> None:
    pytest.importorskip("smsapi.client", reason="the bench extra (smsapi-client) is not installed")
    figure = load("bench_smsapi_official").run(count=2, rounds=2, base_url=base_url)
    assert figure.number == 4 and figure.data["official_rps"] > 0 and figure.data["omnisend_rps"] > 0


def test_import_time() -> None:
    figure = load("bench_import_time").run(runs=1, warm=False)
    assert figure.number == 5 and figure.data["omnisend_ms"] > 0 and figure.data["baseline_ms"] > 0


def test_memory(base_url: str) -> None:
    figure = load("bench_memory").run(counts=(10, 20), warmup=5, base_url=base_url)
    runs = figure.data["runs"]
    assert [r["count"] for r in runs] == [10, 20] and all(r["peak_mb"] > 0 for r in runs)
