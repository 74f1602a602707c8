"""[2] ``AsyncClient.send_many`` at concurrency 50 vs raw aiohttp: rate and CPU per message.

Four ways to send the same messages (one SMSAPI request each, personalised texts so nothing is
merged) with 50 in flight, to the same emulator server:

* raw aiohttp: a ``ClientSession`` with ``TCPConnector(limit=50)`` and 50 worker tasks posting
  the same form (``data=`` a dict) and reading the answer with ``.json()``;
* lean raw aiohttp, as a careful user writes it: the same, without a cookie jar
  (``DummyCookieJar``), the bodies encoded ahead of the round and posted as bytes with prepared
  headers, the answer read with ``json.loads(await response.read())``;
* omnisend on a default install: ``AsyncClient(Smsapi(...))``, nothing else configured;
* omnisend with ``omnisend.transports.aiohttp_client(concurrency=50)`` passed as ``http_client=``.

Targets (medians of per-round ratios): default install ≥ 0.8× raw aiohttp's rate; the aiohttp
transport ≥ 0.95× raw aiohttp and ≥ 0.8× lean raw aiohttp; the default install's client CPU
per message (``time.process_time`` of this process; the server runs in another) ≤ 1.05× raw
aiohttp's. A variant too slow to do a round in about a second gets smaller rounds (rates are
compared, so the pairs still hold).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
from _harness import RAW_HEADERS, TOKEN, Figure, Race, arace, emulator_server, number, raw_body, raw_form, text

from omnisend import AsyncClient, Message
from omnisend.providers import Smsapi
from omnisend.transports import aiohttp_client

DEFAULT_TARGET = 0.8
AIOHTTP_TARGET = 0.95
LEAN_TARGET = 0.8
CPU_TARGET = 1.05
CONCURRENCY = 50


def run(
    *,
    count: int = 800,
    rounds: int = 10,
    concurrency: int = CONCURRENCY,
    round_seconds: float = 1.0,
    base_url: str | None = None,
) -> Figure:
    """``rounds`` interleaved rounds of ``count`` messages per variant (fewer for a slow one)."""
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(count=count, rounds=rounds, concurrency=concurrency, round_seconds=round_seconds, base_url=url)
    result = asyncio.run(_race(base_url, count, rounds, concurrency, round_seconds))
    figure = Figure(2, f"async send_many at concurrency {concurrency} vs raw aiohttp (rate and client CPU)")
    figure.add(result.line("raw", f"raw aiohttp (TCPConnector(limit={concurrency}), data=dict)", "msg/s"))
    figure.add(result.line("lean", "lean raw aiohttp (no cookie jar, pre-encoded body)", "msg/s"))
    figure.add(result.line("default", "omnisend send_many, default install", "msg/s"))
    figure.add(result.line("aiohttp", "omnisend send_many + transports.aiohttp_client()", "msg/s"))
    default = figure.check("default install / raw aiohttp", result.speed("default", "raw"), ">=", DEFAULT_TARGET)
    transport = figure.check("aiohttp transport / raw aiohttp", result.speed("aiohttp", "raw"), ">=", AIOHTTP_TARGET)
    lean = figure.check("aiohttp transport / lean raw aiohttp", result.speed("aiohttp", "lean"), ">=", LEAN_TARGET)
    cpu = figure.check(
        "client CPU per message, default install / raw aiohttp", result.cpu_ratio("default", "raw"), "<=", CPU_TARGET
    )
    figure.add(
        f"(client CPU per message, aiohttp transport / raw aiohttp: {result.cpu_ratio('aiohttp', 'raw').text()})"
    )
    figure.data = {
        "raw_mps": result.rate("raw"),
        "lean_mps": result.rate("lean"),
        "default_mps": result.rate("default"),
        "aiohttp_mps": result.rate("aiohttp"),
        "ratio_default_vs_raw": default.spread.median,
        "ratio_vs_raw": transport.spread.median,
        "ratio_vs_lean": lean.spread.median,
        "cpu_ratio_default_vs_raw": cpu.spread.median,
        "cpu_ratio_aiohttp_vs_raw": result.cpu_ratio("aiohttp", "raw").median,
    }
    return figure


async def _race(base_url: str, count: int, rounds: int, concurrency: int, round_seconds: float) -> Race:
    counter = itertools.count()
    endpoint = f"{base_url}/sms.do"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def messages(n: int) -> Iterator[Message]:
        for _ in range(n):
            i = next(counter)
            yield Message(to=number(i), text=text(i), sender="Shop")

    def bodies(n: int) -> list[bytes]:
        return [raw_body(next(counter)) for _ in range(n)]

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency), cookie_jar=aiohttp.DummyCookieJar()
        ) as lean_session,
        aiohttp_client(concurrency=concurrency) as http,
        AsyncClient(Smsapi(token=TOKEN, base_url=base_url), http_client=http) as with_transport,
        AsyncClient(Smsapi(token=TOKEN, base_url=base_url)) as default,
    ):

        async def raw(n: int) -> None:
            todo = iter(range(n))

            async def worker() -> None:
                for _ in todo:
                    form = raw_form(next(counter))
                    async with session.post(endpoint, data=form, headers=auth) as response:
                        body = await response.json()
                        if response.status != 200 or body.get("error"):
                            raise RuntimeError(f"raw post failed: {body}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        async def lean(prepared: list[bytes]) -> None:
            todo = iter(prepared)

            async def worker() -> None:
                for data in todo:
                    async with lean_session.post(endpoint, data=data, headers=RAW_HEADERS) as response:
                        body = json.loads(await response.read())
                        if response.status != 200 or body.get("error"):
                            raise RuntimeError(f"lean post failed: {body}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        def with_client(client: AsyncClient) -> Callable[[int], Awaitable[None]]:
            async def send(n: int) -> None:
                async for outcome in client.send_many(messages(n), concurrency=concurrency):
                    if not outcome.ok:
                        raise RuntimeError(f"send failed: {outcome.error!r}")

            return send

        return await arace(
            {"raw": raw, "lean": lean, "default": with_client(default), "aiohttp": with_client(with_transport)},
            count=count,
            rounds=rounds,
            prepare={"lean": bodies},
            round_seconds=round_seconds,
            min_count=min(count, 2 * concurrency),
        )


if __name__ == "__main__":
    print(run().render())
