"""[1] Sync ``Client.send`` one at a time vs raw ``httpx.Client``, wall time and CPU.

Three ways to send the same SMSAPI ``sms.do`` form (recipient, text, sender, ``idx`` +
``check_idx=1``, ``details=1``) one request at a time over one keep-alive connection to the same
emulator server, reading the JSON answer:

* raw ``httpx.Client.post`` as a careful user writes it: one ``httpx.Client`` (keep-alive), the
  body encoded ahead of the round and posted as ``content=`` with prepared headers;
* httpx's floor: ``httpx.Request`` objects built ahead of the round, each sent with
  ``httpx.Client.send`` — the least CPU a request through ``httpx.Client`` costs;
* omnisend ``Client.send``, paying for everything a caller pays: building the ``Message``
  (validation included), the idempotency key, the request, the retry policy, parsing into a
  ``SendResult``.

Targets: omnisend's send rate ≥ 1.3× the raw post's (wall); omnisend's CPU per send ≤ 1.1× the
floor's (``time.process_time`` of this process: the server runs in another one).
"""

from __future__ import annotations

import itertools

import httpx
from _harness import RAW_HEADERS, TOKEN, Figure, emulator_server, number, race, raw_body, text

from omnisend import Client, Message
from omnisend.providers import Smsapi

SPEED_TARGET = 1.3
CPU_TARGET = 1.1


def run(*, count: int = 200, rounds: int = 12, base_url: str | None = None) -> Figure:
    """``rounds`` interleaved rounds of ``count`` sends per variant."""
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(count=count, rounds=rounds, base_url=url)
    counter = itertools.count()
    endpoint = f"{base_url}/sms.do"

    with httpx.Client() as raw, Client(Smsapi(token=TOKEN, base_url=base_url)) as client:

        def bodies(n: int) -> list[bytes]:
            return [raw_body(next(counter)) for _ in range(n)]

        def requests(n: int) -> list[httpx.Request]:
            return [raw.build_request("POST", endpoint, content=body, headers=RAW_HEADERS) for body in bodies(n)]

        def raw_post(prepared: list[bytes]) -> None:
            for body in prepared:
                response = raw.post(endpoint, content=body, headers=RAW_HEADERS)
                answer = response.json()
                if response.status_code != 200 or answer.get("error"):
                    raise RuntimeError(f"raw post failed: {answer}")

        def floor(prepared: list[httpx.Request]) -> None:
            for request in prepared:
                response = raw.send(request)
                answer = response.json()
                if response.status_code != 200 or answer.get("error"):
                    raise RuntimeError(f"raw send failed: {answer}")

        def omnisend_send(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                client.send(Message(to=number(i), text=text(i), sender="Shop"))

        result = race(
            {"raw": raw_post, "floor": floor, "omnisend": omnisend_send},
            count=count,
            rounds=rounds,
            prepare={"raw": bodies, "floor": requests},
        )

    figure = Figure(1, "sync send one at a time: omnisend Client.send vs raw httpx.Client (wall and CPU)")
    figure.add(result.line("raw", "raw httpx.Client.post (pre-encoded body)"))
    figure.add(result.line("floor", "httpx floor: prebuilt Request, Client.send"))
    figure.add(result.line("omnisend", "omnisend Client.send (Message built per send)"))
    speed = figure.check(
        "send rate, omnisend / raw httpx.Client.post", result.speed("omnisend", "raw"), ">=", SPEED_TARGET
    )
    cpu = figure.check("CPU per send, omnisend / httpx floor", result.cpu_ratio("omnisend", "floor"), "<=", CPU_TARGET)
    figure.data = {
        "raw_rps": result.rate("raw"),
        "floor_rps": result.rate("floor"),
        "omnisend_rps": result.rate("omnisend"),
        "ratio": speed.spread.median,
        "cpu_ratio_vs_floor": cpu.spread.median,
    }
    return figure


if __name__ == "__main__":
    print(run().render())
