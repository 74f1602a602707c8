"""[5] ``import omnisend`` vs ``import httpx, pydantic, tenacity``, each in a fresh interpreter.

Each statement runs in its own ``python -c`` process, alternating, several times; the figure is
the median wall time of each, minus nothing (interpreter start-up is in both). Bytecode caches
are warm (one unmeasured run first), as after a real install. Also shown, not judged: the
import a program actually does before its first send,
``from omnisend import Client, Message; from omnisend.providers import Smsapi``.
Target: ``import omnisend`` ≤ 1.3× the dependencies.
"""

from __future__ import annotations

import subprocess
import sys
import time

from _harness import Figure, child_env, median

TARGET = 1.3
BASELINE = "import httpx, pydantic, tenacity"
OMNISEND = "import omnisend"
TYPICAL = "from omnisend import Client, Message; from omnisend.providers import Smsapi"


def _time(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], env=child_env(), check=True)
    return time.perf_counter() - start


def run(*, runs: int = 11, warm: bool = True) -> Figure:
    statements = [BASELINE, OMNISEND, TYPICAL, "pass"]
    for statement in statements if warm else ():  # warm the bytecode cache, unmeasured
        _time(statement)
    times: dict[str, list[float]] = {s: [] for s in statements}
    for r in range(runs):
        for statement in statements if r % 2 == 0 else reversed(statements):
            times[statement].append(_time(statement))
    base, omni, typical, bare = (median(times[s]) * 1000 for s in statements)
    ratio = omni / base
    figure = Figure(5, "import time, fresh interpreter each (median wall time)")
    figure.add(f"{'python -c pass (interpreter start-up)':<72} {bare:7.1f} ms")
    figure.add(f"{BASELINE:<72} {base:7.1f} ms")
    figure.add(f"{OMNISEND:<72} {omni:7.1f} ms   {ratio:.2f}x")
    figure.add(f"{TYPICAL:<72} {typical:7.1f} ms   {typical / base:.2f}x")
    figure.add(f"({runs} runs each, alternating)")
    figure.ratio, figure.target, figure.met = ratio, f"<= {TARGET}x", ratio <= TARGET
    figure.data = {"baseline_ms": base, "omnisend_ms": omni, "typical_ms": typical, "python_ms": bare, "ratio": ratio}
    return figure


if __name__ == "__main__":
    print(run().render())
