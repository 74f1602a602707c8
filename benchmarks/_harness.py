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
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

HERE = Path(__file__).resolve().parent
TOKEN = "test-token"  # the SMSAPI emulator's default credential
TEXT = "Your code is {code}. omnisend benchmark."


def load_average() -> float:
    """The 1-minute load average (NaN where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


@dataclass(frozen=True)
class Spread:
    """Per-round values of one figure (ratios, rates, CPU per operation): median, quartiles, range."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def iqr(self) -> tuple[float, float]:
        """The first and third quartiles (both the value itself with fewer than two rounds)."""
        if len(self.values) < 2:
            return self.values[0], self.values[0]
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q1, q3

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def text(self, fmt: str = ".2f", unit: str = "x") -> str:
        """``0.87x (IQR 0.84-0.90, range 0.78-0.93 over 12 rounds)``."""
        q1, q3 = self.iqr
        return (
            f"{self.median:{fmt}}{unit} (IQR {q1:{fmt}}-{q3:{fmt}}, range {self.lo:{fmt}}-{self.hi:{fmt}}"
            f" over {len(self.values)} rounds)"
        )


@dataclass(frozen=True)
class Check:
    """One judged figure: a ratio's spread over rounds against a target (``>=`` or ``<=``)."""

    label: str
    spread: Spread
    op: str
    target: float

    @property
    def met(self) -> bool:
        value = self.spread.median
        return value >= self.target if self.op == ">=" else value <= self.target

    @property
    def verdict(self) -> str:
        return "met" if self.met else "MISSED"

    def render(self) -> str:
        return f"{self.label}: {self.spread.text()}   target {self.op} {self.target:g}x: {self.verdict}"


@dataclass
class Figure:
    """One benchmark's result: the lines it prints and its judged checks (none: reported only).

    A figure with checks is met when every check is met (each is the median of per-round ratios);
    a figure without checks may still set ``met``/``target`` itself (the memory benchmark's rule).
    """

    number: int
    title: str
    lines: list[str] = field(default_factory=list)
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    data: dict[str, object] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def check(self, label: str, spread: Spread, op: str, target: float) -> Check:
        """Judge ``spread``'s median against ``target`` and print it; the figure is met when all checks are."""
        if op not in (">=", "<="):
            raise ValueError(f"op must be '>=' or '<=', got {op!r}")
        check = Check(label, spread, op, target)
        self.checks.append(check)
        self.lines.append(check.render())
        self.met = all(c.met for c in self.checks)
        if self.ratio is None:
            self.ratio = spread.median
        self.target = "; ".join(f"{c.op} {c.target:g}x" for c in self.checks)
        return check

    def verdict(self) -> str:
        if self.met is None:
            return "reported"
        return "target met" if self.met else "TARGET MISSED"

    def render(self) -> str:
        head = f"[{self.number}] {self.title}"
        body = "\n".join(f"    {line}" for line in self.lines)
        tail = f"    => {self.verdict()}" + (f" (target {self.target})" if self.target else "")
        return f"{head}\n{body}\n{tail}"

    def summary(self) -> list[str]:
        """One line per check (one line for a figure without checks), for ``run_all``'s summary."""
        if not self.checks:
            ratio = f"{self.ratio:.2f}x" if self.ratio is not None else "-"
            return [f"[{self.number}] {self.verdict():<14} {ratio:>7}  {self.title}"]
        return [
            f"[{self.number}] {('met' if c.met else 'MISSED'):<7} {c.spread.median:>6.2f}x "
            f"({c.spread.lo:.2f}-{c.spread.hi:.2f})  target {c.op} {c.target:g}x  {c.label}"
            for c in self.checks
        ]


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


def raw_body(i: int) -> bytes:
    """:func:`raw_form` encoded once, as a careful raw client sends it (``content=``, not ``data=``)."""
    return urlencode(raw_form(i)).encode()


#: The headers of a raw SMSAPI post with a pre-encoded body.
RAW_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Race:
    """Per-variant wall and CPU times of an interleaved comparison."""

    counts: dict[str, int]
    """Operations per round, per variant."""
    wall: dict[str, list[float]]
    """Wall seconds per round, per variant."""
    cpu: dict[str, list[float]]
    """This process's CPU seconds (``time.process_time``) per round, per variant."""

    @property
    def rounds(self) -> int:
        return len(next(iter(self.wall.values())))

    def rates(self, name: str) -> list[float]:
        return [self.counts[name] / t for t in self.wall[name]]

    def rate(self, name: str) -> float:
        """Operations per second: the median over the rounds."""
        return statistics.median(self.rates(name))

    def cpu_per_op(self, name: str) -> list[float]:
        """CPU seconds per operation, per round."""
        return [c / self.counts[name] for c in self.cpu[name]]

    def speed(self, name: str, baseline: str) -> Spread:
        """How fast ``name`` is relative to ``baseline`` (> 1: faster), one ratio per round.

        Each round of one side runs next to the same round of the other, so a burst of load
        elsewhere on the machine skews one pair, not the median.
        """
        pairs = zip(self.rates(name), self.rates(baseline), strict=True)
        return Spread(tuple(ours / theirs for ours, theirs in pairs))

    def cpu_ratio(self, name: str, baseline: str) -> Spread:
        """CPU per operation of ``name`` relative to ``baseline`` (< 1: cheaper), one ratio per round."""
        pairs = zip(self.cpu_per_op(name), self.cpu_per_op(baseline), strict=True)
        return Spread(tuple(ours / theirs for ours, theirs in pairs))

    def ratio(self, name: str, baseline: str) -> float:
        """The median of :meth:`speed`."""
        return self.speed(name, baseline).median

    def line(self, name: str, label: str, unit: str = "req/s") -> str:
        rates = Spread(tuple(self.rates(name)))
        cpu = Spread(tuple(self.cpu_per_op(name))).median * 1e6
        q1, q3 = rates.iqr
        return (
            f"{label:<52} {rates.median:>7.0f} {unit} (IQR {q1:.0f}-{q3:.0f})   CPU {cpu:6.0f} us/{unit.split('/')[0]}"
            f"   [{self.counts[name]} per round]"
        )


def race(
    variants: dict[str, Callable[[Any], object]],
    *,
    count: int,
    rounds: int,
    warmup: int = 50,
    prepare: Mapping[str, Callable[[int], object]] | None = None,
) -> Race:
    """Time each variant doing ``count`` operations per round, ``rounds`` times, alternating the order.

    Short rounds, interleaved, so a burst of load from elsewhere on the machine lands on both
    sides; see :meth:`Race.speed`. A variant with a ``prepare`` function is handed what that
    returns for ``count`` (pre-encoded bodies, prebuilt requests), built outside the timing;
    the others are handed ``count``.
    """
    prepare = prepare or {}

    def arg(name: str, n: int) -> object:
        return prepare[name](n) if name in prepare else n

    names = list(variants)
    for name in names:
        variants[name](arg(name, min(warmup, count)))
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            given = arg(name, count)
            cpu_start, start = time.process_time(), time.perf_counter()
            variants[name](given)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return Race(dict.fromkeys(names, count), wall, cpu)


async def arace(
    variants: dict[str, Callable[[Any], Awaitable[object]]],
    *,
    count: int,
    rounds: int,
    warmup: int = 100,
    prepare: Mapping[str, Callable[[int], object]] | None = None,
    round_seconds: float | None = None,
    min_count: int = 100,
) -> Race:
    """:func:`race` for coroutines (run inside one event loop).

    With ``round_seconds``, a variant whose warm-up shows it cannot do ``count`` operations in
    about that long gets smaller rounds (at least ``min_count``), so one slow variant does not
    make the whole run long; ratios compare rates, so rounds of different sizes still pair up.
    """
    prepare = prepare or {}

    def arg(name: str, n: int) -> object:
        return prepare[name](n) if name in prepare else n

    names = list(variants)
    counts = dict.fromkeys(names, count)
    for name in names:
        n = min(warmup, count)
        await variants[name](arg(name, n))  # opens the connections
        start = time.perf_counter()
        await variants[name](arg(name, n))  # the rate with the pool open sizes the rounds
        if round_seconds is not None:
            fits = int(n / (time.perf_counter() - start) * round_seconds)
            counts[name] = max(min(count, min_count), min(count, fits))
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else list(reversed(names)):
            given = arg(name, counts[name])
            cpu_start, start = time.process_time(), time.perf_counter()
            await variants[name](given)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return Race(counts, wall, cpu)


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
