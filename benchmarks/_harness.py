"""What every benchmark shares: the loopback emulator server, interleaved timing, figures.

Every comparison runs both sides in the same process run, against the same server, in
alternating rounds (A, B, B, A, A, B, ...), and reports the median of the per-round ratios, so
a machine that gets busier half-way, or a burst of load elsewhere, hurts both sides alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
TOKEN = "test-token"  # the SMSAPI emulator's default credential
TEXT = "Your code is {code}. omnisend benchmark."


@dataclass
class Figure:
    """One benchmark's result: the lines it prints and, when it has one, its target."""

    number: int
    title: str
    lines: list[str] = field(default_factory=list)
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    data: dict[str, object] = field(default_factory=dict)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def verdict(self) -> str:
        if self.met is None:
            return "reported"
        return "target met" if self.met else "TARGET MISSED"

    def render(self) -> str:
        head = f"[{self.number}] {self.title}"
        body = "\n".join(f"    {line}" for line in self.lines)
        tail = f"    => {self.verdict()}" + (f" (target {self.target})" if self.target else "")
        return f"{head}\n{body}\n{tail}"


@contextmanager
def emulator_server(provider: str = "smsapi", *, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``provider``'s emulator in a separate process on 127.0.0.1; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), provider],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(proc, timeout)
        if not line.startswith("listening "):
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        yield line.split(" ", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline() if proc.stdout else ""))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    if not result:
        raise RuntimeError(f"the benchmark server did not answer within {timeout:g}s")
    return result[0]


def server_stats(base_url: str) -> dict[str, int]:
    """Requests served and messages accepted so far by the benchmark server."""
    data: dict[str, int] = httpx.get(f"{base_url}/__bench__/stats").json()
    return data


def number(i: int) -> str:
    """The ``i``-th distinct recipient number (E.164)."""
    return f"+48{500_000_000 + i}"


def text(i: int) -> str:
    """A personalised text (so consecutive messages are not merged into one request)."""
    return TEXT.format(code=f"{i % 1_000_000:06d}")


def raw_form(i: int) -> dict[str, str]:
    """The SMSAPI form a raw client posts for the ``i``-th message: what omnisend's adapter sends."""
    return {
        "to": number(i).lstrip("+"),
        "format": "json",
        "encoding": "utf-8",
        "details": "1",
        "idx": uuid.uuid4().hex,
        "check_idx": "1",
        "message": text(i),
        "from": "Shop",
    }


@dataclass
class Race:
    """Per-variant timings of an interleaved comparison."""

    count: int
    """Operations per round."""
    times: dict[str, list[float]]
    """Seconds per round, per variant."""

    def rates(self, name: str) -> list[float]:
        return [self.count / t for t in self.times[name]]

    def rate(self, name: str) -> float:
        """Operations per second: the median over the rounds."""
        return statistics.median(self.rates(name))

    def ratio(self, name: str, baseline: str) -> float:
        """How fast ``name`` is relative to ``baseline`` (> 1: faster).

        The median of the per-round ratios: each round of one side runs next to a round of the
        other, so a burst of load elsewhere on the machine skews one pair, not the result.
        """
        pairs = zip(self.rates(name), self.rates(baseline), strict=True)
        return statistics.median(ours / theirs for ours, theirs in pairs)

    def line(self, name: str, label: str, unit: str = "req/s") -> str:
        rates = sorted(self.rates(name))
        return f"{label:<46} {self.rate(name):>8.0f} {unit}   (rounds: min {rates[0]:.0f}, max {rates[-1]:.0f})"


def race(variants: dict[str, Callable[[int], object]], *, count: int, rounds: int, warmup: int = 50) -> Race:
    """Time each variant doing ``count`` operations per round, ``rounds`` times, alternating the order.

    Short rounds, interleaved, so a burst of load from elsewhere on the machine lands on both
    sides; see :meth:`Race.ratio`.
    """
    names = list(variants)
    for name in names:
        variants[name](min(warmup, count))
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            start = time.perf_counter()
            variants[name](count)
            times[name].append(time.perf_counter() - start)
    return Race(count, times)


async def arace(
    variants: dict[str, Callable[[int], Awaitable[object]]], *, count: int, rounds: int, warmup: int = 100
) -> Race:
    """:func:`race` for coroutines (run inside one event loop)."""
    names = list(variants)
    for name in names:
        await variants[name](min(warmup, count))
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            start = time.perf_counter()
            await variants[name](count)
            times[name].append(time.perf_counter() - start)
    return Race(count, times)


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def child_env() -> dict[str, str]:
    """The environment for measured subprocesses: bytecode cached (as in a real install)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(os.environ.get("TMPDIR", "/tmp")) / "omnisend-bench-pycache"))
    return env


def run_child(args: list[str], *, timeout: float = 300.0) -> dict[str, object]:
    """Run ``python <args>`` in a fresh process; its last stdout line is a JSON object."""
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=child_env(), timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    data: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data
