"""The tenacity strategies of :class:`~omnisend.RetryPolicy` (imported only when one is asked for).

``RetryPolicy.retrying()`` / ``async_retrying()`` / ``tenacity_kwargs()`` give tenacity objects
that decide and wait exactly as omnisend's own engine does; a send never imports tenacity.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

if TYPE_CHECKING:
    from .retry import RetryPolicy

__all__ = ["stop_at", "wait_retry_after"]


class stop_at(stop_base):  # noqa: N801 - tenacity's naming
    """Stop when the wait before the next attempt would reach ``deadline`` (``time.monotonic()``).

    An injected ``sleep`` (a test's recorder) does not pass real time: only the clock counts then.
    """

    def __init__(self, deadline: float, *, waits: bool = True) -> None:
        self.deadline = deadline
        self.waits = waits

    def __call__(self, retry_state: RetryCallState) -> bool:
        wait = retry_state.upcoming_sleep if self.waits else 0.0
        return time.monotonic() + wait >= self.deadline


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming, so it reads like its strategies
    """A tenacity wait that honours ``exc.retry_after`` (capped), else exponential backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        return self.policy.wait_for(error, retry_state.attempt_number)
