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
    "bench_mobizon",
    "bench_bulk_default",
    "bench_celery",
    "bench_retry_loop",
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


def test_run_all_knows_all_ten() -> None:
    run_all = load("run_all")
    assert sorted(run_all.FULL) == sorted(run_all.QUICK) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_spread_and_checks() -> None:
    harness = load("_harness")
    spread = harness.Spread((1.0, 2.0, 3.0, 4.0, 5.0))
    assert (spread.median, spread.iqr, spread.lo, spread.hi) == (3.0, (2.0, 4.0), 1.0, 5.0)
    assert spread.text() == "3.00x (IQR 2.00-4.00, range 1.00-5.00 over 5 rounds)"
    figure = harness.Figure(9, "t")
    assert figure.check("fast", spread, ">=", 3.0).met and figure.met is True
    assert not figure.check("cheap", spread, "<=", 2.5).met and figure.met is False
    assert figure.verdict() == "TARGET MISSED" and len(figure.summary()) == 2


def test_race_pairs_rounds_and_prepares_outside_the_timing() -> None:
    harness = load("_harness")
    seen: list[object] = []
    result = harness.race(
        {"a": lambda n: seen.append(("a", n)), "b": lambda items: seen.append(("b", items))},
        count=3,
        rounds=4,
        warmup=1,
        prepare={"b": lambda n: list(range(n))},
    )
    assert ("b", [0, 1, 2]) in seen and ("a", 3) in seen
    assert result.rounds == 4 and len(result.speed("a", "b").values) == 4
    assert all(c >= 0 for c in result.cpu["a"])


def test_the_server_counts_requests(base_url: str) -> None:
    harness = load("_harness")
    before = harness.server_stats(base_url)
    after = harness.server_stats(base_url)
    assert after["requests"] == before["requests"]  # stats requests are not counted


def test_sync_send(base_url: str) -> None:
    figure = load("bench_sync_send").run(count=3, rounds=2, base_url=base_url)
    assert figure.number == 1 and figure.met is not None and len(figure.checks) == 2
    assert figure.data["ratio"] > 0 and figure.data["cpu_ratio_vs_floor"] > 0


def test_async_send_many(base_url: str) -> None:
    figure = load("bench_async_send_many").run(count=10, rounds=2, concurrency=4, round_seconds=0.5, base_url=base_url)
    assert figure.number == 2 and len(figure.checks) == 4
    for key in ("ratio_default_vs_raw", "ratio_vs_raw", "ratio_vs_lean", "cpu_ratio_default_vs_raw"):
        assert figure.data[key] > 0


def test_batching(base_url: str) -> None:
    figure = load("bench_batching").run(recipients=30, base_url=base_url)
    assert figure.data["batched_requests"] == 1 and figure.data["single_requests"] == 30


def test_official_client(base_url: str) -> None:
    pytest.importorskip("smsapi.client", reason="the bench extra (smsapi-client) is not installed")
    figure = load("bench_smsapi_official").run(count=2, rounds=2, base_url=base_url)
    assert figure.number == 4 and figure.data["official_rps"] > 0 and figure.data["omnisend_rps"] > 0


def test_import_time(base_url: str) -> None:
    figure = load("bench_import_time").run(runs=1, warm=False, base_url=base_url)
    assert figure.number == 5 and figure.data["omnisend_ms"] > 0 and figure.data["baseline_ms"] > 0
    assert figure.data["phonenumbers_ms"] > 0 and figure.checks[0].label.startswith("import + first send")


def test_mobizon_vs_smsapi(base_url: str) -> None:
    harness = load("_harness")
    with harness.emulator_server("mobizon") as mobizon_url:
        figure = load("bench_mobizon").run(count=3, rounds=2, urls=(base_url, mobizon_url))
    assert figure.number == 7 and figure.data["cpu_ratio"] > 0 and figure.data["mobizon_cpu_us"] > 0


def test_retry_loop(base_url: str) -> None:
    figure = load("bench_retry_loop").run(count=3, rounds=2, base_url=base_url)
    assert figure.number == 10 and figure.data["cpu_ratio"] > 0 and "tenacity_us" in figure.data


def test_bulk_default(base_url: str) -> None:
    figure = load("bench_bulk_default").run(messages=20, rounds=2, base_url=base_url)
    assert figure.number == 8 and figure.data["ratio"] > 0 and figure.data["default_seconds"] > 0


def test_memory(base_url: str) -> None:
    figure = load("bench_memory").run(counts=(10, 20), warmup=5, base_url=base_url)
    runs = figure.data["runs"]
    assert [r["count"] for r in runs] == [10, 20] and all(r["peak_mb"] > 0 for r in runs)


def test_celery_rate_limit_hit_cost(redis_url: str) -> None:
    """Benchmark 7's Redis part (its worker part is what tests/test_celery.py runs, larger)."""
    costs = load("bench_celery").hit_costs(redis_url, hits=20, rounds=2)
    assert costs["omnisend (Lua sliding log)"] > 0
