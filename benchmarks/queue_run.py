"""Sending through Celery workers with a real redis-server, all on 127.0.0.1: faults, kills, limits, throughput.

The parts are real: ``redis-server`` (a free port, a temp dir, no persistence) is the broker and the
store of claims, outcomes and rate limits; the workers are ``celery worker`` processes running
``benchmarks/queue_app.py``; the vendor is omnisend's emulator served over TCP by this process.

* :func:`run_faults` — messages enqueued (some twice) while the emulator misbehaves at random;
  then every key must be final, no recipient may have a message twice, no outcome may be untyped,
  and the outcomes must reconcile with what the emulator accepted;
* :func:`run_kill` — a worker process is killed with SIGKILL while the vendor holds its request;
  the redelivered task must neither lose the message nor send it twice;
* :func:`run_rate` — workers share ``"20/second"``: the most requests the emulator saw in any
  one-second span;
* :func:`run_breaker` — a router's circuit opened by one worker is skipped by every worker;
* :func:`run_throughput` — messages a second with 1 and with 2 workers.

``python benchmarks/queue_run.py`` prints the figures (``--help`` for sizes); ``make bench`` runs
it as benchmark 9, and ``tests/test_celery.py`` runs smaller versions as tests.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._harness import emulator_server  # noqa: E402
from benchmarks.fault_injection import emulator_faults  # noqa: E402
from benchmarks.queue_app import READ_TIMEOUT, make_app  # noqa: E402

from omnisend import DeliveryUnknown, Message, OmnisendError  # noqa: E402
from omnisend.celery import CelerySender, Outcome  # noqa: E402
from omnisend.stores import connect  # noqa: E402
from omnisend.testing import Emulator, EmulatorServer, Fault, Request, get_emulator  # noqa: E402

MISSING = (
    "redis-server is not installed, so the Redis/Celery tests are skipped; install it with "
    "`apt-get install -y --no-install-recommends redis-server`"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(timeout: float = 15.0) -> Iterator[str]:
    """A fresh ``redis-server`` on 127.0.0.1 (free port, temp dir, nothing saved); yields its URL; stops it."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError(MISSING)
    workdir = tempfile.mkdtemp(prefix="omnisend-redis-")
    proc = None
    try:
        for _ in range(5):  # another process may take the free port before redis binds it
            port = free_port()
            proc = subprocess.Popen(
                [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = connect(f"redis://127.0.0.1:{port}/0")
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    client.ping()
                    break
                except OSError:
                    time.sleep(0.02)
                except Exception:  # noqa: BLE001 - redis.ConnectionError while it starts
                    time.sleep(0.02)
            else:
                proc.kill()
                proc.wait()
                continue
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
            return
        raise RuntimeError("redis-server did not start")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


class Workers:
    """``count`` real ``celery worker`` processes on one queue; a context manager that stops them."""

    def __init__(
        self,
        redis_url: str,
        *,
        urls: dict[str, str],
        count: int = 2,
        pool: str = "threads",
        concurrency: int = 8,
        queue: str | None = None,
        visibility_timeout: float = 60.0,
    ) -> None:
        self.redis_url = redis_url
        self.queue = queue or f"q{os.getpid()}-{random.randrange(10**6)}"
        self.logdir = Path(tempfile.mkdtemp(prefix="omnisend-workers-"))
        self.env = {
            **os.environ,
            "OMNISEND_TEST_REDIS": redis_url,
            "OMNISEND_TEST_QUEUE": self.queue,
            "OMNISEND_TEST_VISIBILITY_TIMEOUT": str(visibility_timeout),
            **{f"OMNISEND_TEST_{name.upper()}_URL": url for name, url in urls.items()},
        }
        self.env.pop("CELERY_BROKER_URL", None)
        self.pool, self.concurrency, self.count = pool, concurrency, count
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis = connect(redis_url)

    def start(self, timeout: float = 90.0) -> Workers:
        for index in range(self.count):
            self.procs.append(self._spawn(index))
        self.wait_ready(range(self.count), timeout)
        return self

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"worker{index}.log", "ab")
        command = [
            sys.executable, "-m", "celery", "-A", "benchmarks.queue_app", "worker",
            "-P", self.pool, "-c", str(self.concurrency), "-n", f"{self.queue}-{index}@%h", "-Q", self.queue,
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ]  # fmt: skip
        proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return proc

    def ready_key(self, index: int) -> str:
        return f"tests:ready:{self.queue}-{index}@{socket.gethostname()}"

    def wait_ready(self, indexes: Iterator[int] | range, timeout: float) -> None:
        keys = [self.ready_key(i) for i in indexes]
        deadline = time.monotonic() + timeout
        while self.redis.exists(*keys) < len(keys):
            dead = [i for i, p in enumerate(self.procs) if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"celery workers did not start (dead: {dead}):\n{self.logs()[-4000:]}")
            time.sleep(0.05)

    def restart(self, index: int, timeout: float = 90.0) -> None:
        """Start worker ``index`` again (after it was killed)."""
        self.redis.delete(self.ready_key(index))
        self.procs[index] = self._spawn(index)
        self.wait_ready(range(index, index + 1), timeout)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def drained(self) -> bool:
        """No task waiting in the queue, held by a worker (ETA), or running unacknowledged."""
        return self.redis.llen(self.queue) == 0 and self.redis.hlen("unacked") == 0

    def wait_drained(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.drained():
            if time.monotonic() > deadline:
                raise TimeoutError("the queue did not drain")
            time.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logdir.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT)  # cold shutdown: unacked tasks stay in the broker
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # prefork children of a killed parent: nothing should be left behind
        shutil.rmtree(self.logdir, ignore_errors=True)

    def __enter__(self) -> Workers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Emulators:
    """The SMSAPI and Clickatell emulators served over TCP by this process, recording arrival times."""

    def __init__(self) -> None:
        self.emulators: dict[str, Emulator] = {}
        self.servers: dict[str, EmulatorServer] = {}
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        for name in ("smsapi", "clickatell"):
            emulator = get_emulator(name)(balance=1e12, rate_limit=(1_000_000_000, 60.0))
            handle = emulator.handle

            def timed(request: Request, handle: Any = handle) -> Any:
                with self._lock:
                    self.arrivals.append(time.monotonic())
                return handle(request)

            emulator.handle = timed  # type: ignore[method-assign]
            self.emulators[name] = emulator
            self.servers[name] = emulator.serve()

    @property
    def urls(self) -> dict[str, str]:
        return {name: server.base_url for name, server in self.servers.items()}

    def reset(self) -> None:
        for emulator in self.emulators.values():
            emulator.reset_state()
        with self._lock:
            self.arrivals.clear()

    def close(self) -> None:
        for server in self.servers.values():
            server.close()

    def __enter__(self) -> Emulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def number(index: int) -> str:
    return f"+4851{index:07d}"


def message(emulator: Emulator, index: int, run: str) -> Message:
    return emulator.demo_message(number(index), f"queue run {run} {index}")


# -- fault injection through the queue ------------------------------------------------------------


@dataclass
class QueueRun:
    provider: str
    deduplicates: bool
    messages: int = 0
    enqueued: int = 0
    final: int = 0
    ok: int = 0
    delivery_unknown: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    duplicates: int = 0
    delivery_unknown_landed: int = 0
    untyped: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (
            self.final == self.messages
            and self.duplicates == 0
            and not self.untyped
            and not self.mismatches
            and self.ok + self.delivery_unknown_landed == self.accepted
        )

    def summary(self) -> str:
        errors = ", ".join(f"{name} {n}" for name, n in self.errors.most_common()) or "none"
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items()))
        lines = [
            f"{self.provider} (de-duplicates: {'yes' if self.deduplicates else 'no'}): {self.messages} messages, "
            f"{self.enqueued} tasks ({self.enqueued - self.messages} enqueued twice), {self.seconds:.1f} s",
            f"  final {self.final}/{self.messages}: sent {self.ok}, DeliveryUnknown {self.delivery_unknown}, "
            f"other typed errors: {errors}; task runs {self.runs}",
            f"  vendor accepted {self.accepted}, duplicates {self.duplicates}, untyped {len(self.untyped)}; "
            f"{self.ok} sent + {self.delivery_unknown_landed} DeliveryUnknown that landed = "
            f"{self.ok + self.delivery_unknown_landed} -> {'reconciled' if self.passed else 'MISMATCH'}",
            f"  faults injected: {faults} ({sum(self.faults.values())} in all)",
        ]
        lines += [f"  ! {problem}" for problem in (self.untyped + self.mismatches)[:10]]
        return "\n".join(lines)


def queue_faults(emulator: Emulator) -> list[Fault]:
    """The emulator's random faults: the network and vendor faults of fault_injection, more throttling and 503s
    (certainly not sent: the queue retries them once the client's own attempts are spent)."""
    throttled = [Fault.http_error(429)] * 3
    if emulator.rate_limit_code is not None:
        throttled.append(Fault.vendor_error(emulator.rate_limit_code))
    return [*emulator_faults(READ_TIMEOUT, 64 * 1024), *throttled, Fault.http_error(503)]


def enqueue_with_repeats(sender: CelerySender, messages: list[Message], twice: float, seed: int) -> tuple[list[str], int]:
    """Enqueue ``messages``; a ``twice`` share of them again (half at once, half at the end); keys and tasks."""
    rng = random.Random(seed)
    repeat = set(rng.sample(range(len(messages)), int(len(messages) * twice)))
    keyed = [m.model_copy(update={"idempotency_key": f"{sender.task.name}-{seed}-{i}"}) for i, m in enumerate(messages)]
    order: list[Message] = []
    later: list[Message] = []
    for index, item in enumerate(keyed):
        order.append(item)
        if index in repeat:
            (order if index % 2 else later).append(item)
    order += later
    sender.enqueue_many(order)
    return [m.idempotency_key or "" for m in keyed], len(order)


def run_faults(
    redis_url: str,
    emulators: Emulators,
    workers: Workers,
    *,
    provider: str = "smsapi",
    messages: int = 1000,
    twice: float = 0.1,
    fault_rate: float = 0.35,
    seed: int = 7,
    timeout: float = 240.0,
) -> QueueRun:
    """Send ``messages`` through the workers while the emulator fails at random; count and check."""
    emulators.reset()
    emulator = emulators.emulators[provider]
    emulator.fail_randomly(fault_rate, queue_faults(emulator), seed=seed)
    _, senders = make_app(redis_url, queue=workers.queue)
    sender = senders[provider]
    stats = QueueRun(provider, get_emulator(provider)().make_provider("http://x").deduplicates, messages=messages)
    started = time.perf_counter()
    keys, stats.enqueued = enqueue_with_repeats(
        sender, [message(emulator, i, f"{seed}") for i in range(messages)], twice, seed
    )
    outcomes = sender.wait(keys, timeout=timeout)
    workers.wait_drained()
    stats.seconds = time.perf_counter() - started
    emulator.fail_randomly(0.0, [])
    stats.faults.update(emulator.fault_counts)
    tally(stats, emulator, keys, outcomes, workers.logs())
    return stats


def tally(stats: QueueRun, emulator: Emulator, keys: Sequence[str], outcomes: Sequence[Outcome], logs: str) -> None:
    landed = Counter(record.to for record in emulator.iter_messages())
    stats.accepted = sum(landed.values())
    stats.duplicates = max(sum(n - 1 for n in landed.values() if n > 1), emulator.duplicates())
    stats.final = len(outcomes)
    for index, (key, outcome) in enumerate(zip(keys, outcomes, strict=True)):
        to = number(index)
        stats.runs += outcome.runs
        error = outcome.error
        if outcome.key != key:
            stats.mismatches.append(f"{key}: outcome for {outcome.key}")
        if error is None:
            stats.ok += 1
            if outcome.result is None or outcome.result.idempotency_key != key:
                stats.mismatches.append(f"{key}: a success without its result")
            if not landed[to]:
                stats.mismatches.append(f"{key}: sent, but the emulator has no message for {to}")
            continue
        if not isinstance(error, OmnisendError) or str(error.message).startswith("unexpected "):
            stats.untyped.append(f"{key}: {type(error).__name__}: {error}")
        if isinstance(error, DeliveryUnknown):
            stats.delivery_unknown += 1
            stats.delivery_unknown_landed += bool(landed[to])
        else:
            stats.errors[type(error).__name__] += 1
            if landed[to]:
                stats.mismatches.append(f"{key}: {type(error).__name__} (accepted={error.accepted}) but it landed")
        if error.idempotency_key != key:
            stats.mismatches.append(f"{key}: error carries key {error.idempotency_key!r}")
    stats.untyped += [line for line in logs.splitlines() if "Traceback" in line or "ERROR/" in line][:10]


# -- SIGKILL mid-send ----------------------------------------------------------------------------


@dataclass
class KillRun:
    provider: str
    killed_pid: int
    outcome: Outcome
    accepted: int
    seconds: float

    def summary(self) -> str:
        kind = "sent" if self.outcome.ok else type(self.outcome.error).__name__
        dedup = " (vendor answered: duplicate, the first copy landed)" if self.outcome.result and self.outcome.result.deduplicated else ""
        return (
            f"{self.provider}: pid {self.killed_pid} killed with SIGKILL while the vendor held its request; "
            f"outcome after redelivery: {kind}{dedup} in {self.outcome.runs} runs; "
            f"vendor accepted {self.accepted} -> {'neither lost nor sent twice' if self.accepted == 1 else 'FAILED'}"
        )


def run_kill(redis_url: str, emulators: Emulators, workers: Workers, *, provider: str, hold: float = 4.0) -> KillRun:
    """Kill the worker process that is sending (the vendor took the message and holds its answer)."""
    emulators.reset()
    emulator = emulators.emulators[provider]
    emulator.script(Fault.slow(hold))  # takes the message, answers after ``hold`` seconds
    _, senders = make_app(redis_url, queue=workers.queue)
    sender = senders[provider]
    started = time.perf_counter()
    key = sender.enqueue(message(emulator, 0, f"kill-{provider}"))
    deadline = time.monotonic() + 30
    claim = None
    while emulator.accepted_count == 0 or claim is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the message never reached the emulator")
        claim = sender.store.current_claim(key)
        time.sleep(0.01)
    pid = int(claim["pid"])
    os.kill(pid, signal.SIGKILL)
    outcome = sender.wait([key], timeout=60)[0]
    workers.wait_drained()
    return KillRun(provider, pid, outcome, emulator.accepted_count, time.perf_counter() - started)


# -- a router's breaker across workers -----------------------------------------------------------


@dataclass
class BreakerRun:
    messages: int
    clickatell_requests: int
    outcomes: list[Outcome]

    @property
    def workers(self) -> set[str]:
        return {o.worker or "" for o in self.outcomes}

    def summary(self) -> str:
        via = Counter(o.result.provider if o.result else type(o.error).__name__ for o in self.outcomes)
        return (
            f"Failover(Clickatell refusing the key, SMSAPI) with its breaker in Redis, {self.messages} messages over "
            f"{len(self.workers)} workers: sent via {dict(via)}; requests to Clickatell: {self.clickatell_requests} "
            "(the first opened the circuit for every worker)"
        )


def run_breaker(redis_url: str, emulators: Emulators, workers: Workers, *, messages: int = 30) -> BreakerRun:
    """One message opens Clickatell's circuit (``AuthError``); then every worker skips Clickatell."""
    emulators.reset()
    _, senders = make_app(redis_url, queue=workers.queue)
    sender = senders["routed"]
    emulator = emulators.emulators["smsapi"]
    first = sender.enqueue(message(emulator, 0, "breaker"))
    outcomes = sender.wait([first], timeout=60)
    keys = sender.enqueue_many(message(emulator, i, "breaker") for i in range(1, messages))
    outcomes += sender.wait(keys, timeout=120)
    return BreakerRun(messages, len(emulators.emulators["clickatell"].requests), outcomes)


# -- shared rate limit ---------------------------------------------------------------------------


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most timestamps in any span of ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class RateRun:
    limit: int
    messages: int
    max_in_any_second: int
    seconds: float

    def summary(self) -> str:
        return (
            f"rate_limits smsapi '{self.limit}/second' across 2 workers (16 sending threads): {self.messages} messages, "
            f"first to last request {self.seconds:.1f} s; most requests the emulator saw in any one-second span: "
            f"{self.max_in_any_second} -> {'held' if self.max_in_any_second <= self.limit else 'EXCEEDED'}"
        )


def run_rate(redis_url: str, emulators: Emulators, workers: Workers, *, messages: int = 80) -> RateRun:
    emulators.reset()
    emulator = emulators.emulators["smsapi"]
    _, senders = make_app(redis_url, queue=workers.queue)
    sender = senders["limited"]
    keys = sender.enqueue_many(message(emulator, i, "rate") for i in range(messages))
    outcomes = sender.wait(keys, timeout=120)
    with emulators._lock:
        arrivals = list(emulators.arrivals)
    bad = [o for o in outcomes if not o.ok]
    if bad:
        raise AssertionError(f"{len(bad)} rate-limited sends failed: {bad[0].error!r}")
    seconds = max(arrivals) - min(arrivals) if len(arrivals) > 1 else 0.0
    return RateRun(20, messages, max_in_window(arrivals, 1.0), seconds)


# -- throughput ----------------------------------------------------------------------------------


def run_throughput(redis_url: str, workers: Workers, *, messages: int) -> float:
    """Messages a second from the first enqueue to the last outcome (no faults).

    Start ``workers`` with the SMSAPI URL of :func:`benchmarks._harness.emulator_server` (an emulator
    in its own process), so this process's own work (enqueueing, reading outcomes) does not slow the vendor.
    """
    _, senders = make_app(redis_url, queue=workers.queue)
    sender = senders["smsapi"]
    emulator = get_emulator("smsapi")()
    run = f"tp{random.randrange(10**9)}"
    batch = [message(emulator, i, run).model_copy(update={"idempotency_key": f"{run}-{i}"}) for i in range(messages)]
    started = time.perf_counter()
    keys = sender.enqueue_many(batch)
    sender.wait(keys, timeout=300, interval=0.02)
    return messages / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", "--messages", type=int, default=1000, help="messages in the fault run (default 1000)")
    parser.add_argument("--throughput", type=int, default=1000, help="messages per throughput run (default 1000)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for line in figures(messages=args.messages, throughput=args.throughput, seed=args.seed):
        print(line)
    return 0


def figures(*, messages: int = 1000, throughput: int = 1000, seed: int = 7) -> list[str]:
    """Every run, as printable lines (fault runs, kills, rate, throughput)."""
    lines: list[str] = []
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server())
        emulators = stack.enter_context(Emulators())
        with Workers(redis_url, urls=emulators.urls, count=2) as workers:
            for provider in ("smsapi", "clickatell"):
                lines.append(run_faults(redis_url, emulators, workers, provider=provider, messages=messages, seed=seed).summary())
            lines.append(run_rate(redis_url, emulators, workers).summary())
            lines.append(run_breaker(redis_url, emulators, workers).summary())
        with Workers(redis_url, urls=emulators.urls, count=2, pool="prefork", concurrency=1) as workers:
            for provider in ("smsapi", "clickatell"):
                lines.append(run_kill(redis_url, emulators, workers, provider=provider).summary())
        vendor = stack.enter_context(emulator_server("smsapi"))
        rates = {}
        for count in (1, 2):
            with Workers(redis_url, urls={**emulators.urls, "smsapi": vendor}, count=count) as workers:
                run_throughput(redis_url, workers, messages=100)  # warm: clients built, connections open
                rates[count] = run_throughput(redis_url, workers, messages=throughput)
        lines.append(
            f"throughput, {throughput} messages, threads pool x8 per worker, emulator in its own process: "
            f"1 worker {rates[1]:.0f} msg/s, 2 workers {rates[2]:.0f} msg/s ({rates[2] / rates[1]:.2f}x)"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
