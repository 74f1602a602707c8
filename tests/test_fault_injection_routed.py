"""The routed fault-injection run (``benchmarks/fault_injection_routed.py``), smaller, as a test.

One ``RoundRobin`` over SMSAPI, Clickatell and Webex Connect emulators on 127.0.0.1, random faults
on every vendor (network, HTTP, and the vendors' own failover-safe refusals), through ``send()``
and ``send_many`` from threads and from tasks: no number lands twice (on one vendor or on two), no
outcome is untyped, none hangs, and every outcome reconciles with what the emulators hold.
"""

from __future__ import annotations

import pytest
from benchmarks.fault_injection_routed import MODES, RoutedRun, run_routed, table

pytestmark = [pytest.mark.slow, pytest.mark.tcp]

_runs: list[RoutedRun] = []


@pytest.mark.parametrize("mode", MODES)
def test_a_routed_run_never_sends_twice_and_never_raises_untyped(mode: str) -> None:
    run = run_routed(
        mode,
        messages=120,
        concurrency=8,
        fault_rate=0.5,
        network_rate=0.1,
        read_timeout=0.6,  # well above a loaded machine's answer time; slow faults answer after 0.7 s
        seed=5,
    )
    report = table([run])
    assert run.duplicates == 0 and run.across_vendors == 0, report
    assert run.untyped == [], report
    assert run.hung == 0, report
    assert run.mismatches == [], report
    assert run.successes + run.delivery_unknown + sum(run.other_errors.values()) == run.sends, report
    # Circuits open and close on wall-clock time, so how many sends find every route open varies
    # with the machine's load; the guarantees above do not.
    assert run.successes > 0, report
    _runs.append(run)


def test_the_routed_runs_failed_over_under_every_kind_of_fault() -> None:
    if len(_runs) < len(MODES):
        pytest.skip("runs with the parametrized test above")
    assert sum(r.successes for r in _runs) >= len(_runs) * 12, table(_runs)
    assert sum(r.failed_over for r in _runs) >= 10, table(_runs)
    # Which routes take the most depends on which circuits the faults opened when: at least two did.
    assert len({name for r in _runs for name in r.taken_by}) >= 2, table(_runs)
    kinds = set().union(*(r.faults for r in _runs))
    assert {"vendor_error", "drop", "slow", "html_5xx", "refused", "rst", "reset"} <= kinds, table(_runs)
