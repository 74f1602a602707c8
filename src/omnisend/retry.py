"""The retry policy shared by :class:`~omnisend.Client` and :class:`~omnisend.AsyncClient`.

What is retried is decided by the *error*, never by the call site: an error's ``retryable``
flag follows from its class (``RateLimited``, ``ServiceUnavailable``, a connection that never
reached the vendor) and from whether the provider de-duplicates (an ambiguous failure is only
retried when the vendor can recognise the second attempt). The wait honours the vendor's
``Retry-After`` (header or vendor hint) up to ``max_retry_after``; a vendor that asks for a
longer pause is not retried at all, the error goes back to the caller at once.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, OmnisendError

if TYPE_CHECKING:  # tenacity is imported when a tenacity object is asked for: sends never need it
    import tenacity
    from tenacity import RetryCallState

    from ._tenacity import wait_retry_after

__all__ = ["RetryDecision", "RetryPolicy", "parse_retry_after", "wait_retry_after"]

logger = logging.getLogger("omnisend")

SleepFn = Callable[[float], "None | Awaitable[None]"]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Returns ``None`` for a missing, negative, non-finite or unparseable value.

    Example:
        >>> parse_retry_after("2")
        2.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
        return max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Why an error was or was not retried (see :meth:`RetryPolicy.explain`)."""

    retry: bool
    reason: str


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how patiently, to retry a retryable error.

    Args:
        max_attempts: attempts in all, the first included (``1`` disables retries).
        initial_wait: backoff before the first retry, in seconds; doubles each time.
        max_wait: cap on the backoff between two attempts.
        jitter: multiply each backoff by a random factor in [0.5, 1.0) to spread load.
        max_retry_after: the longest ``Retry-After`` honoured; a vendor asking for more is
            not retried (its error is raised at once, with its ``retry_after``).
        sleep: the sleep function (tests inject a recorder); may be sync or async.
    """

    max_attempts: int = 3
    initial_wait: float = 0.5
    max_wait: float = 8.0
    jitter: bool = True
    max_retry_after: float = 60.0
    sleep: SleepFn | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be at least 1")
        if self.initial_wait < 0 or self.max_wait < 0 or self.max_retry_after < 0:
            raise ConfigurationError("RetryPolicy waits must not be negative")

    def explain(self, error: BaseException, attempt: int) -> RetryDecision:
        """Say whether ``error`` on attempt number ``attempt`` (1-based) is retried, and why."""
        if not isinstance(error, OmnisendError):
            return RetryDecision(False, f"{type(error).__name__} is not an omnisend error")
        if not error.retryable:
            if error.accepted is None:
                return RetryDecision(False, "the vendor may have accepted it and cannot de-duplicate")
            return RetryDecision(False, f"{type(error).__name__} is not retryable")
        hint = getattr(error, "retry_after", None)
        if hint is not None and hint > self.max_retry_after:
            return RetryDecision(
                False, f"the vendor asks to wait {hint:g}s, above max_retry_after={self.max_retry_after:g}s"
            )
        if attempt >= self.max_attempts:
            return RetryDecision(False, f"max_attempts={self.max_attempts} reached")
        return RetryDecision(True, f"{type(error).__name__} is retryable")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` when the vendor gave no hint."""
        base = float(min(self.max_wait, self.initial_wait * 2 ** (attempt - 1)))
        return base * (1 - 0.5 * random.random()) if self.jitter else base

    def wait_for(self, error: BaseException | None, attempt: int) -> float:
        """The wait before the next attempt: the vendor's hint (capped) or the backoff."""
        hint = getattr(error, "retry_after", None)
        if isinstance(hint, (int, float)) and hint >= 0:
            return min(float(hint), self.max_retry_after)
        return self.backoff(attempt)

    # -- tenacity (for your own code: omnisend's engine runs its own loop over the same decisions) --

    def _retry(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None and state.outcome.failed else None
        return error is not None and self.explain(error, state.attempt_number).retry

    def tenacity_kwargs(
        self, *, label: str, before_sleep: Callable[[float], None] | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` (block form).

        ``before_sleep`` is called with the wait (seconds) before each retry, after the log line.
        With a ``deadline`` (a ``time.monotonic()`` value), a retry whose wait would end at or
        after it is not made: the last error is raised at once.
        """
        import tenacity

        from ._tenacity import stop_at, wait_retry_after

        hook = before_sleep

        def log_and_hook(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            logger.info(
                "%s: attempt %d failed with %s; retrying in %.2fs",
                label,
                state.attempt_number,
                error if error is not None else "no result",
                wait,
            )
            if hook is not None:
                hook(wait)

        stop: Any = tenacity.stop_after_attempt(self.max_attempts)
        if deadline is not None:
            stop = stop | stop_at(deadline, waits=self.sleep is None)
        return {
            "stop": stop,
            "retry": self._retry,
            "wait": wait_retry_after(self),
            "reraise": True,
            "before_sleep": log_and_hook,
        }

    def retrying(
        self,
        *,
        label: str,
        before_sleep: Callable[[float], None] | None = None,
        deadline: float | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> tenacity.Retrying:
        """A ``tenacity.Retrying``; ``sleep`` replaces ``time.sleep`` when the policy has none."""
        kwargs = self.tenacity_kwargs(label=label, before_sleep=before_sleep, deadline=deadline)
        chosen = self.sleep if self.sleep is not None else sleep
        if chosen is not None:

            def sync_sleep(seconds: float) -> None:
                chosen(seconds)

            kwargs["sleep"] = sync_sleep
        import tenacity

        return tenacity.Retrying(**kwargs)

    def async_retrying(
        self, *, label: str, before_sleep: Callable[[float], None] | None = None, deadline: float | None = None
    ) -> tenacity.AsyncRetrying:
        kwargs = self.tenacity_kwargs(label=label, before_sleep=before_sleep, deadline=deadline)
        if self.sleep is not None:
            sleep = self.sleep

            async def async_sleep(seconds: float) -> None:
                result = sleep(seconds)
                if inspect.isawaitable(result):
                    await result

            kwargs["sleep"] = async_sleep
        import tenacity

        return tenacity.AsyncRetrying(**kwargs)


NO_RETRY = RetryPolicy(max_attempts=1)


def __getattr__(name: str) -> Any:
    if name == "wait_retry_after":  # a tenacity wait strategy: tenacity is imported on first use
        from ._tenacity import wait_retry_after

        return wait_retry_after
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
