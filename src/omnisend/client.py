"""``Client`` and ``AsyncClient``: they own the HTTP client and drive a provider's steps.

Everything but the I/O call lives in :class:`_Call` (one per logical operation): the
idempotency key, attempt counting, turning ``httpx`` exceptions into typed errors, the
ambiguous-failure rule and the "duplicate on a retry means it landed" rule. ``Client`` and
``AsyncClient`` only differ in how they send a request and sleep.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import httpx

from . import _redact, _wire
from . import events as _events
from ._answer import DEFAULT_MAX_RESPONSE_BYTES, Body, Timeouts, clean_cause, current, deadline_of
from ._bulk import Job, Order, Pipeline, SendOutcome, ajobs, job_plan, jobs
from ._inputs import new_key as _new_key
from ._text import sms_segments
from .errors import (
    ClientClosed,
    ConfigurationError,
    DeliveryUnknown,
    DuplicateMessage,
    OmnisendError,
    TransportError,
    ValidationError,
)
from .models import DeliveryReport, Message, SendResult
from .providers.base import Flow, Provider, Step
from .retry import NO_RETRY, RetryPolicy

logger = logging.getLogger("omnisend")

if TYPE_CHECKING:  # imported where used: ``import omnisend`` should not pay for asyncio and threads
    import asyncio
    import threading
    from concurrent.futures import Future

__all__ = ["AsyncClient", "Client", "DEFAULT_MAX_RESPONSE_BYTES", "DEFAULT_TIMEOUT"]

#: Connect fast, read patiently: a vendor that does not answer in 30 s is treated as ambiguous.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

R = TypeVar("R")
_DEFAULT: Any = object()

# Errors raised before the request left this machine: nothing can have been sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class _Call:
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
        self.step_attempts = 0
        self.step_unsure = False
        self.step_idempotent = False
        self.on_event = on_event
        self.started = 0.0
        self.attempt_started = 0.0
        self.step_provider = provider.name  # who makes the current step's requests (a router's route)
        self.pending: _events.AttemptFinished | None = None  # a failed attempt, until its retry wait is known
        self.segments: int | None = None  # SMS parts per recipient, stamped on the result

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

    def retry_hook(self) -> Callable[[float], None] | None:
        """What the retry policy calls before sleeping, so the failed attempt is told with its wait."""
        return self.flush if self.on_event is not None else None

    def start_step(self, step: Step[Any]) -> httpx.Request:
        self.step_attempts = 0
        self.step_unsure = False
        self.step_idempotent = step.idempotent
        self.step_provider = step.provider or self.provider.name
        if self.timeout is not None:
            # Each request its own copy; with a deadline, each phase waits at most the time left.
            timeouts = dict(self.timeout) if self.deadline is None else Timeouts(self.timeout, self.deadline)
            step.request.extensions["timeout"] = timeouts
        return step.request

    def begin_attempt(self, step: Step[Any], closed: bool) -> None:
        """Count an attempt, or refuse it (nothing is sent): closed client, no time left, stopped."""
        if closed:
            raise self._stamp(
                self._remember(
                    step, ClientClosed("the client is closed; nothing was sent", provider=self.step_provider)
                )
            )
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self.failed(
                step,
                f"timeout={self.budget:g}s used up before attempt {self.attempts + 1}",
                sent=False,
                attempted=False,
            )
        if self.stop is not None and self.stop.is_set():
            raise self.failed(step, "not retried: the send_many consumer stopped", sent=False, attempted=False)
        self.attempts += 1
        self.step_attempts += 1
        if self.on_event is not None:
            self.attempt_started = time.perf_counter()

    # -- reading the answer (the client's I/O loop calls these in turn) --------------------

    def open(self, step: Step[Any], response: httpx.Response) -> Body:
        """Check the status line and headers before reading: redirects and announced giants refused."""
        status = response.status_code
        if 300 <= status < 400:
            raise self.failed(
                step,
                f"the vendor answered HTTP {status} (a redirect{_location(response)}); omnisend never follows "
                "redirects, which would send the credentials elsewhere: check base_url",
                sent=True,
                http_status=status,
                retry=False,
            )
        body = Body(response, self.max_bytes, self.deadline)
        if body.too_large_already(response):
            raise self._too_large(step, response)
        return body

    def take(self, step: Step[Any], response: httpx.Response, body: Body, chunk: bytes) -> None:
        """One chunk of the body; stops the read past the size cap or the deadline."""
        reason = body.feed(chunk)
        if reason is not None:
            raise self._too_large(step, response) if reason == "too large" else self._late(step, response)

    def done(self, step: Step[Any], response: httpx.Response, body: Body) -> None:
        if body.finish() is not None:
            raise self._too_large(step, response)
        body.load(response)

    def _too_large(self, step: Step[Any], response: httpx.Response) -> OmnisendError:
        return self.failed(
            step,
            f"the answer is larger than max_response_bytes={self.max_bytes} once decompressed",
            sent=True,
            http_status=response.status_code,
        )

    def _late(self, step: Step[Any], response: httpx.Response) -> OmnisendError:
        return self.failed(
            step, f"no complete answer within timeout={self.budget:g}s", sent=True, http_status=response.status_code
        )

    def transport_failed(self, step: Step[Any], exc: BaseException) -> OmnisendError:
        """The typed error for an exception from the transport during ``step`` (any exception)."""
        late = self.deadline is not None and time.monotonic() >= self.deadline
        if isinstance(exc, _NOT_SENT):
            what = f"could not connect within timeout={self.budget:g}s" if late else "could not connect"
            return self.failed(step, f"{what} ({type(exc).__name__})", sent=False, cause=exc)
        what = f"no complete answer within timeout={self.budget:g}s" if late else "no answer"
        return self.failed(step, f"{what} ({type(exc).__name__})", sent=True, cause=exc)

    def failed(
        self,
        step: Step[Any],
        message: str,
        *,
        sent: bool,
        http_status: int | None = None,
        retry: bool | None = None,
        cause: BaseException | None = None,
        attempted: bool = True,
    ) -> OmnisendError:
        """A ``TransportError``: certainly not taken (``sent=False``) or ambiguous, classified for ``step``.

        ``cause`` is chained as a copy holding no request (see :func:`omnisend._answer.clean_cause`);
        ``attempted``: the error ends an attempt (``False``: one refused before it began).
        """
        name = step.provider or self.provider.name
        error: OmnisendError
        if not sent:
            error = TransportError(message, provider=name, retryable=True, accepted=False, http_status=http_status)
        else:
            error = TransportError(
                f"{message}; the request may have reached the vendor",
                provider=name,
                accepted=None,
                http_status=http_status,
            )
            error = self._ambiguous(step, error)
        if retry is not None:
            error.retryable = retry
        if cause is not None:
            error.__cause__ = clean_cause(cause)
        error = self._stamp(self._remember(step, error))
        if attempted:
            self.attempt_ended(error, http_status)
        return error

    def finish(self, step: Step[R], response: httpx.Response) -> R:
        """Parse ``response`` for ``step``; raises the typed error, stamped and classified."""
        try:
            value = self._parse(step, response)
        except OmnisendError as exc:
            self.attempt_ended(exc, response.status_code)
            raise
        self.attempt_ended(None, response.status_code)
        return value

    def _parse(self, step: Step[R], response: httpx.Response) -> R:
        try:
            return step.parse(response)
        except DuplicateMessage as exc:
            if step.on_duplicate is not None and (self.step_attempts > 1 or self.key_from_caller):
                return step.on_duplicate(exc)
            raise self._stamp(exc) from None
        except OmnisendError as exc:
            error = self._remember(step, self._ambiguous(step, exc) if exc.accepted is None else exc)
            if error is exc:
                raise self._stamp(exc) from None
            raise self._stamp(error) from exc

    def _remember(self, step: Step[Any], error: OmnisendError) -> OmnisendError:
        """Note an attempt that may have reached the vendor: no later attempt can undo that."""
        if error.accepted is None and not step.read_only:
            self.step_unsure = True
        return error

    def settle(self, error: OmnisendError) -> OmnisendError:
        """The error a step ends with: ``DeliveryUnknown`` once any of its attempts may have landed.

        A retry that ends in a 503, a refused connection or exhausted attempts after a timeout says
        nothing about the earlier attempt, so the outcome is unknown, never "certainly not taken".
        """
        if not self.step_unsure or isinstance(error, DeliveryUnknown):
            return error
        note = "" if error.accepted is None else "; an earlier attempt may have reached the vendor"
        return DeliveryUnknown.from_error(error, error.message + note, retryable=self.step_idempotent)

    def _ambiguous(self, step: Step[Any], error: OmnisendError) -> OmnisendError:
        """An answer that leaves the outcome open: retry it only when a repeat is harmless."""
        if step.read_only:
            error.retryable = True
            return error
        if step.idempotent:
            # The vendor de-duplicates on our key: sending again cannot make a second message.
            if isinstance(error, TransportError) and not isinstance(error, DeliveryUnknown):
                return DeliveryUnknown.from_error(error, error.message, retryable=True)
            error.retryable = True
            return error
        if isinstance(error, DeliveryUnknown):
            error.retryable = False
            return error
        return DeliveryUnknown.from_error(
            error,
            f"{error.message}; not retried because {step.provider or self.provider.name} cannot de-duplicate, "
            "re-send with the same idempotency_key only after checking it did not arrive",
            retryable=False,
        )

    def _stamp(self, error: OmnisendError) -> OmnisendError:
        if error.idempotency_key is None:
            error.idempotency_key = self.idempotency_key
        if error.provider is None:
            error.provider = self.provider.name
        error.attempts = self.attempts
        return error

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


_C = TypeVar("_C", bound="_BaseClient")


class _BaseClient:
    """What ``Client`` and ``AsyncClient`` share: configuration and preparing calls."""

    def __init__(
        self,
        provider: Provider,
        *,
        retry: RetryPolicy | None = _DEFAULT,
        timeout: httpx.Timeout | float | None = _DEFAULT,
        on_event: _events.EventHandler | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if on_event is not None and not callable(on_event):
            raise ConfigurationError(f"on_event must be callable, got {type(on_event).__name__}")
        self.on_event = on_event
        if not isinstance(provider, Provider):
            raise ConfigurationError(
                f"Client needs a provider instance such as Smsapi(token=...), got {type(provider).__name__}"
            )
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) or max_response_bytes < 1:
            raise ConfigurationError(f"max_response_bytes must be a positive int, got {max_response_bytes!r}")
        self.provider = provider
        self.retry = RetryPolicy() if retry is _DEFAULT else (retry or NO_RETRY)
        self.timeout = DEFAULT_TIMEOUT if timeout is _DEFAULT else _as_timeout(timeout)
        self.max_response_bytes = max_response_bytes
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider!r}, retry={self.retry!r})"

    _http: Any  # the httpx client (sync or async), set by the subclass

    @property
    def closed(self) -> bool:
        """True once ``close()``/``aclose()`` was called, or the ``http_client`` passed in was closed."""
        return self._closed or bool(self._http.is_closed)

    def _check_open(self) -> None:
        if self._closed or self._http.is_closed:
            raise ClientClosed(
                f"this {type(self).__name__} is closed (or its http_client is): nothing was sent; create a new one",
                provider=self.provider.name,
            )

    @classmethod
    def from_url(cls: type[_C], url: str, **client_options: Any) -> _C:
        """A client for the provider (or router) a URL describes: ``Client.from_url("smsapi://TOKEN@default")``.

        ``client_options`` are this class's keyword arguments (``retry=``, ``timeout=``, ...).
        The URL forms are those of :func:`omnisend.from_url`.
        """
        from ._url import from_url

        return cls(from_url(url), **client_options)

    @classmethod
    def from_env(cls: type[_C], **client_options: Any) -> _C:
        """A client for the provider URL in the ``OMNISEND_URL`` environment variable."""
        from ._url import from_env

        return cls(from_env(), **client_options)

    def _send_call(
        self, message: Message, timeout: httpx.Timeout | float | None
    ) -> tuple[_Call, Flow[SendResult] | Step[SendResult]]:
        if not isinstance(message, Message):
            raise ValidationError(
                f"send() takes an omnisend.Message, got {type(message).__name__}", provider=self.provider.name
            )
        self._check_open()
        key = message.idempotency_key or _new_key()
        call = _Call(
            self.provider,
            idempotency_key=key,
            # A send_many batch of keyed messages carries its members' ids: a "duplicate" answer to
            # its first attempt means a run with the same keys sent it before, as for a caller's key.
            key_from_caller=message.idempotency_key is not None or message._recipient_ids is not None,
            timeout=self.timeout if timeout is _DEFAULT else _as_timeout(timeout),
            on_event=self.on_event,
            max_bytes=self.max_response_bytes,
        )
        call.started = time.perf_counter()
        if message.channel == "sms" and message.text is not None:
            call.segments = sms_segments(message.text).parts
        if self.on_event is not None:
            call.emit(_events.SendStarted(self.provider.name, key, len(message.recipients)))
        provider = self.provider
        try:
            if (
                not message.metadata
                and type(provider).send_flow is Provider.send_flow
                and len(message.recipients) <= provider.max_recipients
            ):
                # What the base flow does for one request, without a generator around the step.
                return call, provider.send_step(message, idempotency_key=key)
            flow = provider.send_flow(message, idempotency_key=key)
            return call, (_with_metadata(flow, message.metadata) if message.metadata else flow)
        except OmnisendError as exc:  # raised by send_step (bad input); a flow raises lazily
            raise self._send_failed(call, call._stamp(exc)) from None

    def _send_done(self, call: _Call, result: SendResult) -> SendResult:
        """Tell the end of a send that succeeded: the ``SendFinished`` event and the DEBUG log record."""
        if call.on_event is not None:
            call.emit(
                _events.SendFinished(
                    result.provider or self.provider.name,
                    call.idempotency_key,
                    call.attempts,
                    _since(call),
                    result,
                    None,
                )
            )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s: sent, message id %s, key %s, %d attempt(s)",
                result.provider,
                result.message_id,
                call.idempotency_key,
                call.attempts,
            )
        return result

    def _send_failed(self, call: _Call, error: OmnisendError) -> OmnisendError:
        """Tell the end of a send that failed: the ``SendFinished`` event and the WARNING log record."""
        call.flush(None)
        call.emit(
            _events.SendFinished(
                error.provider or self.provider.name, call.idempotency_key, call.attempts, _since(call), None, error
            )
        )
        logger.warning(
            "%s: send failed, key %s, %d attempt(s): %s: %s",
            error.provider or self.provider.name,
            call.idempotency_key,
            call.attempts,
            type(error).__name__,
            error,
        )
        return error

    def _status_call(
        self, message_id: str, timeout: httpx.Timeout | float | None, provider: str | None
    ) -> tuple[_Call, Flow[DeliveryReport]]:
        self._check_open()
        target = self.provider if provider is None else self.provider.resolve(provider)
        call = _Call(
            target,
            idempotency_key=None,
            key_from_caller=False,
            timeout=self.timeout if timeout is _DEFAULT else _as_timeout(timeout),
            on_event=self.on_event,
            max_bytes=self.max_response_bytes,
        )
        return call, target.status_flow(message_id)

    def _policy(self, retry: RetryPolicy | None) -> RetryPolicy:
        return self.retry if retry is _DEFAULT else (retry or NO_RETRY)

    @staticmethod
    def _check_bulk(concurrency: int, order: str) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"send_many: concurrency must be a positive int, got {concurrency!r}")
        if order not in ("input", "completion"):
            raise ConfigurationError(f"send_many: order must be 'input' or 'completion', got {order!r}")


def _since(call: _Call) -> float:
    return time.perf_counter() - call.started


def _with_metadata(flow: Flow[SendResult], metadata: Mapping[str, str]) -> Flow[SendResult]:
    result = yield from flow
    return replace(result, metadata=dict(metadata)) if metadata else result


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


def _as_timeout(value: httpx.Timeout | float | None) -> httpx.Timeout | None:
    if value is None or isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(value)


def _location(response: httpx.Response) -> str:
    """`` to <where>`` for a redirect's ``Location`` (no query string, secrets masked), or ``""``."""
    location = response.headers.get("location")
    if not location:
        return ""
    where = location.split("?", 1)[0].split("#", 1)[0]
    return f" to {_redact.scrub_text(where)[:200]}"


def _step_pause(step: Step[Any], call: _Call) -> float:
    """How long to wait before ``step`` (its ``delay``); refused when the deadline comes first."""
    if call.deadline is not None and time.monotonic() + step.delay >= call.deadline:
        raise call.failed(
            step, f"timeout={call.budget:g}s ends before the {step.delay:g}s wait this step needs", sent=False
        )
    return step.delay


def _pre_flight(flow: Flow[R], call: _Call) -> Step[Any] | R:
    """Start the flow: its first step, or (rarely) its result; validation errors are stamped."""
    try:
        return next(flow)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except OmnisendError as exc:
        raise call._stamp(exc) from None


class Client(_BaseClient):
    """Send messages through one provider, with typed errors and safe retries.

    Args:
        provider: the vendor adapter, e.g. ``Smsapi(token=...)``.
        retry: the retry policy; ``None`` disables retries.
        http_client: an ``httpx.Client`` to use (not closed by omnisend). omnisend never follows
            redirects, whatever the client's ``follow_redirects``.
        timeout: default timeout (``httpx.Timeout`` or seconds); ``None`` waits forever. It is a
            deadline for the whole call, retries and waits included (see ``docs/retries.md``).
        max_response_bytes: the largest answer read, once decompressed (default 1 MiB); a larger
            one is a ``TransportError`` (``DeliveryUnknown`` for a send).

    Example:
        >>> with Client(Smsapi(token="...")) as client:  # doctest: +SKIP
        ...     client.send(Message(to="+48500100200", text="Hi"))
    """

    def __init__(
        self,
        provider: Provider,
        *,
        retry: RetryPolicy | None = _DEFAULT,
        http_client: httpx.Client | None = None,
        timeout: httpx.Timeout | float | None = _DEFAULT,
        on_event: _events.EventHandler | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(
            provider, retry=retry, timeout=timeout, on_event=on_event, max_response_bytes=max_response_bytes
        )
        self._owns_http = http_client is None
        self._http: httpx.Client = http_client if http_client is not None else _wire.make_sync_http(self.timeout)

    def send(
        self,
        message: Message,
        *,
        retry: RetryPolicy | None = _DEFAULT,
        timeout: httpx.Timeout | float | None = _DEFAULT,
    ) -> SendResult:
        """Send ``message``; returns the :class:`SendResult` or raises a typed error.

        Raises:
            ValidationError: the message is invalid for this provider (before any request).
            ProviderError: the vendor refused it (subclass says why).
            DeliveryUnknown: the vendor may have taken it; re-send with ``error.idempotency_key``
                only after checking.
        """
        return self._send(message, retry, timeout, None)

    def _send(
        self,
        message: Message,
        retry: RetryPolicy | None,
        timeout: httpx.Timeout | float | None,
        stop: threading.Event | None,
    ) -> SendResult:
        call, flow = self._send_call(message, timeout)
        call.stop = stop
        try:
            result: SendResult = self._drive(flow, call, self._policy(retry))
        except OmnisendError as exc:
            self._send_failed(call, exc)
            raise
        return self._send_done(call, result)

    def get_status(
        self,
        message_id: str,
        *,
        provider: str | None = None,
        retry: RetryPolicy | None = _DEFAULT,
        timeout: httpx.Timeout | float | None = _DEFAULT,
    ) -> DeliveryReport:
        """Look up the current delivery status of ``message_id``.

        Through a router, ``provider`` names the route that took the message (``result.provider``).
        """
        call, flow = self._status_call(message_id, timeout, provider)
        report: DeliveryReport = self._drive(flow, call, self._policy(retry))
        return report

    def send_many(
        self,
        messages: Iterable[Message],
        *,
        concurrency: int = 8,
        order: Order = "input",
        batch: bool = True,
        retry: RetryPolicy | None = _DEFAULT,
        timeout: httpx.Timeout | float | None = _DEFAULT,
    ) -> Iterator[SendOutcome]:
        """Send many messages; yields one :class:`SendOutcome` per input message, never raising a send error.

        Messages are read from ``messages`` lazily (a generator of 100,000 is never held in memory);
        at most ``concurrency`` sends run at once, on threads, and at most ``2 * concurrency`` are
        taken ahead of the consumer (the others finished, waiting for an earlier one or for you). ``order="input"`` yields outcomes in
        input order; ``"completion"`` as they finish. ``batch`` merges consecutive messages with
        identical content into vendor-native multi-recipient requests. Where the vendor takes an id
        per recipient (SMSAPI ``idx``) every message keeps its own key — yours, or one generated
        for it — and is batched whether or not it has one; each outcome (and its errors) carries
        that key, and re-sending the message with it is de-duplicated by the vendor. Elsewhere
        messages with their own ``idempotency_key`` are sent alone. Each request keeps its own
        retry policy.

        If reading ``messages`` raises (or an item is not a ``Message``: ``TypeError``), nothing
        more is read; the outcomes of the sends already made are yielded, then that error is raised.

        Leaving the loop early (``break``, an exception, ``KeyboardInterrupt``) starts no new send:
        the sends in flight end the attempt they are making and are not retried; those that were
        or may have been sent are logged (``omnisend`` logger, WARNING) with their keys.
        """
        self._check_bulk(concurrency, order)
        self._check_open()
        return self._send_many(messages, concurrency, order, batch, retry, timeout)

    def _send_many(
        self,
        messages: Iterable[Message],
        concurrency: int,
        order: Order,
        batch: bool,
        retry: RetryPolicy | None,
        timeout: httpx.Timeout | float | None,
    ) -> Iterator[SendOutcome]:
        source = jobs(
            messages, max_recipients=self.provider.max_recipients, batch=batch, keyed=self.provider.keyed_recipients
        )

        import threading
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        stop = threading.Event()  # set when the consumer leaves: no new send, no retry, no wait

        def run(job: Job) -> list[SendOutcome]:
            plan = job_plan(job)  # the job's logic, shared with the asyncio driver
            message = next(plan)
            while True:
                answer: SendResult | OmnisendError
                try:
                    answer = self._send(message, retry, timeout, stop)
                except OmnisendError as exc:
                    answer = exc
                try:
                    message = plan.send(answer)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]

        pool = ThreadPoolExecutor(concurrency, thread_name_prefix="omnisend-send")
        pipeline = Pipeline(window=2 * concurrency, order=order)
        running: dict[Future[list[SendOutcome]], int] = {}
        by_number: dict[int, Future[list[SendOutcome]]] = {}
        try:
            while True:
                while pipeline.claim():
                    try:
                        job = next(source, None)
                    except Exception as exc:  # noqa: BLE001 - the input failed: re-raised after the outcomes due
                        pipeline.broke(exc)
                        break
                    number = pipeline.took(job)
                    if job is None or number is None:
                        break
                    future = pool.submit(run, job)
                    running[future] = number
                    by_number[number] = future
                outcomes = pipeline.next_outcomes()
                if outcomes is not None:
                    yield from outcomes
                    continue
                if pipeline.finished:
                    if pipeline.failure is not None:
                        raise pipeline.failure
                    return
                if order == "input":
                    done: Iterable[Future[list[SendOutcome]]] = (by_number[pipeline.waiting_for],)
                else:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    number = running.pop(future)
                    del by_number[number]
                    pipeline.finish(number, future.result())
        finally:
            stop.set()
            for future in running:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)  # the sends in flight end their current attempt
            source.close()
            _report_abandoned(running)

    def _drive(self, flow: Flow[Any] | Step[Any], call: _Call, policy: RetryPolicy) -> Any:
        if isinstance(flow, Step):
            try:
                return call.result(self._run_step(flow, call, policy))
            except OmnisendError as exc:
                error = _step_failed(exc, call)
                raise error from error.__cause__
        step = _events_out(flow, _pre_flight(flow, call), call)
        while isinstance(step, Step):
            try:
                value = self._run_step(step, call, policy)
            except OmnisendError as exc:
                step = _events_out(flow, _throw(flow, exc, call), call)
            else:
                step = _events_out(flow, _advance(flow, value, call), call)
        return call.result(step)

    def _run_step(self, step: Step[R], call: _Call, policy: RetryPolicy) -> R:
        request = call.start_step(step)
        # A sync send_many whose consumer left wakes its sends from their waits (Event.wait).
        pause = time.sleep if call.stop is None else call.stop.wait
        if step.delay > 0:
            (policy.sleep if policy.sleep is not None else pause)(_step_pause(step, call))
        # The first attempt runs outside tenacity: most sends need one, and building tenacity's
        # machinery for it costs more than omnisend's own bookkeeping. When it fails with an error
        # the policy retries, tenacity takes over as if it had made that attempt itself (same
        # decision, same wait, same log line), so retries behave exactly as before.
        first: OmnisendError | None = None
        try:
            return self._attempt(step, call, request)
        except OmnisendError as exc:
            if not policy.explain(exc, 1).retry:
                raise
            first = exc
        retrying = policy.retrying(
            label=step.provider or self.provider.name,
            before_sleep=call.retry_hook(),
            deadline=call.deadline,
            sleep=pause,
        )
        for attempt in retrying:
            with attempt:
                if first is not None:
                    error, first = first, None
                    raise error
                return self._attempt(step, call, request)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _attempt(self, step: Step[R], call: _Call, request: httpx.Request) -> R:
        call.begin_attempt(step, self._closed or self._http.is_closed)
        failure: OmnisendError | None = None
        current.deadline = call.deadline
        try:
            if self._owns_http and _wire.direct(self._http):  # close to the wire: see omnisend._wire
                response = _wire.send_direct(self._http, request)
            else:
                response = self._http.send(request, stream=True, follow_redirects=False)
            try:
                body = call.open(step, response)
                for chunk in cast(httpx.SyncByteStream, response.stream):
                    call.take(step, response, body, chunk)
                call.done(step, response, body)
            finally:
                response.close()
        except OmnisendError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the transport raised becomes a typed error
            failure = call.transport_failed(step, exc)
        finally:
            current.deadline = None
        if failure is not None:
            raise failure  # outside the handler: the transport's exception (and request) is not its context
        return call.finish(step, response)

    def close(self) -> None:
        """Close the client: later sends raise ``ClientClosed``; the HTTP client is closed if omnisend made it."""
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """The asyncio twin of :class:`Client`: same arguments, ``await`` on each call.

    Cancelling a pending ``send()`` stops it at once: no retry keeps running in the background.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        retry: RetryPolicy | None = _DEFAULT,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float | None = _DEFAULT,
        on_event: _events.EventHandler | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(
            provider, retry=retry, timeout=timeout, on_event=on_event, max_response_bytes=max_response_bytes
        )
        self._owns_http = http_client is None
        self._http: httpx.AsyncClient = http_client if http_client is not None else _wire.make_async_http(self.timeout)
        self._loop: asyncio.AbstractEventLoop | None = None  # the event loop of the first call

    def _check_loop(self) -> None:
        """Bind to the running event loop on first use; refuse (before any request) another live one.

        A connection pool belongs to the loop that opened its connections. When that loop is gone
        (``asyncio.run`` twice), a client omnisend created gets a new pool; a caller's
        ``http_client`` cannot be replaced, so the call raises ``ClientClosed`` instead.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        if self._loop is not None:
            if not (self._owns_http and self._loop.is_closed()):
                raise ClientClosed(
                    f"this AsyncClient was first used in another event loop ({'closed' if self._loop.is_closed() else 'still open'}); "
                    "nothing was sent. Create the AsyncClient (and its http_client) in the loop that uses it",
                    provider=self.provider.name,
                )
            _wire.forget(self._http)
            self._http = _wire.make_async_http(self.timeout)
        self._loop = loop

    async def send(
        self,
        message: Message,
        *,
        retry: RetryPolicy | None = _DEFAULT,
        timeout: httpx.Timeout | float | None = _DEFAULT,
    ) -> SendResult:
        """Send ``message``; see :meth:`Client.send`."""
        self._check_loop()
        call, flow = self._send_call(message, timeout)
        try:
            result: SendResult = await self._drive(flow, call, self._policy(retry))
        except OmnisendError as exc:
            self._send_failed(call, exc)
            raise
        return self._send_done(call, result)

    async def get_status(
        self,
        message_id: str,
        *,
        provider: str | None = None,
        retry: RetryPolicy | None = _DEFAULT,
        timeout: httpx.Timeout | float | None = _DEFAULT,
    ) -> DeliveryReport:
        """Look up the current delivery status of ``message_id``; see :meth:`Client.get_status`."""
        self._check_loop()
        call, flow = self._status_call(message_id, timeout, provider)
        return await self._drive(flow, call, self._policy(retry))  # type: ignore[no-any-return]

    def send_many(
        self,
        messages: Iterable[Message] | AsyncIterable[Message],
        *,
        concurrency: int = 50,
        order: Order = "input",
        batch: bool = True,
        retry: RetryPolicy | None = _DEFAULT,
        timeout: httpx.Timeout | float | None = _DEFAULT,
    ) -> AsyncIterator[SendOutcome]:
        """The asyncio :meth:`Client.send_many`: ``async for outcome in client.send_many(messages)``.

        Takes a sync or async iterable, read lazily by ``concurrency`` worker tasks; at most
        ``2 * concurrency`` messages are taken ahead of the consumer. Leaving the loop early (or
        cancelling it) cancels the sends still running. A failing input is raised after the
        outcomes of the sends already made, as in :meth:`Client.send_many`.
        """
        self._check_bulk(concurrency, order)
        self._check_open()
        return self._send_many(messages, concurrency, order, batch, retry, timeout)

    async def _send_many(
        self,
        messages: Iterable[Message] | AsyncIterable[Message],
        concurrency: int,
        order: Order,
        batch: bool,
        retry: RetryPolicy | None,
        timeout: httpx.Timeout | float | None,
    ) -> AsyncIterator[SendOutcome]:
        import asyncio

        # A plain iterable is read directly: no async-generator hop per message.
        size, keyed = self.provider.max_recipients, self.provider.keyed_recipients
        sync_source = (
            None
            if isinstance(messages, AsyncIterable)
            else jobs(messages, max_recipients=size, batch=batch, keyed=keyed)
        )
        async_source = ajobs(messages, max_recipients=size, batch=batch, keyed=keyed) if sync_source is None else None
        reading = asyncio.Lock()  # an async generator is advanced by one worker at a time
        pipeline = Pipeline(window=2 * concurrency, order=order)
        loop = asyncio.get_running_loop()
        idle: deque[asyncio.Future[None]] = deque()  # workers waiting for room in the window
        wakeup: list[asyncio.Future[None]] = []  # the consumer, waiting for outcomes
        crashed: list[BaseException] = []

        def wake_consumer() -> None:
            if wakeup and not wakeup[0].done():
                wakeup[0].set_result(None)

        async def read() -> Job | None:
            if sync_source is not None:
                return next(sync_source, None)
            assert async_source is not None
            async with reading:
                return await anext(async_source, None)

        async def run(job: Job) -> list[SendOutcome]:
            plan = job_plan(job)  # the job's logic, shared with the thread driver
            message = next(plan)
            while True:
                answer: SendResult | OmnisendError
                try:
                    answer = await self.send(message, retry=retry, timeout=timeout)
                except OmnisendError as exc:
                    answer = exc
                try:
                    message = plan.send(answer)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]

        async def worker() -> None:
            # A fixed set of workers, each sending one job after another: a task per message
            # would cost a task's set-up, and its garbage-collector churn, on every message.
            while True:
                if not pipeline.claim():
                    if pipeline.exhausted:
                        return
                    room = loop.create_future()
                    idle.append(room)
                    await room
                    continue
                try:
                    job = await read()
                except Exception as exc:  # noqa: BLE001 - the input failed: re-raised after the outcomes due
                    pipeline.broke(exc)
                    wake_consumer()
                    return
                number = pipeline.took(job)
                if job is None or number is None:
                    wake_consumer()
                    return
                try:
                    outcomes = await run(job)
                except Exception as exc:  # noqa: BLE001 - a bug, not a send error: the consumer re-raises it
                    crashed.append(exc)
                    wake_consumer()
                    return
                if pipeline.finish(number, outcomes):
                    wake_consumer()

        # No more workers than messages when the input says how many it has.
        size_hint = len(messages) if isinstance(messages, Sized) else concurrency
        workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(concurrency, size_hint)))]
        try:
            while True:
                if crashed:
                    raise crashed[0]
                outcomes = pipeline.next_outcomes()
                if outcomes is None:
                    if pipeline.finished:
                        if pipeline.failure is not None:
                            raise pipeline.failure
                        return
                    wakeup.append(loop.create_future())
                    try:
                        await wakeup[0]
                    finally:
                        wakeup.clear()
                    continue
                if idle:
                    room = idle.popleft()
                    if not room.done():
                        room.set_result(None)
                for outcome in outcomes:
                    yield outcome
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if sync_source is not None:
                sync_source.close()
            if async_source is not None:
                await async_source.aclose()

    async def _drive(self, flow: Flow[Any] | Step[Any], call: _Call, policy: RetryPolicy) -> Any:
        if isinstance(flow, Step):
            try:
                return call.result(await self._run_step(flow, call, policy))
            except OmnisendError as exc:
                error = _step_failed(exc, call)
                raise error from error.__cause__
        step = _events_out(flow, _pre_flight(flow, call), call)
        while isinstance(step, Step):
            try:
                value = await self._run_step(step, call, policy)
            except OmnisendError as exc:
                step = _events_out(flow, _throw(flow, exc, call), call)
            else:
                step = _events_out(flow, _advance(flow, value, call), call)
        return call.result(step)

    async def _run_step(self, step: Step[R], call: _Call, policy: RetryPolicy) -> R:
        request = call.start_step(step)
        if step.delay > 0:
            import asyncio

            delay = _step_pause(step, call)
            pause = policy.sleep(delay) if policy.sleep is not None else asyncio.sleep(delay)
            if inspect.isawaitable(pause):
                await pause
        # As in Client._run_step: attempt one outside tenacity, tenacity from the first retry on.
        first: OmnisendError | None = None
        try:
            return await self._attempt(step, call, request)
        except OmnisendError as exc:
            if not policy.explain(exc, 1).retry:
                raise
            first = exc
        retrying = policy.async_retrying(
            label=step.provider or self.provider.name, before_sleep=call.retry_hook(), deadline=call.deadline
        )
        async for attempt in retrying:
            with attempt:
                if first is not None:
                    error, first = first, None
                    raise error
                return await self._attempt(step, call, request)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _attempt(self, step: Step[R], call: _Call, request: httpx.Request) -> R:
        call.begin_attempt(step, self._closed or self._http.is_closed)
        failure: OmnisendError | None = None
        try:
            if call.deadline is None:
                response = await self._exchange(step, call, request)
            else:
                # Each phase already waits at most the time left; this also ends a server that
                # drips its headers byte by byte, a moment after the deadline.
                response = await _within(call.deadline + _BACKSTOP, self._exchange(step, call, request))
        except OmnisendError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the transport raised becomes a typed error
            failure = call.transport_failed(step, exc)
        if failure is not None:
            raise failure  # outside the handler: the transport's exception (and request) is not its context
        return call.finish(step, response)

    async def _exchange(self, step: Step[Any], call: _Call, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its answer within the size cap (the only async I/O of a call)."""
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            body = call.open(step, response)
            async for chunk in cast(httpx.AsyncByteStream, response.stream):
                call.take(step, response, body, chunk)
            call.done(step, response, body)
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        """Close the client: later sends raise ``ClientClosed``; the HTTP client is closed if omnisend made it."""
        self._closed = True
        if self._owns_http:
            import asyncio

            if self._loop is not None and self._loop.is_closed() and self._loop is not asyncio.get_running_loop():
                _wire.forget(self._http)  # its loop is gone: the pool cannot be closed through it
            else:
                await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _report_abandoned(running: Mapping[Future[list[SendOutcome]], int]) -> None:
    """Log the sends that were in flight when a sync ``send_many`` consumer left (never yielded)."""
    keys: list[str] = []
    for future in running:
        if future.cancelled() or not future.done() or future.exception() is not None:
            continue
        for outcome in future.result():
            error = outcome.error
            if error is None or error.accepted is None:  # sent, or may have been
                keys.append(_outcome_key(outcome))
    if keys:
        logger.warning(
            "send_many stopped early: %d message(s) in flight were sent or may have been, "
            "their outcomes were not yielded; idempotency keys: %s",
            len(keys),
            ", ".join(keys),
        )


def _outcome_key(outcome: SendOutcome) -> str:
    if outcome.result is not None:
        return str(outcome.result.idempotency_key)
    return str(outcome.error.idempotency_key if outcome.error is not None else None)


#: How long after the deadline the async backstop ends an attempt (the per-phase limits end it first).
_BACKSTOP = 0.05


async def _within(deadline: float, work: Awaitable[R]) -> R:
    """``await work``, cancelled at ``deadline`` (``time.monotonic()``) with ``TimeoutError``."""
    import asyncio

    left = deadline - time.monotonic()
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(left):
            return await work
    return await asyncio.wait_for(work, left)  # pragma: no cover - Python 3.10


def _advance(flow: Flow[Any], value: object, call: _Call) -> Any:
    """Hand a step's value to the flow; its next step, or its final value."""
    try:
        return flow.send(value)
    except StopIteration as stop:
        return stop.value
    except OmnisendError as exc:
        raise call._stamp(exc) from None


_EVENTS: Final = (_events.SendStarted, _events.AttemptFinished, _events.SendFinished, _events.RouteSkipped)


def _events_out(flow: Flow[Any], step: Any, call: _Call) -> Any:
    """Pass on the events a flow yields (a router's ``RouteSkipped``); its next step or value."""
    while isinstance(step, _EVENTS):
        call.emit(step)
        step = _advance(flow, None, call)
    return step


def _step_failed(error: OmnisendError, call: _Call) -> OmnisendError:
    """What a one-step flow raises for its step's error (as :func:`_throw` through the base flow)."""
    call.flush(None)
    return call._stamp(call.settle(error))


def _throw(flow: Flow[Any], error: OmnisendError, call: _Call) -> Any:
    """Hand a step's error to the flow; it may recover (next step / value) or let it through."""
    call.flush(None)
    try:
        return flow.throw(call.settle(error))
    except StopIteration as stop:
        return stop.value
    except OmnisendError as exc:
        raise call._stamp(exc) from exc.__cause__
