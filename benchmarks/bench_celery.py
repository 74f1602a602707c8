"""[9] Sending through Celery workers (real redis-server, real workers, the emulator over loopback).

* throughput, 1 worker vs 2 (threads pool, 8 threads each), messages a second from the first
  enqueue to the last outcome read from Redis; rounds alternate 2, 1, 1, 2 (one worker is stopped
  and restarted between them), the figure is the median per count;
* a shared ``"20/second"`` across the 2 workers: the most requests the emulator saw in any one
  second (must be ≤ 20);
* the cost of one rate-limit hit in Redis: omnisend's sliding-log Lua script vs the ``limits``
  package's moving window (``RedisStorage``), alternating, median per hit, when ``limits`` is
  installed (``omnisend[bench]``).

Reported, not judged: 2 workers on a 2-core machine shared with other work scale by what the cores
leave them. Needs ``redis-server`` on PATH; without it the figure says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import time

from _harness import Figure, emulator_server
from queue_run import MISSING, Emulators, Workers, redis_server, run_rate, run_throughput


def hit_costs(redis_url: str, hits: int = 2000, rounds: int = 6) -> dict[str, float]:
    """Microseconds per admitted hit: omnisend's Lua sliding log vs ``limits``' moving window."""
    from omnisend.stores import RedisRateLimiter

    costs: dict[str, list[float]] = {"omnisend (Lua sliding log)": []}
    ours = RedisRateLimiter(redis_url, {"bench": (10**9, 1.0)})
    variants = {"omnisend (Lua sliding log)": lambda: ours.try_acquire("bench")}
    try:
        from limits import parse
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        theirs = MovingWindowRateLimiter(RedisStorage(redis_url))
        item = parse("1000000000/second")
        variants["limits MovingWindowRateLimiter"] = lambda: theirs.hit(item, "bench")
        costs["limits MovingWindowRateLimiter"] = []
    except ImportError:
        pass
    for r in range(rounds):
        for name in variants if r % 2 == 0 else list(reversed(variants)):
            call = variants[name]
            started = time.perf_counter()
            for _ in range(hits):
                call()
            costs[name].append((time.perf_counter() - started) / hits * 1e6)
            ours.redis.flushdb()  # database 3: the benchmark's own
    return {name: statistics.median(values) for name, values in costs.items()}


def run(*, messages: int = 600, rate_messages: int = 70) -> Figure:
    figure = Figure(9, "Celery: throughput with 1 vs 2 workers, a shared rate, rate-limit hit cost")
    if shutil.which("redis-server") is None:
        figure.add(MISSING)
        return figure
    rates: dict[int, list[float]] = {1: [], 2: []}
    with redis_server() as redis_url, Emulators() as emulators, emulator_server("smsapi") as vendor:
        urls = {**emulators.urls, "smsapi": vendor}
        with Workers(redis_url, urls=urls, count=2, concurrency=8) as workers:
            run_throughput(redis_url, workers, messages=100)  # warm: clients built, connections open
            rates[2].append(run_throughput(redis_url, workers, messages=messages))
            workers.procs[1].send_signal(signal.SIGQUIT)  # rounds 2, 1, 1, 2: one worker stops, then comes back
            workers.procs[1].wait(30)
            rates[1].append(run_throughput(redis_url, workers, messages=messages))
            rates[1].append(run_throughput(redis_url, workers, messages=messages))
            workers.restart(1)
            run_throughput(redis_url, workers, messages=50)
            rates[2].append(run_throughput(redis_url, workers, messages=messages))
        with Workers(redis_url, urls=emulators.urls, count=2, concurrency=8) as workers:
            rate = run_rate(redis_url, emulators, workers, messages=rate_messages)
        costs = hit_costs(redis_url.rsplit("/", 1)[0] + "/3")
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    figure.add(f"throughput, {messages} messages a round (threads pool, 8 threads a worker), load average {load:.1f}:")
    figure.add(f"  1 worker   {one:7.0f} msg/s   (rounds: {', '.join(f'{r:.0f}' for r in rates[1])})")
    figure.add(f"  2 workers  {two:7.0f} msg/s   (rounds: {', '.join(f'{r:.0f}' for r in rates[2])})   {two / one:.2f}x")
    figure.add(rate.summary())
    figure.add("one rate-limit hit in Redis (admitted), median of alternating rounds:")
    for name, micro in costs.items():
        figure.add(f"  {name:<34} {micro:6.0f} µs")
    figure.ratio = two / one
    figure.data = {
        "one_worker": one,
        "two_workers": two,
        "rounds": rates,
        "max_in_any_second": rate.max_in_any_second,
        "hit_us": costs,
    }
    return figure


if __name__ == "__main__":
    print(run().render())
