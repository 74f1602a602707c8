"""[2] ``AsyncClient.send_many`` at concurrency 50: aiohttp transport vs raw aiohttp, and vs httpx.

Three ways to send the same messages (one SMSAPI request each, personalised texts so nothing is
merged) with 50 in flight, to the same emulator server:

* raw aiohttp: a ``ClientSession`` with ``TCPConnector(limit=50)`` and 50 worker tasks posting
  the same form and reading the JSON answer — the floor any Python SDK on aiohttp pays;
* omnisend with ``omnisend.transports.aiohttp_client(concurrency=50)``;
* omnisend with its default transport (plain ``httpx.AsyncClient``).

Targets: omnisend+aiohttp ≥ 0.8× raw aiohttp; the gain over the default httpx transport is
reported.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
from _harness import TOKEN, Figure, Race, arace, emulator_server, number, raw_form, text

from omnisend import AsyncClient, Message
from omnisend.providers import Smsapi
from omnisend.transports import aiohttp_client

TARGET = 0.8
CONCURRENCY = 50


def run(
    *,
    count: int = 800,
    rounds: int = 12,
    httpx_count: int = 300,
    httpx_rounds: int = 3,
    concurrency: int = CONCURRENCY,
    base_url: str | None = None,
) -> Figure:
    """``rounds`` interleaved rounds of ``count`` messages: raw aiohttp vs omnisend+aiohttp; then
    ``httpx_rounds`` of ``httpx_count``: omnisend+aiohttp vs omnisend+httpx (the slow one)."""
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(
                count=count,
                rounds=rounds,
                httpx_count=httpx_count,
                httpx_rounds=httpx_rounds,
                concurrency=concurrency,
                base_url=url,
            )
    main, gain = asyncio.run(_race(base_url, count, rounds, httpx_count, httpx_rounds, concurrency))
    vs_raw = main.ratio("aiohttp", "raw")
    vs_httpx = gain.ratio("aiohttp", "httpx")
    figure = Figure(2, f"async send_many at concurrency {concurrency}: aiohttp transport vs raw aiohttp, and vs httpx")
    figure.add(main.line("raw", "raw aiohttp (50 workers, TCPConnector(limit=50))", "msg/s"))
    figure.add(main.line("aiohttp", "omnisend send_many + aiohttp_client()", "msg/s"))
    figure.add(f"ratio omnisend+aiohttp / raw aiohttp: {vs_raw:.2f}x   ({rounds} interleaved rounds of {count})")
    figure.add(gain.line("aiohttp", "omnisend send_many + aiohttp_client()", "msg/s"))
    figure.add(gain.line("httpx", "omnisend send_many + default httpx transport", "msg/s"))
    figure.add(
        f"gain of the aiohttp transport over httpx: {vs_httpx:.2f}x   ({httpx_rounds} interleaved rounds of {httpx_count})"
    )
    figure.ratio, figure.target, figure.met = vs_raw, f">= {TARGET}x raw aiohttp", vs_raw >= TARGET
    figure.data = {
        "raw_mps": main.rate("raw"),
        "aiohttp_mps": main.rate("aiohttp"),
        "httpx_mps": gain.rate("httpx"),
        "ratio_vs_raw": vs_raw,
        "gain_vs_httpx": vs_httpx,
    }
    return figure


async def _race(
    base_url: str, count: int, rounds: int, httpx_count: int, httpx_rounds: int, concurrency: int
) -> tuple[Race, Race]:
    counter = itertools.count()
    endpoint = f"{base_url}/sms.do"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def messages(n: int) -> Iterator[Message]:
        for _ in range(n):
            i = next(counter)
            yield Message(to=number(i), text=text(i), sender="Shop")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        aiohttp_client(concurrency=concurrency) as http,
        AsyncClient(Smsapi(token=TOKEN, base_url=base_url), http_client=http) as fast,
        AsyncClient(Smsapi(token=TOKEN, base_url=base_url)) as default,
    ):

        async def raw(n: int) -> None:
            todo = iter(range(n))

            async def worker() -> None:
                for _ in todo:
                    i = next(counter)
                    form = raw_form(i)
                    async with session.post(endpoint, data=form, headers=auth) as response:
                        body = await response.json()
                        if response.status != 200 or body.get("error"):
                            raise RuntimeError(f"raw post failed: {body}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        def with_client(client: AsyncClient) -> Callable[[int], Awaitable[None]]:
            async def send(n: int) -> None:
                async for outcome in client.send_many(messages(n), concurrency=concurrency):
                    if not outcome.ok:
                        raise RuntimeError(f"send failed: {outcome.error!r}")

            return send

        main = await arace({"raw": raw, "aiohttp": with_client(fast)}, count=count, rounds=rounds)
        gain = await arace(
            {"aiohttp": with_client(fast), "httpx": with_client(default)}, count=httpx_count, rounds=httpx_rounds
        )
        return main, gain


if __name__ == "__main__":
    print(run().render())
