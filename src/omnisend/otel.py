"""OpenTelemetry for omnisend: one span and two metrics per logical send, from omnisend's own events.

::

    pip install 'omnisend[otel]'        # opentelemetry-api only; bring your own SDK and exporter

    from omnisend.otel import OpenTelemetry
    client = Client(Smsapi(token="..."), on_event=OpenTelemetry())

HTTP-level instrumentation cannot see what omnisend knows: a vendor error inside an HTTP 200 is a
failure, several attempts are one send, and the aiohttp transport is invisible to the httpx
instrumentation. This handler builds its telemetry from the client's events instead, so it is the
same on ``Client``, ``AsyncClient`` and every transport:

* one ``CLIENT`` span ``omnisend.send`` per ``send()`` (started on ``SendStarted``, ended on
  ``SendFinished``, parented to whatever span is current when the send starts) with
  ``omnisend.provider`` (the provider that took the message, through a router), ``omnisend.attempts``,
  ``omnisend.recipients.count``, ``omnisend.recipients.failed`` (partial failures),
  ``http.response.status_code`` (of the last attempt), and on failure ``error.type`` (the exception
  class name), ``omnisend.error.code`` (the vendor's code, as text), ``omnisend.error.accepted``
  (``False``: the vendor certainly did not take the message; ``True``; left out when unknown, as
  for ``DeliveryUnknown``) and the span status ``ERROR``. Each attempt is a span event
  ``omnisend.attempt``; a router's skipped route is a span event ``omnisend.route_skipped``.
* histogram ``omnisend.client.send.duration`` (seconds, per send) and counter
  ``omnisend.client.attempts`` (per HTTP attempt), both with ``omnisend.provider`` and, on
  failure, ``error.type``.

No phone number, message text, idempotency key, message id or credential is ever an attribute,
and the span status description is the class name and vendor code only (a vendor's message may
quote a number).
"""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"omnisend.otel needs the optional 'otel' extra ({exc.name or exc}): pip install 'omnisend[otel]'"
    ) from exc

from ._version import __version__
from .events import AttemptFinished, Event, RouteSkipped, SendFinished, SendStarted

if TYPE_CHECKING:
    from .errors import OmnisendError

__all__ = ["SPAN_NAME", "OpenTelemetry"]

SPAN_NAME: Final = "omnisend.send"
#: Sends started and not yet finished that are remembered (a send that never finishes, e.g. a
#: cancelled task, is ended as ``abandoned`` when the table is full).
MAX_OPEN: Final = 10_000

_current: contextvars.ContextVar[trace.Span | None] = contextvars.ContextVar("omnisend_otel_span", default=None)


def _error_attributes(error: OmnisendError) -> dict[str, Any]:
    attributes: dict[str, Any] = {"error.type": type(error).__name__}
    if error.code is not None:
        attributes["omnisend.error.code"] = str(error.code)
    if error.accepted is not None:
        attributes["omnisend.error.accepted"] = bool(error.accepted)
    return attributes


class OpenTelemetry:
    """An ``on_event`` handler exporting omnisend's sends as OpenTelemetry spans and metrics.

    Args:
        tracer_provider: the tracer provider to use; ``None`` uses the global one.
        meter_provider: the meter provider to use; ``None`` uses the global one.

    One instance may serve many clients, threads and tasks at once.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer = trace.get_tracer("omnisend", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("omnisend", __version__, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "omnisend.client.send.duration", unit="s", description="Duration of a logical send, retries included"
        )
        self.attempts = meter.create_counter(
            "omnisend.client.attempts", unit="{attempt}", description="HTTP attempts made by sends"
        )
        self._lock = threading.Lock()
        self._open: OrderedDict[tuple[str | None, int], list[trace.Span]] = OrderedDict()

    def __repr__(self) -> str:
        return f"OpenTelemetry(open_sends={len(self._open)})"

    def __call__(self, event: Event) -> None:
        if isinstance(event, AttemptFinished):
            self._attempt(event)
        elif isinstance(event, SendStarted):
            self._started(event)
        elif isinstance(event, SendFinished):
            self._finished(event)
        elif isinstance(event, RouteSkipped):
            span = _current.get()
            if span is not None and span.is_recording():
                span.add_event(
                    "omnisend.route_skipped", {"omnisend.route": event.provider, "omnisend.reason": event.reason}
                )

    # A send is found by its idempotency key and the thread it runs on: events of one send come
    # synchronously from the thread (or event-loop thread) running it, and two concurrent sends
    # with the same caller-given key on one thread are told apart by order (first in, first out).

    @staticmethod
    def _slot(key: str | None) -> tuple[str | None, int]:
        return key, threading.get_ident()

    def _started(self, event: SendStarted) -> None:
        span = self.tracer.start_span(
            SPAN_NAME,
            kind=SpanKind.CLIENT,
            attributes={"omnisend.provider": event.provider, "omnisend.recipients.count": event.recipients},
        )
        abandoned: list[trace.Span] = []
        with self._lock:
            self._open.setdefault(self._slot(event.idempotency_key), []).append(span)
            while len(self._open) > MAX_OPEN:
                abandoned.extend(self._open.popitem(last=False)[1])
        for old in abandoned:
            old.set_attribute("error.type", "abandoned")
            old.end()
        _current.set(span)

    def _take(self, key: str | None) -> trace.Span | None:
        slot = self._slot(key)
        with self._lock:
            spans = self._open.get(slot)
            if not spans:
                return None
            span = spans.pop(0)
            if not spans:
                del self._open[slot]
            return span

    def _peek(self, key: str | None) -> trace.Span | None:
        with self._lock:
            spans = self._open.get(self._slot(key))
            return spans[0] if spans else None

    def _attempt(self, event: AttemptFinished) -> None:
        attributes: dict[str, Any] = {"omnisend.provider": event.provider}
        if event.error is not None:
            attributes["error.type"] = type(event.error).__name__
        self.attempts.add(1, attributes)
        span = self._peek(event.idempotency_key)
        if span is None or not span.is_recording():
            return
        details: dict[str, Any] = {"omnisend.attempt": event.attempt, "omnisend.duration": event.duration}
        if event.http_status is not None:
            details["http.response.status_code"] = event.http_status
            span.set_attribute("http.response.status_code", event.http_status)
        if event.error is not None:
            details.update(_error_attributes(event.error))
        if event.retry_in is not None:
            details["omnisend.retry_in"] = event.retry_in
        span.add_event("omnisend.attempt", details)

    def _finished(self, event: SendFinished) -> None:
        provider = event.result.provider if event.result is not None else event.provider
        metric: dict[str, Any] = {"omnisend.provider": provider}
        if event.error is not None:
            metric["error.type"] = type(event.error).__name__
        self.duration.record(event.duration, metric)
        span = self._take(event.idempotency_key)
        if span is None:
            return
        if _current.get() is span:
            _current.set(None)
        span.set_attribute("omnisend.provider", provider)
        span.set_attribute("omnisend.attempts", event.attempts)
        if event.result is not None:
            failed = len(event.result.failed)
            if failed:
                span.set_attribute("omnisend.recipients.failed", failed)
            if event.result.route_errors:
                span.set_attribute("omnisend.routes.failed", len(event.result.route_errors))
        if event.error is not None:
            attributes = _error_attributes(event.error)
            span.set_attributes(attributes)
            code = attributes.get("omnisend.error.code")
            span.set_status(
                Status(StatusCode.ERROR, f"{attributes['error.type']}" + (f" (code {code})" if code else ""))
            )
        span.end()
