"""[6] Peak RSS of ``send_many`` over 50,000 generated messages, and 10,000 for comparison.

Each count runs in a fresh interpreter (``python bench_memory.py --child N WARMUP URL``) that sends
N personalised messages (one request each: nothing to merge) from a generator through
``AsyncClient.send_many`` with the aiohttp transport at concurrency 50, counting outcomes and
keeping none. It reports its RSS after a warm-up (imports, connection pool, first sends) and its
peak RSS (``ru_maxrss``) at the end. Target: the peak stays flat
(it grows by less than 5 MB or 10%) from 10,000 to 50,000 messages: memory does not depend on the number of messages.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Iterator

from _harness import TOKEN, Figure, emulator_server, number, run_child, text

from omnisend import AsyncClient, Message
from omnisend.providers import Smsapi
from omnisend.transports import aiohttp_client

CONCURRENCY = 50
WARMUP = 500


def run(*, counts: tuple[int, ...] = (10_000, 50_000), warmup: int = WARMUP, base_url: str | None = None) -> Figure:
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(counts=counts, warmup=warmup, base_url=url)
    figure = Figure(6, "peak RSS of send_many over generated messages (fresh process per count)")
    rows = []
    for count in counts:
        data = run_child([__file__, "--child", str(count), str(warmup), base_url], timeout=900)
        rows.append(data)
        figure.add(
            f"{count:>8,} messages   {data['seconds']:6.1f} s ({data['rate']:5.0f} msg/s)   "
            f"RSS after warm-up {data['rss_warm_mb']:6.1f} MB   peak {data['peak_mb']:6.1f} MB   "
            f"growth while sending {data['peak_mb'] - data['rss_warm_mb']:+5.1f} MB"  # type: ignore[operator]
        )
    small, large = rows[0], rows[-1]
    delta = float(large["peak_mb"]) - float(small["peak_mb"])  # type: ignore[arg-type]
    allowed = max(5.0, 0.10 * float(small["peak_mb"]))  # type: ignore[arg-type]
    figure.add(f"peak at {counts[-1]:,} vs {counts[0]:,}: {delta:+.1f} MB (flat if < {allowed:.1f} MB)")
    figure.ratio = float(large["peak_mb"]) / float(small["peak_mb"])  # type: ignore[arg-type]
    figure.target, figure.met = "flat (peak grows < 5 MB or 10%)", delta < allowed
    figure.data = {"runs": rows, "peak_delta_mb": delta}
    return figure


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


async def _child(count: int, warmup: int, base_url: str) -> dict[str, float]:
    def messages(n: int, offset: int) -> Iterator[Message]:
        for i in range(offset, offset + n):
            yield Message(to=number(i), text=text(i), sender="Shop")

    async with (
        aiohttp_client(concurrency=CONCURRENCY) as http,
        AsyncClient(Smsapi(token=TOKEN, base_url=base_url), http_client=http) as client,
    ):
        async for _ in client.send_many(messages(warmup, 10**8), concurrency=CONCURRENCY):
            pass
        warm = _rss_mb()
        ok = 0
        start = time.perf_counter()
        async for outcome in client.send_many(messages(count, 0), concurrency=CONCURRENCY):
            ok += outcome.ok
        seconds = time.perf_counter() - start
    if ok != count:
        raise RuntimeError(f"{count - ok} of {count} sends failed")
    return {"count": count, "seconds": seconds, "rate": count / seconds, "rss_warm_mb": warm, "peak_mb": _peak_mb()}


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(_child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))))
    else:
        print(run().render())
