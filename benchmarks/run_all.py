"""Run every omnisend benchmark and print its figures: ``make bench`` (or ``python benchmarks/run_all.py``).

1. sync ``send`` one at a time: vs a raw ``httpx.Client.post``           target ≥ 1.3× (rate)
   CPU per send vs httpx's floor (a prebuilt request, ``Client.send``)   target ≤ 1.1×
2. async ``send_many`` at concurrency 50: default install vs raw aiohttp  target ≥ 0.8×
   aiohttp transport vs raw aiohttp / vs a lean raw aiohttp client       targets ≥ 0.95× / ≥ 0.8×
   client CPU per message, default install vs raw aiohttp               target ≤ 1.05×
3. 10,000 recipients, same text: batched vs one by one                  requests and wall time
4. omnisend's SMSAPI adapter vs the official ``smsapi-client``            target ≥ 1.0×
5. import + first send vs ``import httpx, pydantic, tenacity`` + a post   target ≤ 1.3×
6. peak RSS of ``send_many`` over 50,000 messages vs 10,000               target: flat
7. CPU per ``Client.send``, Mobizon vs SMSAPI                             target ≤ 1.2×
8. 20,000 messages, default ``AsyncClient`` vs the aiohttp transport     target ≤ 1.2× (time)
9. Celery: 1 vs 2 workers, a shared rate across them, rate-limit hit cost reported (needs redis-server)
10. the retry loop: tenacity's state machine around each attempt vs the plain verdict loop  reported

Every comparison runs both sides in one run, in alternating rounds, against the same emulator
served over loopback HTTP by a separate process (``benchmarks/_server.py``). Nothing leaves
127.0.0.1. A judged figure is the median of the per-round ratios, printed with its
interquartile range and its range over the rounds; the load average is printed before and after
each benchmark (the machine may be shared). ``--quick`` runs smaller sizes (a minute instead of a few); ``--only 1,3`` picks
benchmarks; ``--json FILE`` also writes the figures as JSON. The exit status is 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_async_send_many
import bench_batching
import bench_bulk_default
import bench_celery
import bench_import_time
import bench_memory
import bench_mobizon
import bench_retry_loop
import bench_smsapi_official
import bench_sync_send
from _harness import Figure, load_average

import omnisend

FULL: dict[int, Callable[[], Figure]] = {
    1: lambda: bench_sync_send.run(),
    2: lambda: bench_async_send_many.run(),
    3: lambda: bench_batching.run(),
    4: lambda: bench_smsapi_official.run(),
    5: lambda: bench_import_time.run(),
    6: lambda: bench_memory.run(counts=(10_000, 50_000)),
    7: lambda: bench_mobizon.run(),
    8: lambda: bench_bulk_default.run(),
    9: lambda: bench_celery.run(),
    10: lambda: bench_retry_loop.run(),
}
QUICK: dict[int, Callable[[], Figure]] = {
    1: lambda: bench_sync_send.run(count=100, rounds=6),
    2: lambda: bench_async_send_many.run(count=400, rounds=4, round_seconds=0.5),
    3: lambda: bench_batching.run(recipients=2_000),
    4: lambda: bench_smsapi_official.run(count=50, rounds=6),
    5: lambda: bench_import_time.run(runs=3),
    6: lambda: bench_memory.run(counts=(2_000, 20_000)),
    7: lambda: bench_mobizon.run(count=100, rounds=6),
    8: lambda: bench_bulk_default.run(messages=2_000, rounds=2),
    9: lambda: bench_celery.run(messages=200, rate_messages=50),
    10: lambda: bench_retry_loop.run(count=100, rounds=6),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the omnisend benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", default="", help="comma-separated benchmark numbers, e.g. 1,3")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    suite = QUICK if args.quick else FULL
    chosen = [int(n) for n in args.only.split(",") if n.strip()] or sorted(suite)

    load = load_average()
    print(
        f"omnisend {omnisend.__version__} benchmarks{' (quick)' if args.quick else ''} — "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load:.2f}"
    )
    print()
    figures: list[Figure] = []
    start = time.perf_counter()
    for number in chosen:
        began, load_before = time.perf_counter(), load_average()
        figure = suite[number]()
        figures.append(figure)
        figure.data["load_average"] = (load_before, load_average())
        print(figure.render())
        print(f"    ({time.perf_counter() - began:.0f} s, load average {load_before:.2f} -> {load_average():.2f})")
        print()
    print(f"summary ({time.perf_counter() - start:.0f} s):")
    for figure in figures:
        for line in figure.summary():
            print(f"  {line}")
    if args.json:
        payload = [
            {"number": f.number, "title": f.title, "lines": f.lines, "ratio": f.ratio, "target": f.target,
             "met": f.met, "data": f.data,
             "checks": [{"label": c.label, "median": c.spread.median, "iqr": c.spread.iqr, "min": c.spread.lo,
                         "max": c.spread.hi, "rounds": c.spread.values, "op": c.op, "target": c.target, "met": c.met}
                        for c in f.checks]}
            for f in figures
        ]  # fmt: skip
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return 1 if any(f.met is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
