"""The fault-injection run through a router: three vendors, random faults on each, never a message twice.

One ``RoundRobin`` over three emulators served on 127.0.0.1 (SMSAPI, which de-duplicates, and
Clickatell and Webex Connect, which do not), with a circuit breaker, sends to numbers used once
each while every vendor misbehaves at random: the faults of ``fault_injection.py`` (refused
connections, TCP resets, drops after accepting, slow answers, HTML 5xx, truncated bodies...) plus
the vendor's own failover-safe refusals (out of balance, bad key, throttled). Sends go through
``send()`` from threads sharing one ``Client`` and tasks sharing one ``AsyncClient``, and through
``send_many`` (batched: five consecutive messages share a text, so partial rejections are re-routed).

Then it checks, over all three vendors together:

* **duplicates = 0**: no number landed twice, on one vendor or on two (a failover after an
  answer that might have landed would show here);
* **untyped = 0**: every outcome is a ``SendResult`` or an ``OmnisendError``;
* reconciliation: each recipient a result calls accepted landed on exactly the vendor it names,
  no error or rejected recipient with ``accepted=False`` landed anywhere, and an unknown outcome
  landed at most once.

Run ``python benchmarks/fault_injection_routed.py`` (``--help`` for sizes; also
``python benchmarks/fault_injection.py --routed``); it exits non-zero when a guarantee fails.
``tests/test_fault_injection.py`` runs a smaller version.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx

from omnisend import (
    AsyncClient,
    Breaker,
    Client,
    DeliveryUnknown,
    Message,
    OmnisendError,
    RetryPolicy,
    RoundRobin,
    Route,
    SendResult,
)
from omnisend.testing import Emulator, Fault, get_emulator

try:
    from benchmarks import fault_injection as base
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    import fault_injection as base  # type: ignore[no-redef]

HANG_AFTER = base.HANG_AFTER
number = base.number

__all__ = ["ROUTES", "RoutedRun", "main", "run_routed"]

#: The three routes: (vendor, the sender its route sends with, its failover-safe refusals: auth, balance).
ROUTES: tuple[tuple[str, str, tuple[object, ...]], ...] = (
    ("smsapi", "omnisend", (101, 103)),
    ("clickatell", "", (1, 20)),
    ("webex_connect", "omnisend", ("7001", "7103")),
)

MODES = ("send-threads", "send-async", "send_many-threads", "send_many-async")


@dataclass
class RoutedRun:
    """What one routed run produced, and the checks on it."""

    mode: str
    sends: int = 0
    successes: int = 0
    failed_over: int = 0
    """Successes with ``route_errors``: an earlier route refused, a later one took the message."""
    delivery_unknown: int = 0
    other_errors: Counter[str] = field(default_factory=Counter)
    untyped: list[str] = field(default_factory=list)
    hung: int = 0
    taken_by: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    across_vendors: int = 0
    """Numbers that landed on two vendors (counted in ``duplicates`` too)."""
    unknown_landed: int = 0
    unknown: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and not self.untyped and self.hung == 0 and not self.mismatches


def _message(index: int) -> Message:
    return Message(to=number(index), text=f"routed fault run {index // 5}", sender="omnisend")


def _threads(client: Client, messages: int, concurrency: int) -> tuple[dict[int, object], int]:
    def send(index: int) -> object:
        try:
            return client.send(_message(index))
        except OmnisendError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - counting what escapes the typed tree is the point
            return base._untyped(exc)

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="routed-fault")
    futures: dict[Future[object], int] = {pool.submit(send, i): i for i in range(messages)}
    done, pending = wait(futures, timeout=HANG_AFTER + messages * 0.05)
    pool.shutdown(wait=False, cancel_futures=True)
    return {futures[f]: f.result() for f in done}, len(pending)


async def _tasks(client: AsyncClient, messages: int, concurrency: int) -> tuple[dict[int, object], int]:
    gate = asyncio.Semaphore(concurrency)
    outcome: dict[int, object] = {}
    hung = 0

    async def send(index: int) -> None:
        nonlocal hung
        async with gate:
            try:
                outcome[index] = await asyncio.wait_for(client.send(_message(index)), HANG_AFTER)
            except asyncio.TimeoutError:
                hung += 1
            except OmnisendError as exc:
                outcome[index] = exc
            except Exception as exc:  # noqa: BLE001
                outcome[index] = base._untyped(exc)

    await asyncio.gather(*(send(i) for i in range(messages)))
    return outcome, hung


def _outcomes(pairs: Iterator[tuple[int, SendResult | None, OmnisendError | None]]) -> dict[int, object]:
    return {index: error if error is not None else result for index, result, error in pairs}


def run_routed(
    mode: str = "send-threads",
    *,
    messages: int = 3000,
    concurrency: int = 16,
    fault_rate: float = 0.35,
    network_rate: float = 0.06,
    read_timeout: float = 0.2,
    huge_size: int = 1024 * 1024,
    max_attempts: int = 4,
    seed: int = 11,
) -> RoutedRun:
    """Send ``messages`` through a 3-route ``RoundRobin`` over TCP under random faults; count and check."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    policy = RetryPolicy(max_attempts=max_attempts, initial_wait=0.001, max_wait=0.005, max_retry_after=0.01)
    timeout = httpx.Timeout(read_timeout, connect=2.0, pool=HANG_AFTER)
    stats = RoutedRun(mode, sends=messages)
    emulators: dict[str, Emulator] = {}
    started = time.perf_counter()
    with ExitStack() as stack:
        refuse_port = stack.enter_context(base.closed_port())
        rst_port = stack.enter_context(base.resetting_port())
        routes = []
        for offset, (name, sender, refusals) in enumerate(ROUTES):
            emulator = get_emulator(name)(balance=1e12, rate_limit=(1_000_000_000, 60.0))
            faults = base.emulator_faults(read_timeout, huge_size)
            faults += [Fault.vendor_error(code) for code in (*refusals, emulator.rate_limit_code)]
            emulator.fail_randomly(fault_rate, faults, seed=seed + offset)
            server = stack.enter_context(emulator.serve())
            emulators[name] = emulator
            routes.append(Route(emulator.make_provider(server.base_url), sender=sender))
        router = RoundRobin(*routes, breaker=Breaker(failures=3, cooldown=0.05))
        network = base.NetworkFaults(
            refuse_port=refuse_port, rst_port=rst_port, rate=network_rate, seed=seed, connections=concurrency * 2
        )
        if mode.endswith("async"):

            async def go() -> tuple[dict[int, object], int]:
                async with httpx.AsyncClient(transport=network) as http:
                    client = AsyncClient(router, retry=policy, http_client=http, timeout=timeout)
                    if mode.startswith("send_many"):
                        found = [
                            (o.index, o.result, o.error)
                            async for o in client.send_many(
                                (_message(i) for i in range(messages)), concurrency=concurrency
                            )
                        ]
                        return _outcomes(iter(found)), 0
                    return await _tasks(client, messages, concurrency)

            outcome, stats.hung = asyncio.run(go())
        else:
            with httpx.Client(transport=network) as http:
                client = Client(router, retry=policy, http_client=http, timeout=timeout)
                if mode.startswith("send_many"):
                    outcomes = client.send_many((_message(i) for i in range(messages)), concurrency=concurrency)
                    outcome = _outcomes((o.index, o.result, o.error) for o in outcomes)
                else:
                    outcome, stats.hung = _threads(client, messages, concurrency)
        stats.seconds = time.perf_counter() - started
        for emulator in emulators.values():
            for kind, count in emulator.fault_counts.items():
                stats.faults[base.LABELS.get(kind, kind)] += count
        stats.faults.update(network.counts)
    _tally(stats, emulators, outcome)
    return stats


def _tally(stats: RoutedRun, emulators: dict[str, Emulator], outcome: dict[int, object]) -> None:
    landed: dict[str, list[str]] = {}
    for name, emulator in emulators.items():
        for record in emulator.iter_messages():
            landed.setdefault(record.to.lstrip("+"), []).append(name)
            stats.accepted[name] += 1
    for places in landed.values():
        if len(places) > 1:
            stats.duplicates += len(places) - 1
            stats.across_vendors += len(set(places)) > 1

    for index in range(stats.sends):
        to = number(index).lstrip("+")
        places = landed.get(to, [])
        value = outcome.get(index)
        if value is None:
            continue  # hung: counted already
        if isinstance(value, SendResult):
            stats.successes += 1
            stats.failed_over += bool(value.route_errors)
            (recipient,) = value.recipients
            vendor = recipient.provider or value.provider
            if recipient.ok:
                stats.taken_by[vendor] += 1
                if places != [vendor]:
                    stats.mismatches.append(f"#{index} taken by {vendor} but landed on {places}")
            elif recipient.error is not None and recipient.error.accepted is False:
                if places:
                    stats.mismatches.append(f"#{index} rejected (accepted=False) but landed on {places}")
            else:
                stats.unknown += 1
                stats.unknown_landed += bool(places)
        elif isinstance(value, DeliveryUnknown):
            stats.delivery_unknown += 1
            stats.unknown += 1
            stats.unknown_landed += bool(places)
            if not value.idempotency_key:
                stats.mismatches.append(f"#{index} DeliveryUnknown without an idempotency key")
        elif isinstance(value, OmnisendError):
            stats.other_errors[type(value).__name__] += 1
            if places and value.accepted is False:
                stats.mismatches.append(
                    f"#{index} raised {type(value).__name__} (accepted=False) but landed on {places}"
                )
            elif places and value.accepted is not False:
                stats.unknown += 1
                stats.unknown_landed += 1
        else:
            stats.untyped.append(f"#{index} {value}")


COLUMNS = (
    ("client", 17),
    ("sends", 6),
    ("successes", 9),
    ("failed over", 11),
    ("DeliveryUnknown", 15),
    ("other typed errors", 18),
    ("duplicates", 10),
    ("across vendors", 14),
    ("untyped", 7),
    ("hung", 4),
    ("seconds", 7),
)


def table(runs: Sequence[RoutedRun]) -> str:
    """The results as a text table, then per run who took what, the errors and the faults."""
    lines = [" | ".join(title.ljust(width) for title, width in COLUMNS)]
    lines.append("-+-".join("-" * width for _, width in COLUMNS))
    for r in runs:
        cells = (
            r.mode,
            r.sends,
            r.successes,
            r.failed_over,
            r.delivery_unknown,
            sum(r.other_errors.values()),
            r.duplicates,
            r.across_vendors,
            len(r.untyped),
            r.hung,
            f"{r.seconds:.1f}",
        )
        lines.append(" | ".join(str(cell).rjust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)))
    lines.append("")
    for r in runs:
        taken = ", ".join(f"{name} {count}" for name, count in sorted(r.taken_by.items()))
        errors = ", ".join(f"{name} {count}" for name, count in r.other_errors.most_common()) or "none"
        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(r.faults.items()))
        verdict = "ok" if not r.mismatches else "MISMATCH"
        lines.append(f"{r.mode}: taken by {taken}; emulators accepted {sum(r.accepted.values())}")
        lines.append(f"{r.mode}: other typed errors: {errors}")
        lines.append(f"{r.mode}: faults injected: {faults} ({sum(r.faults.values())} in all)")
        lines.append(
            f"{r.mode}: unknown outcomes {r.unknown}, of which landed {r.unknown_landed} (once each); "
            f"reconciliation {verdict}"
        )
        for problem in (r.mismatches + r.untyped)[:10]:
            lines.append(f"{r.mode}:   ! {problem}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", "--messages", type=int, default=3000, help="messages per run (default 3000)")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--fault-rate", type=float, default=0.35, help="share of requests each emulator spoils")
    parser.add_argument("--network-rate", type=float, default=0.06, help="share of requests refused or reset")
    parser.add_argument("--read-timeout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--mode", choices=(*MODES, "all"), default="all")
    args = parser.parse_args(argv)
    logging.getLogger("omnisend").setLevel(logging.ERROR)  # one WARNING per failed send is the point of the run
    modes = MODES if args.mode == "all" else (args.mode,)
    runs = [
        run_routed(
            mode,
            messages=args.messages,
            concurrency=args.concurrency,
            fault_rate=args.fault_rate,
            network_rate=args.network_rate,
            read_timeout=args.read_timeout,
            seed=args.seed,
        )
        for mode in modes
    ]
    print(table(runs))
    print()
    failed = [r.mode for r in runs if not r.ok]
    if failed:
        print(f"FAILED: {', '.join(failed)} (duplicates, untyped errors, hangs or a reconciliation mismatch)")
        return 1
    print(
        f"OK: {len(runs)} runs, {sum(r.sends for r in runs)} messages through 3 routes, "
        "0 duplicates (0 across vendors), 0 untyped errors, 0 hangs, every outcome reconciled"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
