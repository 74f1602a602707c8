"""[5] Import + first send vs ``import httpx, pydantic, tenacity`` + a raw first post, fresh processes.

What a short-lived program (a cron job, a CLI call, a serverless function) pays before its first
message is out: each program below runs in its own ``python -c`` process against the same
emulator server, alternating, several times; bytecode caches are warm (one unmeasured run
first), as after a real install. The figure is the median of the per-run ratios of wall times
(interpreter start-up included on both sides).

* baseline: ``import httpx, pydantic, tenacity`` (omnisend's runtime dependencies), then one
  ``httpx.post`` of the pre-encoded SMSAPI form, reading the JSON answer;
* omnisend, default install: ``from omnisend import Client, Message``, the ``Smsapi`` provider,
  ``Client(...).send(Message(...))`` — with ``phonenumbers`` hidden, as after
  ``pip install omnisend`` (the extra adds libphonenumber's import, shown on its own line);
* reported only: ``import omnisend`` alone (lazy: the exception tree) and ``python -c pass``.

Target: omnisend's import + first send ≤ 1.3× the baseline's.
"""

from __future__ import annotations

import subprocess
import sys
import time

from _harness import RAW_HEADERS, TOKEN, Figure, Spread, child_env, emulator_server, raw_body

TARGET = 1.3

_BASELINE = """
import httpx, pydantic, tenacity
response = httpx.post({url!r} + "/sms.do", content={body!r}, headers={headers!r})
assert response.status_code == 200 and not response.json().get("error"), response.text
"""
_OMNISEND = """
{hide}from omnisend import Client, Message
from omnisend.providers import Smsapi
with Client(Smsapi(token={token!r}, base_url={url!r})) as client:
    client.send(Message(to={to!r}, text="Your code is 123456", sender="Shop"))
"""
_HIDE_PHONENUMBERS = "import sys; sys.modules['phonenumbers'] = None  # as without the extra\n"


def _time(program: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", program], env=child_env(), check=True)
    return time.perf_counter() - start


def run(*, runs: int = 9, warm: bool = True, base_url: str | None = None) -> Figure:
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(runs=runs, warm=warm, base_url=url)
    serial = iter(range(10**6))

    def programs() -> dict[str, str]:  # fresh recipients and idx each time
        return {
            "baseline": _BASELINE.format(url=base_url, body=raw_body(next(serial)), headers=RAW_HEADERS),
            "default": _OMNISEND.format(
                hide=_HIDE_PHONENUMBERS, token=TOKEN, url=base_url, to=f"+48501{next(serial):06d}"
            ),
            "phonenumbers": _OMNISEND.format(hide="", token=TOKEN, url=base_url, to=f"+48502{next(serial):06d}"),
            "lazy": "import omnisend",
            "pass": "pass",
        }

    names = list(programs())
    if warm:
        for program in programs().values():  # warm the bytecode cache, unmeasured
            _time(program)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        current = programs()
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(_time(current[name]))

    def ms(name: str) -> Spread:
        return Spread(tuple(t * 1000 for t in times[name]))

    def vs_baseline(name: str) -> Spread:
        return Spread(tuple(ours / base for ours, base in zip(times[name], times["baseline"], strict=True)))

    figure = Figure(5, "import + first send, fresh interpreter each (wall time)")
    labels = {
        "pass": "python -c pass (interpreter start-up)",
        "baseline": "import httpx, pydantic, tenacity + raw httpx.post",
        "default": "omnisend import + Client.send (default install)",
        "phonenumbers": "omnisend import + Client.send (phonenumbers extra)",
        "lazy": "import omnisend (lazy: exceptions only)",
    }
    for name in names:
        ratio = "" if name in ("pass", "baseline") else f"   {vs_baseline(name).median:.2f}x"
        figure.add(f"{labels[name]:<52} {ms(name).text('.0f', ' ms')}{ratio}")
    check = figure.check(
        "import + first send, omnisend (default install) / baseline", vs_baseline("default"), "<=", TARGET
    )
    figure.data = {
        "baseline_ms": ms("baseline").median,
        "omnisend_ms": ms("default").median,
        "phonenumbers_ms": ms("phonenumbers").median,
        "lazy_import_ms": ms("lazy").median,
        "python_ms": ms("pass").median,
        "ratio": check.spread.median,
        "ratio_phonenumbers": vs_baseline("phonenumbers").median,
    }
    return figure


if __name__ == "__main__":
    print(run().render())
