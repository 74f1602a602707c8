"""[8] 20,000 personalised messages through a default ``AsyncClient`` vs the fastest transport.

``AsyncClient.send_many`` at concurrency 50 over personalised texts (one SMSAPI request each),
against the SMSAPI emulator server: once with the client a default install gives
(``AsyncClient(Smsapi(...))``), once with ``transports.aiohttp_client()`` passed in, in
interleaved rounds of a quarter of the messages each (a new client per round, as a job would
make). The figure is the median of the per-round time ratios, default / aiohttp transport; the
total time for all the messages is shown for each. Target: the default within 1.2× of the
fastest transport.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

from _harness import TOKEN, Figure, Spread, emulator_server, number, text

from omnisend import AsyncClient, Message
from omnisend.providers import Smsapi
from omnisend.transports import aiohttp_client

TARGET = 1.2
CONCURRENCY = 50


def run(*, messages: int = 20_000, rounds: int = 4, base_url: str | None = None) -> Figure:
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(messages=messages, rounds=rounds, base_url=url)
    counter = itertools.count()
    per_round = max(1, messages // rounds)
    seconds: dict[str, list[float]] = {"default": [], "aiohttp": []}
    for r in range(rounds):
        for name in ("default", "aiohttp") if r % 2 == 0 else ("aiohttp", "default"):
            seconds[name].append(asyncio.run(_send(name, base_url, per_round, counter)))
    ratio = Spread(tuple(d / a for d, a in zip(seconds["default"], seconds["aiohttp"], strict=True)))
    total = per_round * rounds
    figure = Figure(
        8,
        f"{total:,} personalised messages, send_many at concurrency {CONCURRENCY}: default install vs aiohttp transport",
    )
    for name, label in (("default", "default AsyncClient"), ("aiohttp", "AsyncClient + aiohttp_client()")):
        spent = sum(seconds[name])
        figure.add(f"{label:<32} {spent:7.1f} s   ({total / spent:5.0f} msg/s; {rounds} rounds of {per_round:,})")
    check = figure.check("time, default / aiohttp transport", ratio, "<=", TARGET)
    figure.data = {
        "default_seconds": sum(seconds["default"]),
        "aiohttp_seconds": sum(seconds["aiohttp"]),
        "ratio": check.spread.median,
    }
    return figure


async def _send(name: str, base_url: str, count: int, counter: Iterator[int]) -> float:
    def messages() -> Iterator[Message]:
        for _ in range(count):
            i = next(counter)
            yield Message(to=number(i), text=text(i), sender="Shop")

    loop = asyncio.get_running_loop()
    provider = Smsapi(token=TOKEN, base_url=base_url)
    ok = 0
    if name == "default":
        start = loop.time()
        async with AsyncClient(provider) as client:
            async for outcome in client.send_many(messages(), concurrency=CONCURRENCY):
                ok += outcome.ok
    else:
        start = loop.time()
        async with aiohttp_client(concurrency=CONCURRENCY) as http, AsyncClient(provider, http_client=http) as client:
            async for outcome in client.send_many(messages(), concurrency=CONCURRENCY):
                ok += outcome.ok
    spent = loop.time() - start
    if ok != count:
        raise RuntimeError(f"{name}: {count - ok} of {count} sends failed")
    return spent


if __name__ == "__main__":
    print(run().render())
