"""[3] 10,000 recipients, the same text: vendor-native batching vs one request per recipient.

``AsyncClient.send_many`` over 10,000 messages with identical content to distinct numbers,
through the aiohttp transport at concurrency 50, against the same SMSAPI emulator server: once
with batching (the default: consecutive identical content merged into SMSAPI's recipient list,
up to 1,000 per request) and once with ``batch=False``. The server counts the requests it
served; every one of the 10,000 outcomes must be a success either way.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

from _harness import TOKEN, Figure, emulator_server, number, server_stats

from omnisend import AsyncClient, Message
from omnisend.providers import Smsapi
from omnisend.transports import aiohttp_client

TEXT = "Spring sale: -20% on everything until Sunday. Reply STOP to opt out."
CONCURRENCY = 50


def run(*, recipients: int = 10_000, base_url: str | None = None) -> Figure:
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(recipients=recipients, base_url=url)
    counter = itertools.count()
    rows: dict[str, tuple[int, float, int]] = {}
    for label, batch in (("batched", True), ("one by one", False)):
        before = server_stats(base_url)["requests"]
        start = time.perf_counter()
        ok = asyncio.run(_send(base_url, recipients, batch, counter))
        elapsed = time.perf_counter() - start
        requests = server_stats(base_url)["requests"] - before
        if ok != recipients:
            raise RuntimeError(f"{label}: {recipients - ok} of {recipients} messages failed")
        rows[label] = (requests, elapsed, ok)
    figure = Figure(3, f"{recipients:,} recipients, same text: batched vs one request each (send_many, aiohttp)")
    for label, (requests, elapsed, ok) in rows.items():
        figure.add(f"{label:<12} {requests:>6,} requests   {elapsed:6.2f} s   {ok:,} outcomes ok")
    batched, single = rows["batched"], rows["one by one"]
    figure.add(f"batching: {single[0] / batched[0]:.0f}x fewer requests, {single[1] / batched[1]:.1f}x faster")
    figure.ratio = single[1] / batched[1]
    figure.data = {
        "batched_requests": batched[0],
        "batched_seconds": batched[1],
        "single_requests": single[0],
        "single_seconds": single[1],
    }
    return figure


async def _send(base_url: str, recipients: int, batch: bool, counter: Iterator[int]) -> int:
    def messages() -> Iterator[Message]:
        for _ in range(recipients):
            yield Message(to=number(next(counter)), text=TEXT, sender="Shop")

    ok = 0
    async with (
        aiohttp_client(concurrency=CONCURRENCY) as http,
        AsyncClient(Smsapi(token=TOKEN, base_url=base_url), http_client=http) as client,
    ):
        async for outcome in client.send_many(messages(), concurrency=CONCURRENCY, batch=batch):
            ok += outcome.ok and outcome.result is not None and not outcome.result.failed
    return ok


if __name__ == "__main__":
    print(run().render())
