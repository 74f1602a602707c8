"""[4] omnisend's SMSAPI adapter vs the official SMSAPI Python client (``smsapi-client``).

Both send the same SMS (recipient, text, sender, ``idx`` + ``check_idx=1``, ``details=1``,
``encoding=utf-8``) one at a time to the same SMSAPI emulator server and return a parsed result.
The official client is pointed at the emulator through its ``domain`` argument
(``smsapi.client.Client(domain, access_token=...)``: every endpoint is ``domain + path``). It
sends each request with ``requests.request()``, so each send opens a new connection; omnisend's
``Client`` keeps a keep-alive pool. Target: omnisend at least as fast (≥ 1.0×).

``smsapi-client`` is a benchmark-only dependency (the ``bench`` extra; ``make bench`` installs it).
"""

from __future__ import annotations

import itertools
import uuid

from _harness import TOKEN, Figure, emulator_server, number, race, text

from omnisend import Client, Message
from omnisend.providers import Smsapi


def run(*, count: int = 100, rounds: int = 10, base_url: str | None = None) -> Figure:
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(count=count, rounds=rounds, base_url=url)
    try:
        from smsapi.client import Client as SmsapiClient
    except ImportError as exc:  # pragma: no cover - depends on the bench extra
        raise SystemExit("benchmark 4 needs the official client: pip install 'omnisend[bench]'") from exc

    counter = itertools.count()
    official = SmsapiClient(f"{base_url}/", access_token=TOKEN)

    def official_send(n: int) -> None:
        for _ in range(n):
            i = next(counter)
            results = official.sms.send(
                to=number(i).lstrip("+"),
                message=text(i),
                from_="Shop",
                idx=uuid.uuid4().hex,
                check_idx=1,
                details=1,
                encoding="utf-8",
            )
            if not results.count or results.results[0].id is None:
                raise RuntimeError("the official client got no message id")

    with Client(Smsapi(token=TOKEN, base_url=base_url)) as client:

        def omnisend_send(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                client.send(Message(to=number(i), text=text(i), sender="Shop"))

        result = race({"official": official_send, "omnisend": omnisend_send}, count=count, rounds=rounds, warmup=20)

    figure = Figure(4, "omnisend Smsapi adapter vs the official smsapi-client, same SMS, one at a time")
    figure.add(result.line("official", "official smsapi-client (requests)"))
    figure.add(result.line("omnisend", "omnisend Client.send + Smsapi"))
    check = figure.check("send rate, omnisend / official client", result.speed("omnisend", "official"), ">=", 1.0)
    ratio = check.spread.median
    figure.data = {"official_rps": result.rate("official"), "omnisend_rps": result.rate("omnisend"), "ratio": ratio}
    return figure


if __name__ == "__main__":
    print(run().render())
