"""The send engine: one sans-I/O driver for every send, status lookup and flow, sync and async.

:func:`drive` is a generator in the style of httpx's auth flows. It yields two commands,
:class:`Send` ("send this request and hand me the read answer, or what the transport raised")
and :class:`Pause` ("sleep this long"), and returns the call's value or raises its typed error.
``Client`` and ``AsyncClient`` only perform those two commands; everything else lives here once:

* :class:`Call` — the bookkeeping of one logical operation: the idempotency key, the attempt
  count, the deadline, the size cap, the events.
* :func:`verdict` — the one decision after each failed attempt: did the request certainly not go
  out, may it have landed, or was it sent (:class:`Outcome`); is it retried; after how long. It
  reads the error, the step's :class:`~omnisend.providers.base.Repeat` (what sending it again can
  do, which follows from the vendor's de-duplication) and the :class:`~omnisend.RetryPolicy`.
* Errors are built once, complete (key, provider, attempts, class and ``retryable`` as decided):
  an error an adapter raised is never changed; where the verdict says more, a new error is built.

The retry loop is a plain loop over :func:`verdict` rather than tenacity's state machine: driving
``tenacity.Retrying.iter`` around each attempt adds 10–20 % to a send's CPU even when the first
attempt succeeds (``make bench``, figure 10: 1.10–1.20×, 90–124 µs a send). The wait, the caps and
the log line are the policy's own, as tenacity's ``RetryPolicy.retrying()`` gives them.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, Union

import httpx

from . import _redact
from . import events as _events
from ._answer import DEFAULT_MAX_RESPONSE_BYTES, Body, Timeouts, clean_cause, deadline_of
from .errors import ClientClosed, DeliveryUnknown, DuplicateMessage, OmnisendError, TransportError
from .models import SendResult
from .providers._steps import Flow, Repeat, Step

if TYPE_CHECKING:
    import threading

    from .providers.base import Provider
    from .retry import RetryPolicy, SleepFn

__all__ = ["Call", "Outcome", "Pause", "Run", "Send", "Verdict", "drive", "verdict"]

logger = logging.getLogger("omnisend")

R = TypeVar("R")

#: What a failed ``Repeat.PREPARE`` step's error adds to its words.
NEVER_SENT: Final = "the message was never sent (this step only prepares it), so nothing went out"
# Errors raised before the request left this machine: nothing can have been sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True, slots=True)
class Send:
    """Command: send ``request`` and read its answer through ``call`` (:meth:`Call.open`/``take``/``done``).

    The driver is handed back the ``httpx.Response`` once read, or the exception the transport
    (or the read) raised, as a value: it is never thrown into the driver. ``call.deadline``
    bounds the whole exchange.
    """

    request: httpx.Request
    call: Call


@dataclass(frozen=True, slots=True)
class Pause:
    """Command: sleep ``seconds`` (a retry's wait, or a step's pacing), then resume the driver.

    ``sleep`` is the retry policy's own sleep function (a test's recorder), or ``None``: the
    client's (``time.sleep``, ``asyncio.sleep``).
    """

    seconds: float
    sleep: SleepFn | None = None


Command = Union[Send, Pause]  # noqa: UP007 - a runtime alias on 3.10
#: The driver: yields commands, is sent each command's answer, returns the call's value.
Driver = Generator[Command, object, R]


class Run(Generic[R]):
    """A driver as an iterator of commands, for the clients' I/O loops.

    ``for command in run:`` performs each command, then sets ``run.answer`` (the read response, or
    the exception raised, for a :class:`Send`; ``None`` after a :class:`Pause`). Once the driver
    is done, ``run.value`` is its value; its typed error propagates out of the loop.
    """

    __slots__ = ("answer", "driver", "value")

    def __init__(self, driver: Driver[R]) -> None:
        self.driver = driver
        self.answer: object = None
        self.value: R

    def __iter__(self) -> Run[R]:
        return self

    def close(self) -> None:
        """Let the driver go (a cancelled or interrupted call): it ends its send's bookkeeping."""
        self.driver.close()

    def __next__(self) -> Command:
        answer, self.answer = self.answer, None
        try:
            return self.driver.send(answer)
        except StopIteration as done:
            self.value = done.value
            raise StopIteration from None


class Outcome(enum.Enum):
    """What an attempt did, as far as anyone can know."""

    NOT_SENT = "certainly not sent"
    MAY_HAVE_LANDED = "may have landed"
    SENT = "sent"


_OUTCOMES: Final = {False: Outcome.NOT_SENT, None: Outcome.MAY_HAVE_LANDED, True: Outcome.SENT}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The one decision after a failed attempt (see :func:`verdict`)."""

    outcome: Outcome
    error: OmnisendError
    """The attempt's error as the caller sees it: classified, keyed and counted."""
    retry: bool
    wait: float | None
    """Seconds before the retry (``None`` when not retried)."""
    reason: str


class Call:
    """The bookkeeping of one logical operation (a send or a status lookup); no I/O."""

    def __init__(
        self,
        provider: Provider,
        *,
        idempotency_key: str | None,
        key_from_caller: bool,
        timeout: httpx.Timeout | None,
        on_event: _events.EventHandler | None = None,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.provider = provider
        self.idempotency_key = idempotency_key
        self.key_from_caller = key_from_caller
        self.timeout = None if timeout is None else _timeout_extension(timeout)  # httpx's request extension
        self.budget = deadline_of(timeout)  # seconds the whole call may take (see docs/retries.md)
        self.deadline = None if self.budget is None else time.monotonic() + self.budget
        self.max_bytes = max_bytes
        self.stop: threading.Event | None = None  # set by a sync send_many whose consumer left
        self.attempts = 0
        self.step: Step[Any] | None = None  # the step being run
        self.step_attempts = 0
        self.step_unsure = False  # an attempt of the current step may have landed
        self.unsure_attempt = ""  # the first such attempt: "attempt N (its error)", told when the step ends
        self.in_flight = False  # a request is out, its answer not yet read
        self.sent_before = False  # an earlier step of this call sent (or may have sent) something
        self.sent_once = False  # ... through a vendor that cannot de-duplicate a repeat
        self.on_event = on_event
        self.started = time.perf_counter()
        self.attempt_started = 0.0
        self.pending: _events.AttemptFinished | None = None  # a failed attempt, until its retry wait is known
        self.segments: int | None = None  # SMS parts per recipient, stamped on the result

    @property
    def step_provider(self) -> str:
        """Who makes the current step's requests (a router's route), or the call's provider."""
        step = self.step
        return (step.provider if step is not None else None) or self.provider.name

    # -- events (only when an ``on_event`` handler is set) ------------------------------------

    def emit(self, event: _events.Event) -> None:
        """Hand ``event`` to the handler; a handler that raises is logged, never breaks the send."""
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            logger.warning("omnisend: the on_event handler raised on %s", type(event).__name__, exc_info=True)

    def attempt_ended(self, error: OmnisendError | None, http_status: int | None) -> None:
        """Record the attempt that just ended: a success is told at once, a failure once its fate is known."""
        if self.on_event is None:
            return
        self.flush(None)
        event = _events.AttemptFinished(
            provider=self.step_provider,
            idempotency_key=self.idempotency_key,
            attempt=self.attempts,
            duration=time.perf_counter() - self.attempt_started,
            http_status=http_status if error is None else error.http_status,
            error=error,
            retry_in=None,
        )
        if error is None:
            self.emit(event)
        else:
            self.pending = event

    def flush(self, retry_in: float | None) -> None:
        """Tell the failed attempt waiting for its fate: retried after ``retry_in`` s, or not (``None``)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            self.emit(replace(pending, retry_in=retry_in))

    # -- one attempt ---------------------------------------------------------------------------

    def start_step(self, step: Step[Any]) -> httpx.Request:
        if self.step_unsure and self.step is not None:
            self._sent(self.step)  # the flow went on past a step that may have landed
        self.step = step
        self.step_attempts = 0
        self.step_unsure = False
        self.unsure_attempt = ""
        if self.timeout is not None:
            # Each request its own copy; with a deadline, each phase waits at most the time left.
            timeouts = dict(self.timeout) if self.deadline is None else Timeouts(self.timeout, self.deadline)
            step.request.extensions["timeout"] = timeouts
        return step.request

    def begin_attempt(self, closed: bool) -> None:
        """Count an attempt, or refuse it (nothing is sent): closed client, no time left, stopped."""
        if closed:
            raise ClientClosed(
                "the client is closed; nothing was sent",
                provider=self.step_provider,
                idempotency_key=self.idempotency_key,
                attempts=self.attempts,
            )
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self.refused(f"timeout={self.budget:g}s used up before attempt {self.attempts + 1}")
        if self.stop is not None and self.stop.is_set():
            raise self.refused("not retried: the send_many consumer stopped")
        self.attempts += 1
        self.step_attempts += 1
        if self.on_event is not None:
            self.attempt_started = time.perf_counter()

    def refused(self, message: str) -> OmnisendError:
        """A ``TransportError`` for an attempt not made (nothing sent; no attempt ends with it)."""
        return TransportError(
            message,
            provider=self.step_provider,
            retryable=True,
            accepted=False,
            idempotency_key=self.idempotency_key,
            attempts=self.attempts,
        )

    def cancelled(self) -> OmnisendError:
        """The error a cancelled call ends with (told to the events and the log, never raised)."""
        step = self.step
        risky = (self.in_flight or self.step_unsure) and step is not None and step.repeat is not Repeat.PREPARE
        if risky or self.sent_before:  # this step's request, or an earlier step's (a split send's first chunk)
            once = self.sent_once or (risky and step is not None and step.repeat is Repeat.ONCE)
            return DeliveryUnknown(
                "cancelled after a request went out: it may have been sent; "
                "re-send with the same idempotency_key only after checking",
                provider=self.step_provider,
                retryable=not once,
                idempotency_key=self.idempotency_key,
                attempts=self.attempts,
            )
        preparing = step is not None and step.repeat is Repeat.PREPARE and self.in_flight
        return TransportError(
            f"cancelled {'while preparing the send, before it' if preparing else 'before any request'} went out",
            provider=self.step_provider,
            accepted=False,
            retryable=True,
            idempotency_key=self.idempotency_key,
            attempts=self.attempts,
        )

    # -- reading the answer (the client's I/O loop calls these in turn) --------------------

    def open(self, response: httpx.Response) -> Body:
        """Check the status line and headers before reading: redirects and announced giants refused."""
        status = response.status_code
        if 300 <= status < 400:
            raise self.failed(
                f"the vendor answered HTTP {status} (a redirect{_location(response)}); omnisend never follows "
                "redirects, which would send the credentials elsewhere: check base_url",
                sent=True,
                http_status=status,
                request_id=self.provider.request_id(response),
            )
        body = Body(response, self.max_bytes, self.deadline)
        if body.too_large_already(response):
            raise self._too_large(response)
        return body

    def take(self, response: httpx.Response, body: Body, chunk: bytes) -> None:
        """One chunk of the body; stops the read past the size cap or the deadline."""
        reason = body.feed(chunk)
        if reason is not None:
            raise self._too_large(response) if reason == "too large" else self._late(response)

    def done(self, response: httpx.Response, body: Body) -> None:
        if body.finish() is not None:
            raise self._too_large(response)
        body.load(response)

    def _too_large(self, response: httpx.Response) -> OmnisendError:
        return self.failed(
            f"the answer is larger than max_response_bytes={self.max_bytes} once decompressed",
            sent=True,
            http_status=response.status_code,
            request_id=self.provider.request_id(response),
        )

    def _late(self, response: httpx.Response) -> OmnisendError:
        return self.failed(
            f"no complete answer within timeout={self.budget:g}s",
            sent=True,
            http_status=response.status_code,
            request_id=self.provider.request_id(response),
        )

    def transport_failed(self, exc: BaseException) -> OmnisendError:
        """The typed error for an exception from the transport (any exception)."""
        late = self.deadline is not None and time.monotonic() >= self.deadline
        if isinstance(exc, _NOT_SENT):
            what = f"could not connect within timeout={self.budget:g}s" if late else "could not connect"
            return self.failed(f"{what} ({type(exc).__name__})", sent=False, cause=exc)
        what = f"no complete answer within timeout={self.budget:g}s" if late else "no answer"
        return self.failed(f"{what} ({type(exc).__name__})", sent=True, cause=exc)

    def failed(
        self,
        message: str,
        *,
        sent: bool,
        http_status: int | None = None,
        request_id: str | None = None,
        cause: BaseException | None = None,
    ) -> OmnisendError:
        """A ``TransportError`` ending the current attempt: certainly not taken (``sent=False``) or ambiguous.

        :func:`verdict` decides what it means for the step. ``cause`` is chained as a copy holding
        no request (see :func:`omnisend._answer.clean_cause`).
        """
        if sent:
            message = f"{message}; the request may have reached the vendor"
        error = TransportError(
            message,
            provider=self.step_provider,
            retryable=not sent,
            accepted=False if not sent else None,
            http_status=http_status,
            idempotency_key=self.idempotency_key,
            attempts=self.attempts,
            request_id=request_id,
        )
        if cause is not None:
            error.__cause__ = clean_cause(cause)  # still being built: it has not been raised yet
        return error

    def finish(self, step: Step[R], response: httpx.Response) -> R:
        """Parse ``response`` for ``step``: its value, or the attempt's typed error (classified, complete)."""
        try:
            value = step.parse(response)
        except DuplicateMessage as exc:
            if step.on_duplicate is not None and (self.step_attempts > 1 or self.key_from_caller):
                self.attempt_ended(None, response.status_code)
                return step.on_duplicate(exc)  # an earlier attempt (or run) landed: sent
            error = self.complete(exc)
        except OmnisendError as exc:
            error = self.complete(exc)
        else:
            self.attempt_ended(None, response.status_code)
            if step.repeat is Repeat.ONCE or step.repeat is Repeat.DEDUPLICATED:
                self._sent(step)
            return value
        raise error from error.__cause__

    def _sent(self, step: Step[Any]) -> None:
        self.sent_before = True
        self.sent_once = self.sent_once or step.repeat is Repeat.ONCE

    def classified(self, error: OmnisendError) -> OmnisendError:
        """An answer that leaves the outcome open, as the step's :class:`Repeat` makes it: retried or
        not; certainly not sent for a step that sends nothing (``Repeat.PREPARE``).

        Returns ``error`` itself when it already says so, else a new error (never a changed one).
        A redirect is answered the same way again: never retried.
        """
        step = self.step
        repeat = Repeat.ONCE if step is None else step.repeat
        if isinstance(error, TransportError) and 300 <= (error.http_status or 0) < 400:
            classified = self._classified(error, repeat)
            return classified.evolve(retryable=False) if classified.retryable else classified
        return self._classified(error, repeat)

    def _classified(self, error: OmnisendError, repeat: Repeat) -> OmnisendError:
        if repeat is Repeat.PREPARE:
            return _not_sent(error)
        if repeat is Repeat.READ:
            return error if error.retryable else error.evolve(retryable=True)
        if repeat is Repeat.DEDUPLICATED:
            # The vendor de-duplicates on our key: sending again cannot make a second message.
            if isinstance(error, TransportError) and not isinstance(error, DeliveryUnknown):
                return _unknown(error, error.message, retryable=True)
            return error if error.retryable else error.evolve(retryable=True)
        if isinstance(error, DeliveryUnknown):
            return error.evolve(retryable=False) if error.retryable else error
        return _unknown(
            error,
            f"{error.message}; not retried because {self.step_provider} cannot de-duplicate, "
            "re-send with the same idempotency_key only after checking it did not arrive",
            retryable=False,
        )

    def settle(self, error: OmnisendError) -> OmnisendError:
        """The error a step ends with: ``DeliveryUnknown`` once any of its attempts may have landed.

        A retry that ends in a 503, a refused connection or exhausted attempts after a timeout says
        nothing about the earlier attempt, so the outcome is unknown, never "certainly not taken".
        """
        if not self.step_unsure or isinstance(error, DeliveryUnknown):
            return error
        note = (
            "" if error.accepted is None else f"; an earlier attempt may have reached the vendor: {self.unsure_attempt}"
        )
        step = self.step
        return DeliveryUnknown.from_error(
            error, error.message + note, retryable=step is not None and step.repeat is not Repeat.ONCE
        )

    def complete(self, error: OmnisendError) -> OmnisendError:
        """``error`` with this call's key, provider and attempt count: itself if it has them, else a copy."""
        key = error.idempotency_key if error.idempotency_key is not None else self.idempotency_key
        provider = error.provider if error.provider is not None else self.provider.name
        if key == error.idempotency_key and provider == error.provider and error.attempts == self.attempts:
            return error
        return error.evolve(idempotency_key=key, provider=provider, attempts=self.attempts)

    def result(self, value: R) -> R:
        if isinstance(value, SendResult):
            if (
                value.attempts == self.attempts
                and value.idempotency_key == self.idempotency_key
                and value.segments == self.segments
            ):
                return value  # parse_response already set them all
            return replace(value, attempts=self.attempts, idempotency_key=self.idempotency_key, segments=self.segments)
        return value


def _unknown(error: OmnisendError, message: str, *, retryable: bool) -> DeliveryUnknown:
    """``DeliveryUnknown`` for ``error``; for the engine's own ``TransportError`` it chains what the
    transport raised (the error only restated it), for a vendor's answer that answer's error."""
    unknown = DeliveryUnknown.from_error(error, message, retryable=retryable)
    if type(error) is TransportError and error.__cause__ is not None:
        unknown.__cause__ = error.__cause__  # still being built: it has not been raised yet
    return unknown


def _not_sent(error: OmnisendError) -> OmnisendError:
    """A failure of a step that sends nothing (``Repeat.PREPARE``) whose outcome was open: a new
    error, certainly not sent and safe to repeat; an unknown outcome becomes a ``TransportError``."""
    message = f"{error.message.rstrip('.')}; {NEVER_SENT}"
    if isinstance(error, DeliveryUnknown):
        return TransportError.from_error(error, message, retryable=True)
    return error.evolve(message=message, accepted=False, retryable=True)


def verdict(error: OmnisendError, call: Call, policy: RetryPolicy) -> Verdict:
    """The one decision after a failed attempt: its outcome, the error to raise, whether it is retried, the wait.

    ``error`` is what the attempt raised (the adapter's error, or the transport's as a
    ``TransportError``); it is never changed. An answer that leaves the outcome open is classified
    for the step (:meth:`Call.classified`): retryable only where a repeat cannot make a second
    message, else ``DeliveryUnknown``; *certainly not sent* (and retryable) where the step sends
    nothing (``Repeat.PREPARE``), so a flow never rewrites its steps' errors. The policy adds the attempts left and the ``Retry-After``
    cap; the call's deadline refuses a retry whose wait would end after it.
    """
    if error.accepted is None:
        error = call.classified(error)
    outcome = _OUTCOMES[error.accepted]
    decision = policy.explain(error, call.step_attempts)
    if not decision.retry:
        return Verdict(outcome, error, False, None, decision.reason)
    wait = policy.wait_for(error, call.step_attempts)
    # An injected sleep (a test's recorder) does not pass real time: only the clock counts then.
    if call.deadline is not None and time.monotonic() + (wait if policy.sleep is None else 0.0) >= call.deadline:
        return Verdict(outcome, error, False, None, f"timeout={call.budget:g}s ends before a {wait:.2f}s wait")
    return Verdict(outcome, error, True, wait, decision.reason)


# -- the driver -------------------------------------------------------------------------------


def drive(
    call: Call, work: Flow[R] | Step[R], policy: RetryPolicy, closed: Callable[[], bool]
) -> Generator[Command, object, R]:
    """Run a flow (or one step) to its value: the whole logic of a call, yielding only I/O commands."""
    if isinstance(work, Step):
        try:
            value = yield from _run_step(call, work, policy, closed)
        except OmnisendError as exc:
            call.flush(None)
            error = call.complete(call.settle(exc))
            raise error from error.__cause__
        return call.result(value)
    step = _events_out(work, _started(work, call), call)
    while isinstance(step, Step):
        try:
            value = yield from _run_step(call, step, policy, closed)
        except OmnisendError as exc:
            step = _events_out(work, _throw(work, exc, call), call)
        else:
            step = _events_out(work, _advance(work, value, call), call)
    return call.result(step)  # type: ignore[no-any-return]


def _run_step(
    call: Call, step: Step[R], policy: RetryPolicy, closed: Callable[[], bool]
) -> Generator[Command, object, R]:
    """One step: its pacing, then attempts until one succeeds or the verdict says stop."""
    request = call.start_step(step)
    if step.delay > 0:
        if call.deadline is not None and time.monotonic() + step.delay >= call.deadline:
            raise call.refused(f"timeout={call.budget:g}s ends before the {step.delay:g}s wait this step needs")
        yield Pause(step.delay, policy.sleep)
    waited: float | None = None  # the wait before this attempt, told with the failed one once it begins
    while True:
        call.begin_attempt(closed())  # a refusal (closed, out of time, stopped) ends the step: nothing to retry
        if waited is not None:
            call.flush(waited)  # the failed attempt was retried: now it is certain
        try:
            return (yield from _attempt(call, step, request))
        except OmnisendError as exc:
            decision = verdict(exc, call, policy)
            error = decision.error
            if decision.outcome is Outcome.MAY_HAVE_LANDED and step.repeat is not Repeat.READ:
                if not call.step_unsure:  # no later attempt of this step can undo that
                    call.step_unsure, call.unsure_attempt = True, f"attempt {call.attempts} ({error.message})"
            call.attempt_ended(error, error.http_status)
            if not decision.retry or decision.wait is None:
                if error is exc:
                    raise
                raise error from error.__cause__
            logger.info(  # numbered as the events number attempts: across the call's steps
                "%s: attempt %d failed with %s; retrying in %.2fs",
                call.step_provider,
                call.attempts,
                error,
                decision.wait,
            )
            waited = decision.wait
        yield Pause(decision.wait, policy.sleep)


def _attempt(call: Call, step: Step[R], request: httpx.Request) -> Generator[Command, object, R]:
    call.in_flight = True
    answer = yield Send(request, call)
    call.in_flight = False
    if isinstance(answer, httpx.Response):
        return call.finish(step, answer)
    if isinstance(answer, OmnisendError):
        raise answer  # built by the read (size cap, deadline, redirect)
    assert isinstance(answer, BaseException), answer
    raise call.transport_failed(answer)  # not inside a handler: the transport's exception is not its context


def _started(flow: Flow[R], call: Call) -> Any:
    """Start the flow: its first step, or (rarely) its value; an error it raises is completed."""
    try:
        return next(flow)
    except StopIteration as stop:
        return stop.value
    except OmnisendError as exc:
        raise call.complete(exc) from exc.__cause__


def _advance(flow: Flow[Any], value: object, call: Call) -> Any:
    """Hand a step's value to the flow; its next step, or its final value."""
    try:
        return flow.send(value)
    except StopIteration as stop:
        return stop.value
    except OmnisendError as exc:
        raise call.complete(exc) from exc.__cause__


def _throw(flow: Flow[Any], error: OmnisendError, call: Call) -> Any:
    """Hand a step's error to the flow; it may recover (next step / value) or let it through."""
    call.flush(None)
    try:
        return flow.throw(call.complete(call.settle(error)))
    except StopIteration as stop:
        return stop.value
    except OmnisendError as exc:
        raise call.complete(exc) from exc.__cause__


_EVENTS: Final = (_events.SendStarted, _events.AttemptFinished, _events.SendFinished, _events.RouteSkipped)


def _events_out(flow: Flow[Any], step: Any, call: Call) -> Any:
    """Pass on the events a flow yields (a router's ``RouteSkipped``); its next step or value."""
    while isinstance(step, _EVENTS):
        call.emit(step)
        step = _advance(flow, None, call)
    return step


# -- helpers ---------------------------------------------------------------------------------

_TIMEOUT_EXTENSIONS: dict[tuple[float | None, ...], dict[str, float | None]] = {}


def _timeout_extension(timeout: httpx.Timeout) -> dict[str, float | None]:
    """``timeout.as_dict()``, built once per distinct value (requests get copies of it)."""
    key = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    extension = _TIMEOUT_EXTENSIONS.get(key)
    if extension is None:
        extension = timeout.as_dict()
        if len(_TIMEOUT_EXTENSIONS) < 256:
            _TIMEOUT_EXTENSIONS[key] = extension
    return extension


def _location(response: httpx.Response) -> str:
    """`` to <where>`` for a redirect's ``Location`` (no query string, secrets masked), or ``""``."""
    location = response.headers.get("location")
    if not location:
        return ""
    where = location.split("?", 1)[0].split("#", 1)[0]
    return f" to {_redact.scrub_text(where)[:200]}"
