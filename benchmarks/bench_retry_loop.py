"""[10] What driving tenacity's state machine around every attempt would add to a send.

The engine (``omnisend._engine``) retries with a plain loop over its one verdict. The issue that
built it asked for tenacity's own state machine unless a measured figure shows a plain loop is
needed; this is that figure. Two variants, in interleaved rounds, over the SMSAPI emulator served
on loopback by another process:

* ``Client.send`` as it is;
* the same ``Client.send`` plus what tenacity's state machine costs for an attempt that succeeds:
  a ``tenacity.Retrying`` built from the policy (``RetryPolicy.tenacity_kwargs``), ``begin()``, a
  ``RetryCallState``, ``iter()`` for the attempt and ``iter()`` for its result — exactly the calls
  ``Retrying.__iter__`` makes around a block.

The figure is the CPU per send of the second over the first (``time.process_time`` of this
process). Reported, not judged: it says how much of a send tenacity's machinery would be.
"""

from __future__ import annotations

import itertools

import tenacity
from _harness import TOKEN, Figure, emulator_server, number, race, text
from tenacity import RetryCallState

from omnisend import Client, Message, RetryPolicy
from omnisend.providers import Smsapi


def tenacity_around_one_attempt(policy: RetryPolicy) -> None:
    """The state-machine calls ``tenacity.Retrying.__iter__`` makes for one successful attempt."""
    retrying = tenacity.Retrying(**policy.tenacity_kwargs(label="smsapi"))
    retrying.begin()
    state = RetryCallState(retrying, fn=None, args=(), kwargs={})
    action = retrying.iter(state)
    assert isinstance(action, tenacity.DoAttempt)
    state.set_result(None)
    retrying.iter(state)


def run(*, count: int = 200, rounds: int = 10, base_url: str | None = None) -> Figure:
    if base_url is None:
        with emulator_server("smsapi") as url:
            return run(count=count, rounds=rounds, base_url=url)
    counter = itertools.count()
    policy = RetryPolicy()
    with Client(Smsapi(token=TOKEN, base_url=base_url), retry=policy) as client:

        def plain(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                client.send(Message(to=number(i), text=text(i), sender="Shop"))

        def with_tenacity(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                tenacity_around_one_attempt(policy)
                client.send(Message(to=number(i), text=text(i), sender="Shop"))

        result = race({"plain": plain, "tenacity": with_tenacity}, count=count, rounds=rounds)
    figure = Figure(10, "The retry loop: tenacity's state machine around each attempt vs the plain verdict loop")
    figure.add(result.line("plain", "Client.send (plain verdict loop)"))
    figure.add(result.line("tenacity", "Client.send + tenacity's state machine"))
    spread = result.cpu_ratio("tenacity", "plain")
    figure.add(f"CPU per send with tenacity's state machine / without: {spread.text()}")
    cpu = sorted(result.cpu_per_op("tenacity"))[rounds // 2] - sorted(result.cpu_per_op("plain"))[rounds // 2]
    figure.add(f"tenacity's state machine per send: about {cpu * 1e6:.0f} us of CPU")
    figure.data = {"cpu_ratio": spread.median, "tenacity_us": cpu * 1e6}
    return figure


if __name__ == "__main__":
    print(run().render())
