"""[7] CPU per ``Client.send``: Mobizon vs SMSAPI, same text, one at a time.

Two emulator servers (Mobizon's and SMSAPI's, each in its own process); a sync ``Client`` per
provider sends the same personalised text to a new number each time, in interleaved rounds.
The figure is this process's CPU time (``time.process_time``) per send through Mobizon over
the same through SMSAPI: what one adapter costs against the other, everything else equal.
Mobizon's API puts the key and the output format in the query string of every call
(``/service/message/sendSmsMessage?output=json&api=v1&apiKey=...``) and answers in a
``{code, data, message}`` envelope. Target: ≤ 1.2×.
"""

from __future__ import annotations

import itertools

from _harness import TOKEN, Figure, emulator_server, number, race, text

from omnisend import Client, Message
from omnisend.providers import Mobizon, Smsapi
from omnisend.testing.mobizon import MobizonEmulator

TARGET = 1.2


def run(*, count: int = 200, rounds: int = 10, urls: tuple[str, str] | None = None) -> Figure:
    """``rounds`` interleaved rounds of ``count`` sends per provider; ``urls``: (SMSAPI, Mobizon) servers."""
    if urls is None:
        with emulator_server("smsapi") as smsapi_url, emulator_server("mobizon") as mobizon_url:
            return run(count=count, rounds=rounds, urls=(smsapi_url, mobizon_url))
    smsapi_url, mobizon_url = urls
    counter = itertools.count()
    with (
        Client(Smsapi(token=TOKEN, base_url=smsapi_url)) as smsapi,
        Client(Mobizon(api_key=MobizonEmulator.default_credential, base_url=mobizon_url)) as mobizon,
    ):

        def sender(client: Client, prefix: str) -> object:
            def send(n: int) -> None:
                for _ in range(n):
                    i = next(counter)
                    to = number(i) if prefix == "+48" else f"+7701{i % 10_000_000:07d}"
                    client.send(Message(to=to, text=text(i), sender="Shop"))

            return send

        result = race({"smsapi": sender(smsapi, "+48"), "mobizon": sender(mobizon, "+7")}, count=count, rounds=rounds)

    figure = Figure(7, "CPU per Client.send: Mobizon vs SMSAPI (same text, one at a time)")
    figure.add(result.line("smsapi", "omnisend Client.send + Smsapi"))
    figure.add(result.line("mobizon", "omnisend Client.send + Mobizon"))
    check = figure.check("CPU per send, Mobizon / SMSAPI", result.cpu_ratio("mobizon", "smsapi"), "<=", TARGET)
    figure.data = {
        "smsapi_cpu_us": 1e6 * sorted(result.cpu_per_op("smsapi"))[len(result.cpu_per_op("smsapi")) // 2],
        "mobizon_cpu_us": 1e6 * sorted(result.cpu_per_op("mobizon"))[len(result.cpu_per_op("mobizon")) // 2],
        "cpu_ratio": check.spread.median,
    }
    return figure


if __name__ == "__main__":
    print(run().render())
