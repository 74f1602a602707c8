"""``Client`` and ``AsyncClient``: they own the HTTP client and perform the engine's I/O.

Everything but the I/O lives once in :mod:`omnisend._engine`: a sans-I/O driver that yields
"send this request" and "sleep this long" for every send, status lookup and flow, and the one
verdict per attempt. ``Client`` performs those commands with ``httpx.Client`` (or the
close-to-wire path, :mod:`omnisend._wire`) and threads; ``AsyncClient`` with asyncio.
"""

from __future__ import annotations

import enum
import inspect
import logging
import sys
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sized,
)
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, Union, cast

import httpx

from . import _wire
from . import events as _events
from ._answer import DEFAULT_MAX_RESPONSE_BYTES, current
from ._bulk import READ, AsyncJobs, Hand, Job, Order, Pipeline, SendOutcome, Start, Wait, job_plan, jobs, schedule
from ._engine import Call, Driver, Pause, Run, Send, drive
from ._inputs import new_key as _new_key
from ._text import sms_segments
from .errors import ClientClosed, ConfigurationError, OmnisendError, ValidationError
from .models import DeliveryReport, Message, SendResult
from .providers.base import Flow, Provider, Step
from .retry import NO_RETRY, RetryPolicy

logger = logging.getLogger("omnisend")

if TYPE_CHECKING:  # imported where used: ``import omnisend`` should not pay for asyncio and threads
    import asyncio
    import threading
    from concurrent.futures import Future

__all__ = ["NOT_GIVEN", "AsyncClient", "Client", "DEFAULT_MAX_RESPONSE_BYTES", "DEFAULT_TIMEOUT", "NotGiven"]

#: Connect fast, read patiently: a vendor that does not answer in 30 s is treated as ambiguous.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

R = TypeVar("R")


class NotGiven(enum.Enum):
    """The type of :data:`NOT_GIVEN`: "use the client's setting" (``None`` means "none at all")."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: An argument left out: ``send(message, timeout=NOT_GIVEN)`` uses the client's own timeout, while
#: ``timeout=None`` waits forever. Wrappers can pass it through unchanged.
NOT_GIVEN: Final = NotGiven.NOT_GIVEN
_Timeout = Union[httpx.Timeout, float, None]  # noqa: UP007 - a runtime alias on 3.10


_C = TypeVar("_C", bound="_BaseClient[Any]")
_H = TypeVar("_H", httpx.Client, httpx.AsyncClient)


class _BaseClient(Generic[_H]):
    """What ``Client`` and ``AsyncClient`` share: configuration and preparing calls (everything but I/O)."""

    def __init__(
        self,
        provider: Provider,
        *,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        http_client: _H | None = None,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
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
        self.retry = RetryPolicy() if retry is NOT_GIVEN else (retry or NO_RETRY)
        self.timeout = DEFAULT_TIMEOUT if timeout is NOT_GIVEN else _as_timeout(timeout)
        self.max_response_bytes = max_response_bytes
        self._closed = False
        self._owns_http = http_client is None
        self._http: _H = http_client if http_client is not None else self._make_http(self.timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider!r}, retry={self.retry!r})"

    @staticmethod
    def _make_http(timeout: httpx.Timeout | None) -> _H:
        """The HTTP client omnisend makes (and closes) when the caller brings none."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """True once ``close()``/``aclose()`` was called, or the ``http_client`` passed in was closed."""
        return self._is_closed()

    def _check_open(self) -> None:
        if self._is_closed():
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

    def _send_driver(
        self,
        message: Message,
        retry: RetryPolicy | None | NotGiven,
        timeout: _Timeout | NotGiven,
        stop: threading.Event | None = None,
    ) -> Driver[SendResult]:
        """The whole of one send as the engine's driver, with its events and its log record.

        ``stop``: a sync ``send_many``'s event, set when its consumer leaves (no new attempt).
        """
        call, driver = self._sending(message, retry, timeout)
        call.stop = stop
        try:
            result = yield from driver
        except OmnisendError as exc:
            self._send_failed(call, exc)
            raise
        except GeneratorExit:  # cancelled (asyncio, KeyboardInterrupt): its end is told all the same
            self._send_failed(call, call.cancelled())
            raise
        return self._send_done(call, result)

    def _job_driver(
        self,
        job: Job,
        retry: RetryPolicy | None | NotGiven,
        timeout: _Timeout | NotGiven,
        stop: threading.Event | None = None,
    ) -> Driver[list[SendOutcome]]:
        """One ``send_many`` job (its sends as :func:`omnisend._bulk.job_plan` says) as one driver."""
        plan = job_plan(job)
        message = next(plan)
        while True:
            answer: SendResult | OmnisendError
            try:
                answer = yield from self._send_driver(message, retry, timeout, stop)
            except OmnisendError as exc:
                answer = exc
            try:
                message = plan.send(answer)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _sending(
        self, message: Message, retry: RetryPolicy | None | NotGiven, timeout: _Timeout | NotGiven
    ) -> tuple[Call, Driver[SendResult]]:
        """Prepare a send: its call and the engine's driver for it (no I/O)."""
        if not isinstance(message, Message):
            raise ValidationError(
                f"send() takes an omnisend.Message, got {type(message).__name__}", provider=self.provider.name
            )
        self._check_open()
        key = message.idempotency_key or _new_key()
        call = Call(
            self.provider,
            idempotency_key=key,
            # A send_many batch of keyed messages carries its members' ids: a "duplicate" answer to
            # its first attempt means a run with the same keys sent it before, as for a caller's key.
            key_from_caller=message.idempotency_key is not None or message._recipient_ids is not None,
            timeout=self.timeout if timeout is NOT_GIVEN else _as_timeout(timeout),
            on_event=self.on_event,
            max_bytes=self.max_response_bytes,
        )
        if message.channel == "sms" and message.text is not None:
            call.segments = sms_segments(message.text).parts
        if self.on_event is not None:
            call.emit(_events.SendStarted(self.provider.name, key, len(message.recipients)))
        policy = self._policy(retry)
        try:
            work = self._work(message, key)
        except OmnisendError as exc:  # raised by send_step (bad input); a flow raises lazily
            raise self._send_failed(call, call.complete(exc)) from exc.__cause__
        return call, drive(call, work, policy, self._is_closed)

    def _work(self, message: Message, key: str) -> Flow[SendResult] | Step[SendResult]:
        """The provider's steps for ``message``: one plain request skips the generator around it."""
        provider = self.provider
        if (
            not message.metadata
            and type(provider).send_flow is Provider.send_flow
            and type(provider).exchange is Provider.exchange
            and len(message.recipients) <= provider.max_recipients
        ):
            return provider.send_step(message, idempotency_key=key)  # what the base flow does for one
        flow = provider.send_flow(message, idempotency_key=key)
        return _with_metadata(flow, message.metadata) if message.metadata else flow

    def _send_done(self, call: Call, result: SendResult) -> SendResult:
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

    def _send_failed(self, call: Call, error: OmnisendError) -> OmnisendError:
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

    def _looking_up(
        self,
        lookup: Callable[[Provider], Flow[R]],
        retry: RetryPolicy | None | NotGiven,
        timeout: _Timeout | NotGiven,
        provider: str | None,
    ) -> Driver[R]:
        """A status lookup (``lookup`` gives its flow on the provider asked) as the engine's driver."""
        self._check_open()
        target = self.provider if provider is None else self.provider.resolve(provider)
        call = Call(
            target,
            idempotency_key=None,
            key_from_caller=False,
            timeout=self.timeout if timeout is NOT_GIVEN else _as_timeout(timeout),
            on_event=self.on_event,
            max_bytes=self.max_response_bytes,
        )
        return drive(call, lookup(target), self._policy(retry), self._is_closed)

    def _is_closed(self) -> bool:
        return self._closed or bool(self._http.is_closed)

    def _policy(self, retry: RetryPolicy | None | NotGiven) -> RetryPolicy:
        return self.retry if retry is NOT_GIVEN else (retry or NO_RETRY)

    def _bulk(
        self,
        concurrency: int,
        order: Order,
        batch: bool,
        retry: RetryPolicy | None | NotGiven,
        timeout: _Timeout | NotGiven,
    ) -> _Bulk:
        """``send_many``'s settings, checked before anything is read or sent."""
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"send_many: concurrency must be a positive int, got {concurrency!r}")
        if order not in ("input", "completion"):
            raise ConfigurationError(f"send_many: order must be 'input' or 'completion', got {order!r}")
        self._check_open()
        return _Bulk(concurrency, batch, retry, timeout, self.provider, order)


def _since(call: Call) -> float:
    return time.perf_counter() - call.started


def _with_metadata(flow: Flow[SendResult], metadata: Mapping[str, str]) -> Flow[SendResult]:
    result = yield from flow
    return replace(result, metadata=dict(metadata)) if metadata else result


def _as_timeout(value: _Timeout) -> httpx.Timeout | None:
    if value is None or isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(value)


class Client(_BaseClient[httpx.Client]):
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

    _make_http = staticmethod(_wire.make_sync_http)

    def send(
        self,
        message: Message,
        *,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
    ) -> SendResult:
        """Send ``message``; returns the :class:`SendResult` or raises a typed error.

        Raises:
            ValidationError: the message is invalid for this provider (before any request).
            ProviderError: the vendor refused it (subclass says why).
            DeliveryUnknown: the vendor may have taken it; re-send with ``error.idempotency_key``
                only after checking.
        """
        return self._perform(self._send_driver(message, retry, timeout))

    def get_status(
        self,
        message_id: str,
        *,
        provider: str | None = None,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
    ) -> DeliveryReport:
        """Look up the current delivery status of ``message_id``.

        Through a router, ``provider`` names the route that took the message (``result.provider``).
        """
        return self._perform(self._looking_up(lambda p: p.status_flow(message_id), retry, timeout, provider))

    def get_statuses(
        self,
        message_ids: Iterable[str],
        *,
        provider: str | None = None,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
    ) -> list[DeliveryReport]:
        """Look up the statuses of ``message_ids``: one report per id, in order.

        Where the vendor takes several ids a lookup (Mobizon: 100) they are asked in batches
        (``Provider.status_batch``), else one by one; every id is checked before the first request
        (no ids: ``[]``, no request), and ``timeout`` bounds the whole. An id the vendor does not know reads ``UNKNOWN`` with a
        reason where the lookup is batched; one by one, its error is raised as in :meth:`get_status`.
        """
        ids = list(message_ids)
        return self._perform(self._looking_up(lambda p: p.statuses_flow(ids), retry, timeout, provider))

    def send_many(
        self,
        messages: Iterable[Message],
        *,
        concurrency: int = 8,
        order: Order = "input",
        batch: bool = True,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
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
        return self._send_many(messages, self._bulk(concurrency, order, batch, retry, timeout))

    def _send_many(self, messages: Iterable[Message], bulk: _Bulk) -> Iterator[SendOutcome]:
        import threading

        stop = threading.Event()  # set when the consumer leaves: no new send, no retry, no wait

        def run(job: Job) -> list[SendOutcome]:
            return self._perform(self._job_driver(job, bulk.retry, bulk.timeout, stop), stop)

        threads = _Threads(bulk.jobs(messages), run, bulk.concurrency, stop)
        yield from _never_suspending(_run_schedule(bulk.pipeline(), threads))

    def _perform(self, driver: Driver[R], stop: threading.Event | None = None) -> R:
        """Run the engine's driver: send what it asks to send, sleep what it asks to sleep.

        A sync ``send_many`` whose consumer left sets ``stop``: it wakes its sends from their waits.
        """
        default_sleep = time.sleep if stop is None else stop.wait
        run = Run(driver)
        try:
            for command in run:
                if type(command) is Send:
                    run.answer = self._exchange(command.request, command.call)
                else:
                    pause = cast(Pause, command)
                    (pause.sleep if pause.sleep is not None else default_sleep)(pause.seconds)
        finally:
            run.close()  # interrupted (KeyboardInterrupt): the driver tells how the send ended
        return run.value

    def _exchange(self, request: httpx.Request, call: Call) -> object:
        """Send ``request`` and read its answer within the size cap: the response, or what was raised."""
        current.deadline = call.deadline
        try:
            if self._owns_http and _wire.direct(self._http):  # close to the wire: see omnisend._wire
                response = _wire.send_direct(self._http, request)
            else:
                response = self._http.send(request, stream=True, follow_redirects=False)
            try:
                body = call.open(response)
                for chunk in cast(httpx.SyncByteStream, response.stream):
                    call.take(response, body, chunk)
                call.done(response, body)
            finally:
                response.close()
        except Exception as exc:  # noqa: BLE001 - handed to the driver, which makes it a typed error
            return exc
        finally:
            current.deadline = None
        return response

    def close(self) -> None:
        """Close the client: later sends raise ``ClientClosed``; the HTTP client is closed if omnisend made it."""
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_BaseClient[httpx.AsyncClient]):
    """The asyncio twin of :class:`Client`: same arguments, ``await`` on each call.

    Cancelling a pending ``send()`` stops it at once: no retry keeps running in the background.
    """

    _make_http = staticmethod(_wire.make_async_http)
    _loop: asyncio.AbstractEventLoop | None = None  # the event loop of the first call

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
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
    ) -> SendResult:
        """Send ``message``; see :meth:`Client.send`."""
        self._check_loop()
        return await self._perform(self._send_driver(message, retry, timeout))

    async def get_status(
        self,
        message_id: str,
        *,
        provider: str | None = None,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
    ) -> DeliveryReport:
        """Look up the current delivery status of ``message_id``; see :meth:`Client.get_status`."""
        self._check_loop()
        return await self._perform(self._looking_up(lambda p: p.status_flow(message_id), retry, timeout, provider))

    async def get_statuses(
        self,
        message_ids: Iterable[str],
        *,
        provider: str | None = None,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
    ) -> list[DeliveryReport]:
        """Look up the statuses of ``message_ids``, in order; see :meth:`Client.get_statuses`."""
        self._check_loop()
        ids = list(message_ids)
        return await self._perform(self._looking_up(lambda p: p.statuses_flow(ids), retry, timeout, provider))

    def send_many(
        self,
        messages: Iterable[Message] | AsyncIterable[Message],
        *,
        concurrency: int = 50,
        order: Order = "input",
        batch: bool = True,
        retry: RetryPolicy | None | NotGiven = NOT_GIVEN,
        timeout: _Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncIterator[SendOutcome]:
        """The asyncio :meth:`Client.send_many`: ``async for outcome in client.send_many(messages)``.

        Takes a sync or async iterable, read lazily by ``concurrency`` worker tasks; at most
        ``2 * concurrency`` messages are taken ahead of the consumer. Leaving the loop early (or
        cancelling it) cancels the sends still running. A failing input is raised after the
        outcomes of the sends already made, as in :meth:`Client.send_many`.
        """
        return self._send_many(messages, self._bulk(concurrency, order, batch, retry, timeout))

    async def _send_many(
        self, messages: Iterable[Message] | AsyncIterable[Message], bulk: _Bulk
    ) -> AsyncIterator[SendOutcome]:
        self._check_loop()

        async def run(job: Job) -> list[SendOutcome]:
            return await self._perform(self._job_driver(job, bulk.retry, bulk.timeout))

        # No more workers than messages when the input says how many it has.
        size_hint = len(messages) if isinstance(messages, Sized) else bulk.concurrency
        tasks = _Tasks(bulk.async_jobs(messages), run, max(1, min(bulk.concurrency, size_hint)))
        outcomes = _run_schedule(bulk.pipeline(), tasks)
        try:
            async for outcome in outcomes:
                yield outcome
        finally:
            await cast(AsyncGenerator[SendOutcome, None], outcomes).aclose()  # left early: wind the run down now

    async def _perform(self, driver: Driver[R]) -> R:
        """Run the engine's driver: send what it asks to send, sleep what it asks to sleep."""
        import asyncio

        run = Run(driver)
        try:
            for command in run:
                if type(command) is Send:
                    call = command.call
                    try:
                        if call.deadline is None:
                            run.answer = await self._exchange(command.request, call)
                        else:
                            # Each phase already waits at most the time left; this also ends a server
                            # that drips its headers byte by byte, a moment after the deadline.
                            run.answer = await _within(call.deadline + _BACKSTOP, self._exchange(command.request, call))
                    except Exception as exc:  # noqa: BLE001 - handed to the driver, which makes it a typed error
                        run.answer = exc
                else:
                    pause = cast(Pause, command)
                    slept = pause.sleep(pause.seconds) if pause.sleep is not None else asyncio.sleep(pause.seconds)
                    if inspect.isawaitable(slept):
                        await slept
        finally:
            run.close()  # cancelled: the driver tells how the send ended
        return run.value

    async def _exchange(self, request: httpx.Request, call: Call) -> httpx.Response:
        """Send ``request`` and read its answer within the size cap (the only async I/O of a call)."""
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            body = call.open(response)
            async for chunk in cast(httpx.AsyncByteStream, response.stream):
                call.take(response, body, chunk)
            call.done(response, body)
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


@dataclass(frozen=True, slots=True)
class _Bulk:
    """One ``send_many`` call's settings, checked (see ``_BaseClient._bulk``)."""

    concurrency: int
    batch: bool
    retry: RetryPolicy | None | NotGiven
    timeout: _Timeout | NotGiven
    provider: Provider
    order: Order

    def pipeline(self) -> Pipeline:
        return Pipeline(window=2 * self.concurrency, order=self.order)

    def jobs(self, messages: Iterable[Message]) -> Generator[Job, None, None]:
        provider = self.provider
        return jobs(messages, max_recipients=provider.max_recipients, batch=self.batch, keyed=provider.keyed_recipients)

    def async_jobs(self, messages: Iterable[Message] | AsyncIterable[Message]) -> AsyncJobs:
        provider = self.provider
        return AsyncJobs(
            messages, max_recipients=provider.max_recipients, batch=self.batch, keyed=provider.keyed_recipients
        )


async def _run_schedule(pipeline: Pipeline, workers: _Workers) -> AsyncIterator[SendOutcome]:
    """The one ``send_many`` loop: :func:`omnisend._bulk.schedule`'s commands, performed by ``workers``.

    ``AsyncClient`` runs it on asyncio tasks; ``Client`` on threads, through an interface whose
    awaits never suspend (:func:`_never_suspending`), so both clients share this loop, not a copy.
    """
    plan = schedule(pipeline)
    handing: deque[SendOutcome] = deque()  # outcomes taken from the pipeline, not yet yielded
    answer: object = None
    failure: Exception | None = None
    try:
        while True:
            try:
                command = plan.send(answer) if failure is None else plan.throw(failure)
            except StopIteration:
                return
            answer = failure = None
            if command is READ:
                try:
                    answer = await workers.read()
                except Exception as exc:  # noqa: BLE001 - the scheduler raises it after the outcomes due
                    failure = exc
            elif isinstance(command, Start):
                workers.start(command)
            elif isinstance(command, Hand):
                handing.extend(command.outcomes)
                while handing:
                    yield handing.popleft()
            else:
                answer = await workers.ended(cast(Wait, command).number)
    finally:
        plan.close()
        unseen = await workers.close()
        _report_abandoned([*handing, *pipeline.unyielded(), *unseen])


class _Workers(Protocol):
    """The I/O of one ``send_many`` run: reading the input, sending jobs, waiting for them."""

    async def read(self) -> Job | None: ...

    def start(self, start: Start) -> None: ...

    async def ended(self, number: int | None) -> list[tuple[int, list[SendOutcome]]]:
        """Wait until job ``number`` (or any, ``None``) is done: the jobs done by then; a job's bug is raised."""

    async def close(self) -> list[SendOutcome]:
        """Stop (nothing new starts), wind down, and give the outcomes of jobs done but never handed over."""


class _Threads:
    """``Client``'s send_many I/O: a thread pool. Its awaits never suspend (see :func:`_never_suspending`)."""

    def __init__(
        self,
        source: Generator[Job, None, None],
        run: Callable[[Job], list[SendOutcome]],
        concurrency: int,
        stop: threading.Event,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.source, self.run, self.stop = source, run, stop
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="omnisend-send")
        self.running: dict[Future[list[SendOutcome]], int] = {}
        self.by_number: dict[int, Future[list[SendOutcome]]] = {}

    async def read(self) -> Job | None:
        return next(self.source, None)

    def start(self, start: Start) -> None:
        future = self.pool.submit(self.run, start.job)
        self.running[future] = start.number
        self.by_number[start.number] = future

    async def ended(self, number: int | None) -> list[tuple[int, list[SendOutcome]]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        due = (self.by_number[number],) if number is not None else self.running
        done, _ = wait(due, return_when=FIRST_COMPLETED)
        ended = []
        for future in done:
            del self.by_number[self.running[future]]
            ended.append((self.running.pop(future), future.result()))
        return ended

    async def close(self) -> list[SendOutcome]:
        self.stop.set()
        for future in self.running:
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)  # the sends in flight end their current attempt
        self.source.close()
        done = [f for f in self.running if f.done() and not f.cancelled() and f.exception() is None]
        return [outcome for future in done for outcome in future.result()]


class _Tasks:
    """``AsyncClient``'s send_many I/O: a fixed set of asyncio workers, each sending one job after
    another (a task per message would cost a task's set-up, and its garbage-collector churn, on
    every message)."""

    def __init__(self, source: AsyncJobs, run: Callable[[Job], Awaitable[list[SendOutcome]]], workers: int) -> None:
        import asyncio

        self.source, self.run = source, run
        self.starts: asyncio.Queue[Start] = asyncio.Queue()
        self.ends: asyncio.Queue[tuple[int, list[SendOutcome] | Exception]] = asyncio.Queue()
        self.finished: dict[int, list[SendOutcome]] = {}  # done jobs not yet handed to the scheduler
        self.workers = [asyncio.ensure_future(self._work()) for _ in range(workers)]

    async def _work(self) -> None:
        while True:
            start = await self.starts.get()
            try:
                outcome: list[SendOutcome] | Exception = await self.run(start.job)
            except Exception as exc:  # noqa: BLE001 - a bug, not a send error: the consumer raises it
                outcome = exc
            self.ends.put_nowait((start.number, outcome))

    async def read(self) -> Job | None:
        return await self.source.next()

    def start(self, start: Start) -> None:
        self.starts.put_nowait(start)

    async def ended(self, number: int | None) -> list[tuple[int, list[SendOutcome]]]:
        finished = self.finished
        while not finished or (number is not None and number not in finished):
            self._collect([await self.ends.get()])
        if number is not None:
            return [(number, finished.pop(number))]
        every = list(finished.items())
        finished.clear()
        return every

    def _collect(self, got: list[tuple[int, list[SendOutcome] | Exception]]) -> None:
        while not self.ends.empty():
            got.append(self.ends.get_nowait())
        for number, outcome in got:
            if isinstance(outcome, Exception):
                raise outcome
            self.finished[number] = outcome

    async def close(self) -> list[SendOutcome]:
        import asyncio

        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        await self.source.aclose()
        while not self.ends.empty():
            number, outcome = self.ends.get_nowait()
            if not isinstance(outcome, Exception):  # a job's bug is moot now: its outcomes are gone
                self.finished[number] = outcome
        return [outcome for outcomes in self.finished.values() for outcome in outcomes]


def _never_suspending(outcomes: AsyncIterator[SendOutcome]) -> Iterator[SendOutcome]:
    """Iterate ``outcomes`` without an event loop: every await inside it completes at once (it only
    calls blocking functions), so each step runs to its next value in one ``send``."""
    try:
        while True:
            try:
                outcomes.__anext__().send(None)  # type: ignore[attr-defined]
            except StopIteration as step:
                yield step.value
                continue
            except StopAsyncIteration:
                return
            raise RuntimeError("send_many's thread scheduler suspended: it must never wait on an event loop")
    finally:
        closing = cast(AsyncGenerator[SendOutcome, None], outcomes).aclose()
        try:
            closing.send(None)
        except StopIteration:
            pass


def _report_abandoned(outcomes: Iterable[SendOutcome]) -> None:
    """Log the sends whose outcomes a ``send_many`` consumer that left early never got: those that
    were sent, or may have been, with their keys (re-send them only after checking)."""
    keys = [_outcome_key(o) for o in outcomes if o.error is None or o.error.accepted is not False]
    if keys:
        logger.warning(
            "send_many stopped early: %d message(s) were sent or may have been, "
            "their outcomes were not yielded; idempotency keys: %s",
            len(keys),
            ", ".join(keys),
        )


def _outcome_key(outcome: SendOutcome) -> str:
    if outcome.result is not None:
        return str(outcome.result.idempotency_key)
    return str(outcome.error.idempotency_key if outcome.error is not None else None)


#: How long after the deadline the async backstop ends an attempt (the per-phase limits end it first).
_BACKSTOP = 0.25


async def _within(deadline: float, work: Awaitable[R]) -> R:
    """``await work``, cancelled at ``deadline`` (``time.monotonic()``) with ``TimeoutError``."""
    import asyncio

    left = deadline - time.monotonic()
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(left):
            return await work
    return await asyncio.wait_for(work, left)  # pragma: no cover - Python 3.10
