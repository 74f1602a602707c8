"""The fault-injection run (``benchmarks/fault_injection.py``), smaller, as a test.

Every provider that exists is driven over real TCP against its emulator on 127.0.0.1 under a
random mix of network and vendor faults, with retries on, from threads sharing one ``Client`` and
from tasks sharing one ``AsyncClient``, to one number a send and to three (vendor batches, one
request per number, Mobizon's campaign steps). Whatever happens: no recipient gets a message twice, no
call raises anything but an ``OmnisendError``, none hangs, and the outcomes reconcile with what
the emulator accepted.
"""

from __future__ import annotations

import pytest
from benchmarks.fault_injection import VendorRun, run_vendor, table

from omnisend import DeliveryUnknown, RetryPolicy, ServiceUnavailable
from omnisend._docs import available
from omnisend.providers import Provider
from omnisend.testing import Fault, get_emulator
from tests.conftest import inprocess_client

PROVIDER_CLASSES = available()
IDS = [cls.name for cls in PROVIDER_CLASSES]
DEDUPLICATING = [cls for cls in PROVIDER_CLASSES if cls.deduplicates]

#: Fault kinds the run must have injected (over every vendor and client) for the test to mean something.
EVERY_FAULT = {"refused", "rst", "reset", "drop", "slow", "html_5xx", "truncated", "wrong_ctype", "huge_body"}

_seen: set[str] = set()


def check(run: VendorRun) -> None:
    report = table([run])
    assert run.untyped == [], report
    assert run.hung == 0, report
    assert run.duplicates == 0, report
    assert run.mismatches == [], report
    assert run.recipients_ok + run.delivery_unknown_landed == run.accepted, report
    assert run.successes + run.delivery_unknown + sum(run.other_errors.values()) == run.sends, report
    assert run.successes > run.sends // 4, report
    assert sum(run.faults.values()) >= run.sends // 4, report
    _seen.update(run.faults)


@pytest.mark.tcp
@pytest.mark.parametrize(
    "mode, messages, recipients",
    [("threads", 100, 1), ("async", 30, 1), ("threads", 30, 3)],
    ids=["threads", "async", "threads-3-recipients"],
)
@pytest.mark.parametrize("name", IDS)
def test_fault_injection_run_keeps_every_guarantee(name: str, mode: str, messages: int, recipients: int) -> None:
    run = run_vendor(
        name,
        messages=messages,
        mode=mode,
        recipients=recipients,
        concurrency=8,
        fault_rate=0.5,
        network_rate=0.1,
        huge_size=1024 * 1024,
        read_timeout=0.6,  # well above a loaded machine's answer time; slow faults answer after 0.7 s
        seed=11,
    )
    check(run)


@pytest.mark.tcp
def test_the_runs_injected_every_kind_of_fault() -> None:
    if len(_seen) < len(EVERY_FAULT):  # run alone (-k): inject here
        for name in IDS:
            check(run_vendor(name, messages=60, concurrency=8, fault_rate=0.6, network_rate=0.15, huge_size=65536, read_timeout=0.6))
    assert EVERY_FAULT <= _seen, sorted(EVERY_FAULT - _seen)


# -- regressions the run found ------------------------------------------------------------------


def _send(cls: type[Provider], *faults: Fault) -> tuple[Exception, int]:
    emulator = get_emulator(cls.name)()
    emulator.script(*faults)
    policy = RetryPolicy(max_attempts=3, sleep=lambda _: None)
    with inprocess_client(emulator, policy) as client, pytest.raises(DeliveryUnknown, match=cls.name) as info:
        client.send(emulator.demo_message("+48500100200", "hi"))
    return info.value, emulator.accepted_count


@pytest.mark.parametrize("cls", DEDUPLICATING, ids=[c.name for c in DEDUPLICATING])
@pytest.mark.parametrize(
    "later",
    [Fault.http_error(503), Fault.refuse(), Fault.vendor_error("none")],
    ids=["503", "refused", "vendor-error"],
)
def test_a_definite_refusal_after_an_attempt_that_may_have_landed_is_delivery_unknown(
    cls: type[Provider], later: Fault
) -> None:
    """Found by the run: the message landed on attempt 1 (answer lost), attempts 2 and 3 got a 503 or a
    refused connection, and send() raised ServiceUnavailable/TransportError with accepted=False,
    "certainly not taken", inviting a re-send with a new key: a duplicate."""
    if later.kind == "vendor_error":
        later = Fault.vendor_error(get_emulator(cls.name).rate_limit_code)
    error, accepted = _send(cls, Fault.drop_after_accept(), later, later)
    assert accepted == 1
    assert error.accepted is None and error.retryable is True and error.idempotency_key and error.attempts == 3
    assert "earlier attempt may have reached the vendor: attempt 1 (" in str(error)  # names the one that may have


@pytest.mark.parametrize("cls", DEDUPLICATING, ids=[c.name for c in DEDUPLICATING])
def test_ambiguous_5xx_on_every_attempt_is_delivery_unknown(cls: type[Provider]) -> None:
    """Found by the run: three 5xx pages after the vendor took the message ended as ServiceUnavailable
    (accepted=None) instead of DeliveryUnknown, so `except DeliveryUnknown` reconciliation missed it."""
    error, accepted = _send(cls, *[Fault.http_error(500, accept=True)] * 3)
    assert accepted == 1 and error.accepted is None and error.retryable is True
    assert isinstance(error.__cause__, ServiceUnavailable) and error.http_status == 500
