"""[1] Sync ``Client.send`` vs a raw ``httpx.Client.post`` of the same request.

Both sides send the same SMSAPI ``sms.do`` form (recipient, text, sender, ``idx`` +
``check_idx=1``, ``details=1``) one request at a time over one keep-alive connection to the
same emulator server, and read the JSON answer. omnisend's side includes everything a caller
pays: building the ``Message`` (validation included), the idempotency key, the retry policy,
parsing into a ``SendResult``. Target: omnisend ≥ 0.9× the raw rate.
"""

from __future__ import annotations

import itertools

import httpx
from _harness import TOKEN, Figure, emulator_server, number, race, raw_form, text

from omnisend import Client, Message
from omnisend.providers import Smsapi

TARGET = 0.9


def run(*, count: int = 200, rounds: int = 16, base_url: str | None = None) -> Figure:
    """``rounds`` interleaved rounds of ``count`` sends per side."""
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(count=count, rounds=rounds, base_url=url)
    counter = itertools.count()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    endpoint = f"{base_url}/sms.do"

    with httpx.Client() as raw, Client(Smsapi(token=TOKEN, base_url=base_url)) as client:

        def raw_post(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                form = raw_form(i)
                response = raw.post(endpoint, data=form, headers=auth)
                body = response.json()
                if response.status_code != 200 or body.get("error"):
                    raise RuntimeError(f"raw post failed: {body}")

        def omnisend_send(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                client.send(Message(to=number(i), text=text(i), sender="Shop"))

        result = race({"raw": raw_post, "omnisend": omnisend_send}, count=count, rounds=rounds)

    ratio = result.ratio("omnisend", "raw")
    figure = Figure(1, "sync Client.send vs raw httpx.Client.post (same request, one at a time)")
    figure.add(result.line("raw", "raw httpx.Client.post"))
    figure.add(result.line("omnisend", "omnisend Client.send (Message built per send)"))
    figure.add(f"ratio omnisend/raw: {ratio:.2f}x   ({rounds} interleaved rounds of {count} per side)")
    figure.ratio, figure.target, figure.met = ratio, f">= {TARGET}x", ratio >= TARGET
    figure.data = {"raw_rps": result.rate("raw"), "omnisend_rps": result.rate("omnisend"), "ratio": ratio}
    return figure


if __name__ == "__main__":
    print(run().render())
