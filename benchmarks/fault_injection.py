"""Fault-injection run over real TCP: never sent twice, never an untyped error.

For every provider that exists, this serves its emulator on 127.0.0.1 and sends messages (one
recipient each, every recipient number used once) through a ``Client`` with retries on, while
the emulator and the network misbehave at random:

* ``refused``      — the connection is refused: the request goes to a bound, non-listening port;
* ``rst``          — a listener that answers the connection with a TCP RST (``SO_LINGER 0``);
* ``reset``        — the emulator closes the connection before it processes the request;
* ``drop``         — the emulator takes the message, then closes the connection without answering;
* ``slow``         — the emulator takes the message and answers after the read timeout;
* ``html_5xx``     — a 500/502/503/504 HTML error page (500 also once after taking the message);
* ``truncated``    — the emulator takes the message and its JSON answer is cut in half;
* ``wrong_ctype``  — the emulator takes the message and answers JSON labelled ``text/html``;
* ``huge_body``    — a 502 whose HTML body is several MB.

Then it checks, per vendor, what omnisend promises:

* **duplicates = 0**: no recipient number received a message twice (retries never re-send a
  message that may have landed, unless the vendor de-duplicates on our key);
* **untyped = 0**: every ``send()`` returned a ``SendResult`` or raised an ``OmnisendError``
  (and none hung);
* reconciliation: every success landed, no ``accepted=False`` error landed, and
  ``successes + DeliveryUnknown-that-landed == messages the emulator accepted``.

Run ``python benchmarks/fault_injection.py`` (``--help`` for sizes); it exits non-zero when a
guarantee fails. ``--routed`` runs the same faults through a 3-route router instead
(``benchmarks/fault_injection_routed.py``). ``tests/test_fault_injection.py`` runs a smaller
version of the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from omnisend import AsyncClient, Client, DeliveryUnknown, Message, OmnisendError, RetryPolicy, SendResult
from omnisend._docs import available
from omnisend.testing import Emulator, Fault, get_emulator

__all__ = ["VendorRun", "main", "run", "run_vendor"]

#: How long one send may take before it counts as hung (seconds).
HANG_AFTER = 60.0


#: The table's name for each emulator fault kind (``refuse`` over TCP can only close the connection).
LABELS = {
    "refuse": "reset",
    "reset": "reset",
    "drop_after_accept": "drop",
    "slow": "slow",
    "http_error": "html_5xx",
    "truncated": "truncated",
    "wrong_content_type": "wrong_ctype",
    "huge_body": "huge_body",
}


def emulator_faults(read_timeout: float, huge_size: int) -> list[Fault]:
    """The faults the emulator draws from, uniformly."""
    return [
        Fault.reset(),
        Fault.refuse(),
        Fault.drop_after_accept(),
        Fault.slow(read_timeout + 0.1),
        Fault.http_error(500),
        Fault.http_error(502),
        Fault.http_error(503),
        Fault.http_error(504),
        Fault.http_error(500, accept=True),
        Fault.truncated(),
        Fault.wrong_content_type(),
        Fault.huge_body(huge_size),
    ]


# -- faults below HTTP: refused connections and TCP resets -------------------------------------


@contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it), not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@contextmanager
def resetting_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener answers every connection with a TCP RST."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                conn.recv(1)  # let the request start arriving, then reset
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=serve, name="fault-injection-rst", daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


class NetworkFaults(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Real httpx transports (sync and async) that send some requests to a refusing or resetting port."""

    def __init__(self, *, refuse_port: int, rst_port: int, rate: float, seed: int, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections)
        self.sync = httpx.HTTPTransport(limits=limits)
        self.asynchronous = httpx.AsyncHTTPTransport(limits=limits)
        self.ports = {"refused": refuse_port, "rst": rst_port}
        self.rate = rate
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _route(self, request: httpx.Request) -> httpx.Request:
        with self._lock:
            kind = self._random.choice(sorted(self.ports)) if self._random.random() < self.rate else None
            if kind is None:
                return request
            self.counts[kind] += 1
        return httpx.Request(
            request.method,
            request.url.copy_with(host="127.0.0.1", port=self.ports[kind]),
            headers=request.headers,
            content=request.content,
            extensions=request.extensions,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.sync.handle_request(self._route(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.asynchronous.handle_async_request(self._route(request))

    def close(self) -> None:
        self.sync.close()

    async def aclose(self) -> None:
        await self.asynchronous.aclose()


# -- one vendor ----------------------------------------------------------------------------------


@dataclass
class VendorRun:
    """What one vendor's run produced, and the checks on it."""

    provider: str
    deduplicates: bool
    mode: str = "threads"
    recipients: int = 1
    sends: int = 0
    successes: int = 0
    delivery_unknown: int = 0
    other_errors: Counter[str] = field(default_factory=Counter)
    untyped: list[str] = field(default_factory=list)
    hung: int = 0
    accepted: int = 0
    duplicates: int = 0
    delivery_unknown_landed: int = 0
    """Recipients whose outcome is unknown (``DeliveryUnknown``, or status ``unknown``) and that landed."""
    recipients_ok: int = 0
    recipients_unknown: int = 0
    attempts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reconciled(self) -> bool:
        return not self.mismatches and self.recipients_ok + self.delivery_unknown_landed == self.accepted

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and not self.untyped and self.hung == 0 and self.reconciled


def number(index: int, position: int = 0) -> str:
    """Recipient ``position`` of message ``index``: a valid mobile number no other message uses."""
    return f"+485{position}{index:07d}"


def message_for(emulator: Emulator, index: int, recipients: int) -> Message:
    """Message ``index`` for this vendor's default channel, to ``recipients`` numbers of its own."""
    message = emulator.demo_message(number(index), f"fault run {index}")
    if recipients == 1:
        return message
    return message.model_copy(update={"to": [number(index, n) for n in range(recipients)]})


def _untyped(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


def _send_threads(
    client: Client, emulator: Emulator, messages: int, concurrency: int, recipients: int
) -> tuple[dict[int, object], int]:
    """Send from ``concurrency`` threads sharing one ``Client``; (outcome per index, sends that hung)."""

    def send(index: int) -> object:
        try:
            return client.send(message_for(emulator, index, recipients))
        except OmnisendError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - counting what escapes the typed tree is the point
            return _untyped(exc)

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"fault-{emulator.provider}")
    futures: dict[Future[object], int] = {pool.submit(send, i): i for i in range(messages)}
    done, pending = wait(futures, timeout=HANG_AFTER + messages * 0.05)
    pool.shutdown(wait=False, cancel_futures=True)
    return {futures[f]: f.result() for f in done}, len(pending)


async def _send_async(
    client: AsyncClient, emulator: Emulator, messages: int, concurrency: int, recipients: int
) -> tuple[dict[int, object], int]:
    """Send as ``concurrency`` tasks sharing one ``AsyncClient``; a send that outlives ``HANG_AFTER`` hung."""
    gate = asyncio.Semaphore(concurrency)
    outcome: dict[int, object] = {}
    hung = 0

    async def send(index: int) -> None:
        nonlocal hung
        async with gate:
            try:
                message = message_for(emulator, index, recipients)
                outcome[index] = await asyncio.wait_for(client.send(message), HANG_AFTER)
            except asyncio.TimeoutError:
                hung += 1
            except OmnisendError as exc:
                outcome[index] = exc
            except Exception as exc:  # noqa: BLE001 - counting what escapes the typed tree is the point
                outcome[index] = _untyped(exc)

    await asyncio.gather(*(send(i) for i in range(messages)))
    return outcome, hung


def run_vendor(
    name: str,
    *,
    messages: int = 2000,
    concurrency: int = 16,
    fault_rate: float = 0.35,
    network_rate: float = 0.06,
    read_timeout: float = 0.2,
    huge_size: int = 4 * 1024 * 1024,
    max_attempts: int = 4,
    seed: int = 7,
    mode: str = "threads",
    recipients: int = 1,
) -> VendorRun:
    """Send ``messages`` through ``name``'s emulator over TCP under random faults; count and check.

    ``mode`` is ``"threads"`` (one ``Client`` shared by ``concurrency`` threads) or ``"async"``
    (one ``AsyncClient`` shared by ``concurrency`` tasks). With ``recipients`` above 1 every send
    goes to that many numbers (vendor batches, one request per number, Mobizon campaigns).
    """
    seed += zlib.crc32(name.encode()) % 1000  # each vendor its own (reproducible) fault sequence
    emulator: Emulator = get_emulator(name)(balance=1e12, rate_limit=(1_000_000_000, 60.0))
    emulator.fail_randomly(fault_rate, emulator_faults(read_timeout, huge_size), seed=seed)
    policy = RetryPolicy(max_attempts=max_attempts, initial_wait=0.001, max_wait=0.005, max_retry_after=0.01)
    timeout = httpx.Timeout(read_timeout, connect=2.0, pool=HANG_AFTER)
    started = time.perf_counter()
    with emulator.serve() as server, closed_port() as refuse_port, resetting_port() as rst_port:
        network = NetworkFaults(
            refuse_port=refuse_port, rst_port=rst_port, rate=network_rate, seed=seed, connections=concurrency * 2
        )
        provider = emulator.make_provider(server.base_url)
        stats = VendorRun(name, provider.deduplicates, mode, recipients, sends=messages)
        if mode == "async":

            async def go() -> tuple[dict[int, object], int]:
                async with httpx.AsyncClient(transport=network) as http:
                    client = AsyncClient(provider, retry=policy, http_client=http, timeout=timeout)
                    return await _send_async(client, emulator, messages, concurrency, recipients)

            outcome, stats.hung = asyncio.run(go())
        elif mode == "threads":
            with httpx.Client(transport=network) as http:
                client = Client(provider, retry=policy, http_client=http, timeout=timeout)
                outcome, stats.hung = _send_threads(client, emulator, messages, concurrency, recipients)
        else:
            raise ValueError(f"mode must be 'threads' or 'async', got {mode!r}")
        stats.seconds = time.perf_counter() - started
        for kind, count in emulator.fault_counts.items():
            stats.faults[LABELS.get(kind, kind)] += count
        stats.faults.update(network.counts)
    _tally(stats, emulator, outcome)
    return stats


def _tally(stats: VendorRun, emulator: Emulator, outcome: dict[int, object]) -> None:
    """Count outcomes and check each recipient against what the emulator holds."""
    landed = Counter(record.to.lstrip("+") for record in emulator.iter_messages())
    stats.accepted = sum(landed.values())
    stats.duplicates = max(sum(n - 1 for n in landed.values() if n > 1), emulator.duplicates())

    def unknown(to: str) -> None:
        stats.recipients_unknown += 1
        stats.delivery_unknown_landed += bool(landed[to])

    for index, value in sorted(outcome.items()):
        numbers = [number(index, n).lstrip("+") for n in range(stats.recipients)]
        if isinstance(value, SendResult):
            stats.successes += 1
            stats.attempts += value.attempts
            if sorted(r.to.lstrip("+") for r in value.recipients) != sorted(numbers):
                stats.mismatches.append(f"#{index} the result does not list each recipient once")
            for recipient in value.recipients:
                to = recipient.to.lstrip("+")
                if recipient.ok:
                    stats.recipients_ok += 1
                    if not landed[to]:
                        stats.mismatches.append(f"#{index} {to} succeeded but the emulator has no message for it")
                elif recipient.error is not None and recipient.error.accepted is False:
                    if landed[to]:
                        stats.mismatches.append(f"#{index} {to} was rejected (accepted=False) but landed")
                else:
                    unknown(to)
        elif isinstance(value, DeliveryUnknown):
            stats.delivery_unknown += 1
            stats.attempts += value.attempts or 0
            for to in numbers:
                unknown(to)
            if not value.idempotency_key:
                stats.mismatches.append(f"#{index} DeliveryUnknown without an idempotency key")
        elif isinstance(value, OmnisendError):
            stats.other_errors[type(value).__name__] += 1
            stats.attempts += value.attempts or 0
            for to in numbers:
                if landed[to]:
                    stats.mismatches.append(
                        f"#{index} raised {type(value).__name__} (accepted={value.accepted}) but {to} landed: {value}"
                    )
        else:
            stats.untyped.append(f"#{index} {value}")


# -- all vendors, the table ----------------------------------------------------------------------


def run(names: Sequence[str] | None = None, *, modes: Sequence[str] = ("threads",), **options: Any) -> list[VendorRun]:
    """One :class:`VendorRun` per provider and mode (every provider that exists, by default)."""
    chosen = list(names) if names else [cls.name for cls in available()]
    return [run_vendor(name, mode=mode, **options) for mode in modes for name in chosen]


COLUMNS = (
    ("provider", 14),
    ("client", 7),
    ("dedup", 5),
    ("sends", 6),
    ("successes", 9),
    ("DeliveryUnknown", 15),
    ("other typed errors", 18),
    ("accepted", 8),
    ("duplicates", 10),
    ("untyped", 7),
    ("hung", 4),
    ("attempts", 8),
    ("seconds", 7),
)


def table(runs: Sequence[VendorRun]) -> str:
    """The results as a text table, then the faults injected and the reconciliation per vendor."""
    header = " | ".join(title.ljust(width) for title, width in COLUMNS)
    lines = [header, "-+-".join("-" * width for _, width in COLUMNS)]
    for r in runs:
        cells = (
            r.provider,
            "async" if r.mode == "async" else "threads",
            "yes" if r.deduplicates else "no",
            r.sends,
            r.successes,
            r.delivery_unknown,
            sum(r.other_errors.values()),
            r.accepted,
            r.duplicates,
            len(r.untyped),
            r.hung,
            r.attempts,
            f"{r.seconds:.1f}",
        )
        lines.append(" | ".join(str(cell).rjust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)))
    lines.append("")
    for r in runs:
        if len({run.mode for run in runs}) > 1 and r.mode != "threads":
            continue  # the details of the first table are enough; problems show in the summary
        errors = ", ".join(f"{name} {count}" for name, count in r.other_errors.most_common()) or "none"
        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(r.faults.items()))
        verdict = "ok" if r.reconciled else "MISMATCH"
        lines.append(f"{r.provider}: faults injected: {faults} ({sum(r.faults.values())} in all)")
        lines.append(f"{r.provider}: other typed errors: {errors}")
        if r.recipients == 1:
            lines.append(
                f"{r.provider}: reconciliation: {r.recipients_ok} successes + {r.delivery_unknown_landed} "
                f"DeliveryUnknown that landed (of {r.recipients_unknown}) = {r.recipients_ok + r.delivery_unknown_landed}; "
                f"emulator accepted {r.accepted} -> {verdict}"
            )
        else:
            lines.append(
                f"{r.provider}: reconciliation per recipient ({r.recipients} a send): {r.recipients_ok} accepted + "
                f"{r.delivery_unknown_landed} unknown that landed (of {r.recipients_unknown}) = "
                f"{r.recipients_ok + r.delivery_unknown_landed}; emulator accepted {r.accepted} -> {verdict}"
            )
        for problem in (r.mismatches + r.untyped)[:10]:
            lines.append(f"{r.provider}:   ! {problem}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if "--routed" in args_in:  # the same faults through a 3-route router: fault_injection_routed.py
        args_in.remove("--routed")
        try:
            from benchmarks import fault_injection_routed as routed
        except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
            import fault_injection_routed as routed  # type: ignore[no-redef]
        return routed.main(args_in)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("providers", nargs="*", help="provider ids (default: every provider that exists)")
    parser.add_argument("-n", "--messages", type=int, default=2000, help="messages per vendor (default 2000)")
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="sending threads (default 16)")
    parser.add_argument("--fault-rate", type=float, default=0.35, help="share of requests the emulator spoils")
    parser.add_argument("--network-rate", type=float, default=0.06, help="share of requests refused or reset")
    parser.add_argument("--read-timeout", type=float, default=0.2, help="client read timeout in seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-r", "--recipients", type=int, default=1, help="numbers per send (default 1)")
    parser.add_argument(
        "--mode",
        choices=("threads", "async", "both"),
        default="threads",
        help="one Client shared by threads, one AsyncClient shared by tasks, or both runs",
    )
    args = parser.parse_args(args_in)
    runs = run(
        args.providers,
        modes=("threads", "async") if args.mode == "both" else (args.mode,),
        messages=args.messages,
        concurrency=args.concurrency,
        fault_rate=args.fault_rate,
        network_rate=args.network_rate,
        read_timeout=args.read_timeout,
        seed=args.seed,
        recipients=args.recipients,
    )
    print(table(runs))
    failed = [f"{r.provider} ({r.mode})" for r in runs if not r.ok]
    print()
    if failed:
        print(f"FAILED: {', '.join(failed)} (duplicates, untyped errors, hangs or a reconciliation mismatch)")
        return 1
    print(
        f"OK: {len(runs)} runs, {sum(r.sends for r in runs)} sends, 0 duplicates, 0 untyped errors, 0 hangs, every send reconciled"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
