"""Many providers behind one client: failover, weighted and per-country routing that never sends twice.

A router **is a provider**: ``Client(Failover(a, b))`` sends, retries, ``send_many``\\ s and nests
exactly as ``Client(a)`` does. Its send flow hands the message to a route's own flow (so every
request of that route is retried by the client's policy), and when that flow ends in an error
it decides, from the error alone, whether the next route may take the message::

    next route  <=>  error.accepted is False                  (the vendor certainly did not take it)
                     and type(error) is one of FAILOVER_SAFE  (the fault is the provider's, not the message's)
                     and no step of that route may have landed

``FAILOVER_SAFE`` is ``AuthError``, ``PermissionDenied``, ``InsufficientBalance``, ``RateLimited``,
``ServiceUnavailable``, ``TransportError`` (never its subclass ``DeliveryUnknown``) and ``Unsupported``.

* :class:`Route` wraps a provider with per-route message overrides (``sender``, ``options``), a
  ``weight`` and a ``name``; a bare provider is accepted wherever a route is.
* :class:`Failover` tries its routes in order; :class:`RoundRobin` starts on a route chosen by the
  hash of the idempotency key over the weights (so the same key always starts on the same
  route) and fails over to the others in turn; :class:`ByCountry` sends each recipient through
  the route of its country, with ``default`` for the others and as the fallback.
* :class:`Breaker` keeps one circuit per route in a :class:`BreakerStore` (in-process by default):
  it opens at once on ``AuthError``/``PermissionDenied``/``InsufficientBalance`` and after
  ``failures`` consecutive provider-level failures otherwise; an open route is skipped without a
  request until ``cooldown`` (or a longer ``RateLimited.retry_after``) has passed, then one send
  probes it (half-open).

The result says what happened: ``result.provider`` is the route that took the message,
``result.route_errors`` the errors of the routes tried before it; when every route fails, the
last error is raised with ``.route_errors`` holding the earlier ones. See ``docs/routing.md``.
"""

from __future__ import annotations

import abc
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from ._countries import COUNTRIES, country_of
from .errors import (
    AuthError,
    ConfigurationError,
    DeliveryUnknown,
    InsufficientBalance,
    OmnisendError,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    Unsupported,
)
from .events import RouteSkipped
from .models import DeliveryReport, DeliveryStatus, Message, RecipientResult, SendResult
from .providers.base import ErrorTable, Flow, Provider, Repeat, StatusTable, Step

__all__ = [
    "FAILOVER_SAFE",
    "Breaker",
    "BreakerState",
    "BreakerStore",
    "ByCountry",
    "Failover",
    "MemoryBreakerStore",
    "RoundRobin",
    "Route",
    "Router",
    "fails_over",
]

#: Errors that say the provider (not the message) is failing: they count towards opening the breaker.
PROVIDER_FAULTS: Final[tuple[type[OmnisendError], ...]] = (
    AuthError,
    PermissionDenied,
    InsufficientBalance,
    RateLimited,
    ServiceUnavailable,
    TransportError,
)

#: The error classes a router fails over on (when ``accepted is False``): the provider's faults,
#: and ``Unsupported`` (this provider cannot do what the message asks; another may).
FAILOVER_SAFE: Final[tuple[type[OmnisendError], ...]] = (*PROVIDER_FAULTS, Unsupported)

#: Errors that open a route's breaker at once: retrying that account is pointless until someone acts.
TRIPS_AT_ONCE: Final[tuple[type[OmnisendError], ...]] = (AuthError, PermissionDenied, InsufficientBalance)


def fails_over(error: OmnisendError) -> bool:
    """Whether a router may give the message to its next route after ``error``.

    Only when the vendor certainly did not take it (``accepted is False``) and the fault is the
    provider's (:data:`FAILOVER_SAFE`); never on :class:`~omnisend.DeliveryUnknown`, never on a
    message-level error (``InvalidRecipient``, ``TemplateError``, other ``ValidationError``).
    """
    return error.accepted is False and isinstance(error, FAILOVER_SAFE) and not isinstance(error, DeliveryUnknown)


# -- routes --------------------------------------------------------------------------------------


class Route:
    """A provider as one route of a router, with what the router changes in each message for it.

    Args:
        provider: the vendor adapter (or another router).
        sender: the sender this route sends with, replacing the message's (vendors differ: an
            alphanumeric name on one, a number on another); ``""`` sends without one (the
            account's default); ``None`` keeps the message's.
        weight: the route's share of first attempts in a :class:`RoundRobin` (``0``: only as a
            fallback); ignored by the other routers.
        options: vendor-only request fields merged over the message's ``options``.
        name: what ``result.provider``, ``get_status(provider=...)`` and the breaker call this
            route; the provider's id by default. Two routes to different accounts of one vendor
            need names of their own.
    """

    __slots__ = ("name", "options", "provider", "sender", "weight")

    def __init__(
        self,
        provider: Provider,
        *,
        sender: str | None = None,
        weight: float = 1,
        options: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(provider, Provider):
            raise ConfigurationError(f"Route needs a provider instance, got {type(provider).__name__}")
        if sender is not None and (not isinstance(sender, str) or (sender and not sender.strip())):
            raise ConfigurationError(f"Route sender must be a non-blank string or '' (no sender), got {sender!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ConfigurationError(f"Route weight must be a finite number >= 0, got {weight!r}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigurationError(f"Route name must be a non-empty string, got {name!r}")
        self.provider = provider
        self.sender = sender
        self.weight = float(weight)
        self.options: dict[str, Any] = dict(options or {})
        self.name: str = name or provider.name

    def message_for(self, message: Message) -> Message:
        """``message`` as this route sends it (its sender and options applied)."""
        update: dict[str, Any] = {}
        if self.sender is not None and message.sender != (self.sender or None):
            update["sender"] = self.sender or None
        if self.options:
            update["options"] = {**message.options, **self.options}
        return message.model_copy(update=update) if update else message

    def __repr__(self) -> str:
        extra = "".join(
            f", {key}={value!r}"
            for key, value in (("sender", self.sender), ("options", self.options or None))
            if value is not None
        )
        weight = f", weight={self.weight:g}" if self.weight != 1 else ""
        name = f", name={self.name!r}" if self.name != self.provider.name else ""
        return f"Route({self.provider!r}{extra}{weight}{name})"


def _as_route(value: Route | Provider) -> Route:
    if isinstance(value, Route):
        return value
    if isinstance(value, Provider):
        return Route(value)
    raise ConfigurationError(f"a router takes Route(...) or provider instances, got {type(value).__name__}")


# -- the circuit breaker -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One route's circuit as a :class:`BreakerStore` keeps it."""

    failures: int = 0
    """Consecutive provider-level failures."""
    open_until: float | None = None
    """While the clock is below it the route is skipped; past it, one probe may go (half-open).
    ``None``: closed."""
    error: OmnisendError | None = None
    """The error that opened the circuit (kept so a skipped route can say why)."""

    def is_open(self, now: float) -> bool:
        """Skipped without a request at ``now`` (open, not yet half-open)."""
        return self.open_until is not None and now < self.open_until

    @property
    def closed(self) -> bool:
        return self.open_until is None and self.failures == 0


class BreakerStore(abc.ABC):
    """Where breaker state lives: four operations on one route's state, each atomic on its own.

    The default, :class:`MemoryBreakerStore`, keeps it in the process; a store shared by several
    processes (Redis for Celery workers) implements the same four methods over its keys. ``key``
    is the route's name; ``now`` is wall-clock seconds (``time.time()``), which every process
    shares. The state must survive ``pickle`` (errors do), so a shared store can serialize it.
    """

    @abc.abstractmethod
    def get(self, key: str) -> BreakerState:
        """The current state (a closed ``BreakerState()`` when nothing is stored)."""

    @abc.abstractmethod
    def record_failure(
        self, key: str, *, error: OmnisendError, now: float, threshold: int, open_for: float, trip: bool
    ) -> BreakerState:
        """Count a provider-level failure; open the circuit until ``now + open_for`` when ``trip``
        or when the count reaches ``threshold`` (a failed probe re-opens it at once). Returns the new state."""

    @abc.abstractmethod
    def record_success(self, key: str) -> None:
        """The route answered: close the circuit and clear the count."""

    @abc.abstractmethod
    def claim_probe(self, key: str, *, now: float, lease: float) -> bool:
        """Half-open: let one caller probe a circuit whose ``open_until`` has passed.

        Atomically, if ``open_until <= now``, move it to ``now + lease`` (other callers keep
        skipping the route) and return True; otherwise return False.
        """


class MemoryBreakerStore(BreakerStore):
    """Breaker state in this process (a dict and a lock); what a router uses unless given a store."""

    def __init__(self) -> None:
        self._states: dict[str, BreakerState] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> BreakerState:
        return self._states.get(key) or _CLOSED

    def record_failure(
        self, key: str, *, error: OmnisendError, now: float, threshold: int, open_for: float, trip: bool
    ) -> BreakerState:
        with self._lock:
            state = self._states.get(key) or _CLOSED
            failures = state.failures + 1
            if trip or failures >= threshold:
                state = BreakerState(failures, now + open_for, error)
            else:
                state = BreakerState(failures, state.open_until, state.error)
            self._states[key] = state
            return state

    def record_success(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)

    def claim_probe(self, key: str, *, now: float, lease: float) -> bool:
        with self._lock:
            state = self._states.get(key)
            if state is None or state.open_until is None or now < state.open_until:
                return False
            self._states[key] = replace(state, open_until=now + lease)
            return True


_CLOSED: Final = BreakerState()


class Breaker:
    """When a router stops sending through a route for a while (one circuit per route).

    Args:
        failures: consecutive provider-level failures (``RateLimited``, ``ServiceUnavailable``,
            ``TransportError``, ``DeliveryUnknown``) that open the circuit; ``AuthError``,
            ``PermissionDenied`` and ``InsufficientBalance`` open it at once.
        cooldown: seconds an open circuit skips its route (a longer ``RateLimited.retry_after``
            wins); then one send probes it: success closes it, failure opens it again.
        store: where the state lives; by default each router keeps its own in-process state.
            Give routers (or processes) one shared store to share circuits.
        clock: wall-clock seconds (``time.time``; tests pass a fake one).
    """

    def __init__(
        self,
        failures: int = 5,
        cooldown: float = 30.0,
        *,
        store: BreakerStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigurationError(f"Breaker failures must be a positive int, got {failures!r}")
        if not isinstance(cooldown, (int, float)) or not math.isfinite(cooldown) or cooldown < 0:
            raise ConfigurationError(f"Breaker cooldown must be a finite number >= 0, got {cooldown!r}")
        if store is not None and not isinstance(store, BreakerStore):
            raise ConfigurationError(f"Breaker store must be a BreakerStore, got {type(store).__name__}")
        self.failures = failures
        self.cooldown = float(cooldown)
        self.store = store
        self.clock = clock

    def __repr__(self) -> str:
        return f"Breaker(failures={self.failures}, cooldown={self.cooldown:g})"


# -- routers -------------------------------------------------------------------------------------


class _Watch:
    """What a router saw of one route's flow: whether any of its steps may have landed."""

    __slots__ = ("landed",)

    def __init__(self) -> None:
        self.landed = False


def _watched(flow: Flow[Any], watch: _Watch, name: str) -> Flow[Any]:
    """Drive a route's flow inside the router's, naming its steps and noting what may have landed.

    A step that returned a ``SendResult``, or failed with an error that leaves the outcome open,
    may have put a message out: after it the router never gives the message to another route.
    """
    try:
        step = next(flow)
        while True:
            if isinstance(step, Step) and step.provider is None:
                step = replace(step, provider=name)
            try:
                value = yield step
            except OmnisendError as exc:
                if exc.accepted is not False and not (isinstance(step, Step) and step.repeat is Repeat.READ):
                    watch.landed = True
                step = flow.throw(exc)
            else:
                if isinstance(value, SendResult):
                    watch.landed = True
                step = flow.send(value)
    except StopIteration as stop:
        return stop.value
    finally:
        flow.close()


def _tell(event: RouteSkipped) -> Flow[None]:
    """Hand ``event`` to the client, which gives it to ``on_event`` and resumes the flow with ``None``."""
    yield event  # type: ignore[misc]


def _with_route_errors(error: OmnisendError, errors: Sequence[OmnisendError]) -> OmnisendError:
    """A new error like ``error`` (same class and fields), carrying ``route_errors``; ``error`` is untouched."""
    if not errors:
        return error
    return error.evolve(route_errors=tuple(errors))


def _unsent_status(error: OmnisendError) -> DeliveryStatus:
    """The status of a recipient a send ended for with ``error``: rejected when the vendor certainly
    did not take it, else unknown."""
    return DeliveryStatus.REJECTED if error.accepted is False else DeliveryStatus.UNKNOWN


def _addressed(message: Message, numbers: list[str]) -> Message:
    """``message`` sent to ``numbers`` only."""
    return message.model_copy(update={"to": numbers if len(numbers) > 1 else numbers[0]})


def _named(result: SendResult, route: Route) -> SendResult:
    """``result`` under its route's name (a nested router's result keeps the names of its own routes)."""
    if isinstance(route.provider, Router) or result.provider == route.name:
        return result
    return replace(result, provider=route.name)


class _Progress:
    """What a send over a router's routes has so far: the recipients still to send, the results of
    the routes that took some, each recipient's outcome, and the errors met on the way."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.pending = message
        self.errors: list[OmnisendError] = []
        self.taken: list[SendResult] = []
        self.settled: dict[str, tuple[RecipientResult, str]] = {}  # number -> (its outcome, the route's name)

    def took(self, result: SendResult) -> list[RecipientResult]:
        """Keep a route's result; returns the recipients it refused for a reason that fails over."""
        self.taken.append(result)
        self.settled.update((r.to, (r, result.provider)) for r in result.recipients)
        return [r for r in result.recipients if r.error is not None and fails_over(r.error)]

    def move_on(self, moving: list[RecipientResult]) -> OmnisendError:
        """Send ``moving`` (refused by the last route) to the next; returns the first one's error."""
        first = moving[0].error
        assert first is not None
        self.errors.append(first)
        self.pending = _addressed(self.pending, [r.to for r in moving])
        return first

    def settle(self, error: OmnisendError, route: str) -> None:
        """The recipients still pending end with ``error`` (beside those earlier routes took)."""
        status = _unsent_status(error)
        self.settled.update({to: (RecipientResult(to, None, status, error), route) for to in self.pending.recipients})
        self.errors.append(error)

    def result(self, key: str, *, owner: str) -> SendResult:
        """The send's result; the last error (with the others as ``route_errors``) when no route took it."""
        if not self.taken:
            if not self.errors:  # pragma: no cover - plan() never gives an empty list of routes
                raise ConfigurationError(f"{owner}: no route to try")
            raise _with_route_errors(self.errors[-1], self.errors[:-1])
        only = self.taken[0]
        if len(self.taken) == 1 and all(self.settled[r.to][0] is r for r in only.recipients):
            return replace(only, route_errors=tuple(self.errors)) if self.errors else only
        outcomes = [r if r.provider is not None else replace(r, provider=name) for r, name in self.settled.values()]
        return _merge(self.message, key, self.taken, outcomes, self.errors)


class Router(Provider):
    """Base of the routers: a provider that sends each message through one of its routes.

    Subclasses say which routes a message may take, and in which order (:meth:`plan`); the
    failover rule, the breaker, the overrides and the results are shared.
    """

    name: ClassVar[str] = "router"
    display_name: ClassVar[str] = "Router"
    default_base_url: ClassVar[str] = "http://router.invalid"
    errors: ClassVar[ErrorTable] = ErrorTable({})
    statuses: ClassVar[StatusTable] = StatusTable({})

    def __init__(self, routes: Sequence[Route | Provider], *, breaker: Breaker | None = None) -> None:
        self.routes: tuple[Route, ...] = tuple(_as_route(r) for r in routes)
        if not self.routes:
            raise ConfigurationError(f"{type(self).__name__} needs at least one route")
        if breaker is not None and not isinstance(breaker, Breaker):
            raise ConfigurationError(f"breaker must be a Breaker, got {type(breaker).__name__}")
        self.breaker = breaker or Breaker()
        self.store: BreakerStore = self.breaker.store or MemoryBreakerStore()
        self.base_url = ""
        self._leaves = _leaves(self.routes)
        providers = [route.provider for route in self.routes]
        # What the client and send_many read, as the routes allow it.
        self.channels = frozenset().union(*(p.channels for p in providers))  # type: ignore[misc]
        self.max_recipients = max(p.max_recipients for p in providers)
        self.deduplicates = all(p.deduplicates for p in providers)  # type: ignore[misc]
        self.status_lookup = any(p.status_lookup for p in providers)  # type: ignore[misc]

    def __repr__(self) -> str:
        routes = ", ".join(map(repr, self.routes))
        return f"{type(self).__name__}({routes})"

    # -- what subclasses decide ----------------------------------------------------------------

    @abc.abstractmethod
    def plan(self, message: Message, idempotency_key: str) -> list[tuple[Message, list[Route]]]:
        """Split ``message`` into parts, each with the routes to try for it, in order."""

    # -- the provider contract --------------------------------------------------------------------

    def build_request(self, message: Message, *, idempotency_key: str) -> Any:
        raise ConfigurationError(f"{type(self).__name__} builds no request of its own: send it through a Client")

    def parse_response(
        self, response: Any, *, message: Message | None = None, idempotency_key: str | None = None
    ) -> Any:
        raise ConfigurationError(f"{type(self).__name__} reads no answer of its own: send it through a Client")

    def send_step(self, message: Message, *, idempotency_key: str) -> Step[SendResult]:
        raise ConfigurationError(f"{type(self).__name__} sends in a flow (send_flow), not one step")

    def send_flow(self, message: Message, *, idempotency_key: str) -> Flow[SendResult]:
        parts = self.plan(message, idempotency_key)
        if len(parts) == 1:
            part, routes = parts[0]
            result: SendResult = yield from self._send_over(part, idempotency_key, routes)
            return result
        # Parts of one message going different ways (by country): each gets a key of its own, so
        # two parts reaching one de-duplicating account are not taken for one message.
        results: list[SendResult] = []
        failed: list[RecipientResult] = []
        first_error: OmnisendError | None = None
        for number, (part, routes) in enumerate(parts, 1):
            try:
                results.append((yield from self._send_over(part, f"{idempotency_key}.{number}", routes)))
            except OmnisendError as exc:
                first_error = first_error or exc
                status = _unsent_status(exc)
                failed += [RecipientResult(to, None, status, exc, exc.provider) for to in part.recipients]
        if not results:
            assert first_error is not None
            raise first_error
        return _merge(message, idempotency_key, results, failed, [e for r in results for e in r.route_errors])

    def resolve(self, name: str) -> Provider:
        """The provider of the route called ``name`` (searching nested routers too)."""
        found = self._leaves.get(name)
        if found is None:
            known = ", ".join(sorted(self._leaves))
            raise ConfigurationError(
                f"{type(self).__name__} has no route named {name!r} (routes: {known})", provider=name
            )
        return found

    def _only_leaf(self, what: str) -> Provider:
        providers = {id(p): p for p in self._leaves.values()}
        if len(providers) == 1:
            return next(iter(providers.values()))
        raise ConfigurationError(
            f"{type(self).__name__}: say which route for {what}: provider=NAME (the result's .provider; "
            f"routes: {', '.join(sorted(self._leaves))})"
        )

    def status_flow(self, message_id: str) -> Flow[DeliveryReport]:
        """Through the one route there is; with several, ``Client.get_status(..., provider=NAME)``."""
        provider = self._only_leaf("a status lookup")
        report: DeliveryReport = yield from _watched(provider.status_flow(message_id), _Watch(), provider.name)
        return report

    def statuses_flow(self, message_ids: Sequence[str]) -> Flow[list[DeliveryReport]]:
        """Through the one route there is (batched as it batches); with several, ``provider=NAME``."""
        provider = self._only_leaf("a status lookup")
        reports: list[DeliveryReport] = yield from _watched(
            provider.statuses_flow(message_ids), _Watch(), provider.name
        )
        return reports

    def parse_webhook(
        self,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        provider: str | None = None,
        **extra: Any,
    ) -> list[DeliveryReport]:
        """A delivery-report callback of the route ``provider`` names (required with several routes)."""
        target = self.resolve(provider) if provider is not None else self._only_leaf("a webhook")
        return target.parse_webhook(body=body, headers=headers, query=query, **extra)

    def breaker_state(self, name: str) -> BreakerState:
        """The breaker state of the route called ``name`` (one of this router's own routes)."""
        if not any(route.name == name for route in self.routes):
            raise ConfigurationError(f"{type(self).__name__} has no route named {name!r}")
        return self.store.get(name)

    # -- the engine --------------------------------------------------------------------------------

    def _send_over(self, message: Message, key: str, routes: Sequence[Route]) -> Flow[SendResult]:
        """Send ``message`` through the first route that takes it; recipients a route refused for a
        failover-safe reason go on to the next. Raises the last error, with ``route_errors``.

        The failover rule: the next route gets the message (or some of its recipients) only when
        this one certainly did not take it for a reason that is the provider's (:func:`fails_over`),
        and never once any step of this route may have landed."""
        progress = _Progress(message)
        for index, route in enumerate(routes):
            state = self.store.get(route.name)  # one read per route and send (a shared store: one round trip)
            skipped = self._skip(route, state)
            if skipped is not None:
                progress.errors.append(skipped)
                yield from _tell(RouteSkipped(route.name, f"circuit open after {type(skipped).__name__}"))
                continue
            watch = _Watch()
            try:
                flow = route.provider.send_flow(route.message_for(progress.pending), idempotency_key=key)
                result: SendResult = yield from _watched(flow, watch, route.provider.name)
            except OmnisendError as exc:
                self._record(route, exc, state)
                if watch.landed or not fails_over(exc):  # it may be out, or no other route does better
                    if not progress.taken:
                        raise _with_route_errors(exc, progress.errors)  # noqa: B904 - the route's own error, as it is
                    progress.settle(exc, route.name)  # earlier routes took some recipients: these end here
                    break
                progress.errors.append(exc)
                yield from _tell(RouteSkipped(route.name, f"failed over after {type(exc).__name__}"))
                continue
            self._record(route, None, state)
            moving = progress.took(_named(result, route))
            if not moving or index == len(routes) - 1:
                break
            # Recipients this route refused for the provider's reasons go on to the next route.
            cause = progress.move_on(moving)
            yield from _tell(
                RouteSkipped(route.name, f"{len(moving)} recipient(s) moved on after {type(cause).__name__}")
            )
        return progress.result(key, owner=type(self).__name__)

    def _skip(self, route: Route, state: BreakerState) -> OmnisendError | None:
        """The error to record when ``route``'s circuit is open (it is skipped); ``None`` to send."""
        if state.open_until is None:
            return None
        now = self.breaker.clock()
        if not state.is_open(now) and self.store.claim_probe(route.name, now=now, lease=self.breaker.cooldown):
            return None  # half-open: this send probes the route
        cause = state.error
        if cause is None or isinstance(cause, DeliveryUnknown) or not isinstance(cause, PROVIDER_FAULTS):
            # Nothing was sent this time: never a class that says "it may be out" (DeliveryUnknown).
            after = f" after {type(cause).__name__}: {cause.message}" if cause is not None else ""
            return ServiceUnavailable(
                f"skipped, circuit open{after}",
                provider=route.provider.name,
                accepted=False,
                retryable=False,
                attempts=0,
            )
        return cause.evolve(
            message=f"skipped, circuit open after: {cause.message}",
            accepted=False,
            attempts=0,
            idempotency_key=None,
            route_errors=(),
        )

    def _record(self, route: Route, error: OmnisendError | None, state: BreakerState) -> None:
        """Tell the store how the route did (``state``: what it held before the send; a closed
        circuit that answered costs no write)."""
        store = self.store
        if error is None:
            if not state.closed:
                store.record_success(route.name)
            return
        if isinstance(error, PROVIDER_FAULTS):
            hint = getattr(error, "retry_after", None) if isinstance(error, RateLimited) else None
            store.record_failure(
                route.name,
                error=error,
                now=self.breaker.clock(),
                threshold=self.breaker.failures,
                open_for=max(self.breaker.cooldown, hint or 0.0),
                trip=isinstance(error, TRIPS_AT_ONCE),
            )
        elif error.http_status is not None or error.code is not None:
            # The vendor answered about the message (an invalid number...): the route is up.
            if not state.closed:
                store.record_success(route.name)


def _leaves(routes: Sequence[Route]) -> dict[str, Provider]:
    """Route name → provider for every vendor reachable through ``routes`` (nested routers included)."""
    found: dict[str, Provider] = {}

    def add(name: str, provider: Provider) -> None:
        seen = found.setdefault(name, provider)
        if seen is not provider:
            raise ConfigurationError(
                f"two routes are named {name!r}: give each its own, e.g. Route({type(provider).__name__}(...), name='{name}-2')"
            )

    for route in routes:
        if isinstance(route.provider, Router):
            for name, provider in route.provider._leaves.items():
                add(name, provider)
        else:
            add(route.name, route.provider)
    return found


def _merge(
    message: Message,
    key: str,
    results: Sequence[SendResult],
    others: Sequence[RecipientResult],
    errors: Sequence[OmnisendError],
) -> SendResult:
    """One result for a message that went out through several routes (each recipient names its own)."""
    by_number: dict[str, RecipientResult] = {}
    for result in results:
        for recipient in result.recipients:
            by_number[recipient.to] = (
                recipient if recipient.provider is not None else replace(recipient, provider=result.provider)
            )
    for recipient in others:
        by_number[recipient.to] = recipient
    recipients = tuple(by_number[to] for to in message.recipients if to in by_number)
    first = next((r for r in recipients if r.ok), recipients[0])
    lead = next((r for r in results if r.provider == first.provider), results[0])
    return replace(
        lead,
        provider=first.provider or lead.provider,
        message_id=first.message_id,
        status=first.status,
        recipients=recipients,
        idempotency_key=key,
        raw=[r.raw for r in results],
        deduplicated=all(r.deduplicated for r in results),
        route_errors=tuple(errors),
    )


class Failover(Router):
    """Try the routes in order: the next only when the previous certainly did not take the message.

    Example:
        >>> Failover(Route(Smsapi(token="..."), sender="Shop"), Clickatell(api_key="..."))  # doctest: +SKIP
    """

    name: ClassVar[str] = "failover"
    display_name: ClassVar[str] = "Failover"

    def __init__(self, *routes: Route | Provider, breaker: Breaker | None = None) -> None:
        super().__init__(routes, breaker=breaker)

    def plan(self, message: Message, idempotency_key: str) -> list[tuple[Message, list[Route]]]:
        return [(message, list(self.routes))]


class RoundRobin(Router):
    """Spread first attempts over the routes by weight; fail over to the others in turn.

    The first route is chosen by a hash of the idempotency key over the weights: random keys
    spread sends in proportion to the weights, and the same key always starts on the same route,
    so a re-send with the key goes where the first copy may have landed.
    """

    name: ClassVar[str] = "roundrobin"
    display_name: ClassVar[str] = "RoundRobin"

    def __init__(self, *routes: Route | Provider, breaker: Breaker | None = None) -> None:
        super().__init__(routes, breaker=breaker)
        self._total = sum(route.weight for route in self.routes)
        if self._total <= 0:
            raise ConfigurationError("RoundRobin needs at least one route with a weight above 0")
        bounds, running = [], 0.0
        for route in self.routes:
            running += route.weight
            bounds.append(running)
        self._bounds = bounds

    def start(self, idempotency_key: str) -> int:
        """The index of the route a send with ``idempotency_key`` starts on."""
        digest = hashlib.blake2b(idempotency_key.encode("utf-8"), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64 * self._total
        for index, bound in enumerate(self._bounds):
            if point < bound and self.routes[index].weight > 0:
                return index
        return max(i for i, route in enumerate(self.routes) if route.weight > 0)  # pragma: no cover - rounding

    def plan(self, message: Message, idempotency_key: str) -> list[tuple[Message, list[Route]]]:
        first = self.start(idempotency_key)
        return [(message, [*self.routes[first:], *self.routes[:first]])]


class ByCountry(Router):
    """Send each recipient through the route of its country; ``default`` for the rest, and as the fallback.

    Args:
        routes: country → route. A key is an ISO 3166-1 alpha-2 code (``"PL"``) or a calling-code
            prefix (``"+7"``, ``"+4420"``); the longest matching prefix beats the country.
        default: the route for numbers no key matches, and the next route (under the failover
            rule) when a country's route fails; without it such numbers raise ``Unsupported``.
        breaker: the breaker for these routes.

    Recipients of one message in different countries go out as one send per route, each with a
    key of its own (``<key>.1``, ``<key>.2``...); the result lists every recipient.
    """

    name: ClassVar[str] = "bycountry"
    display_name: ClassVar[str] = "ByCountry"

    def __init__(
        self,
        routes: Mapping[str, Route | Provider],
        *,
        default: Route | Provider | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        if not isinstance(routes, Mapping):
            raise ConfigurationError("ByCountry takes a mapping: {'PL': Smsapi(...), 'KZ': Mobizon(...)}")
        by_key: dict[str, Route] = {}
        distinct: dict[int, Route] = {}
        wrapped: dict[int, Route] = {}
        for key, value in routes.items():
            route = wrapped.setdefault(id(value), _as_route(value))  # one provider under two keys: one route
            by_key[_country_key(key)] = distinct.setdefault(id(route), route)
        self.default = None if default is None else wrapped.get(id(default)) or _as_route(default)
        everything = list(distinct.values())
        if self.default is not None and all(self.default is not r for r in everything):
            everything.append(self.default)
        super().__init__(everything, breaker=breaker)
        self.countries = {k: r for k, r in by_key.items() if not k.startswith("+")}
        self.prefixes = {k[1:]: r for k, r in by_key.items() if k.startswith("+")}
        self._longest = max(map(len, self.prefixes), default=0)

    def __repr__(self) -> str:
        keys = ", ".join(
            f"{k!r}: {r!r}" for k, r in [*self.countries.items(), *(("+" + p, r) for p, r in self.prefixes.items())]
        )
        return f"ByCountry({{{keys}}}, default={self.default!r})"

    def route_for(self, number: str) -> Route | None:
        """The route for one E.164 number (``None``: no key matches and there is no default)."""
        digits = number.lstrip("+")
        for size in range(min(self._longest, len(digits)), 0, -1):
            found = self.prefixes.get(digits[:size])
            if found is not None:
                return found
        country = country_of(number)
        return self.countries.get(country, self.default) if country is not None else self.default

    def plan(self, message: Message, idempotency_key: str) -> list[tuple[Message, list[Route]]]:
        groups: dict[int, tuple[Route, list[str]]] = {}
        for number in message.recipients:
            route = self.route_for(number)
            if route is None:
                country = country_of(number) or "an unknown country"
                raise Unsupported(
                    f"ByCountry has no route for {country} and no default route", provider=self.name, field="to"
                )
            groups.setdefault(id(route), (route, []))[1].append(number)
        parts = []
        for route, numbers in groups.values():
            part = message if len(groups) == 1 else _addressed(message, numbers)
            chain = [route] if self.default is None or self.default is route else [route, self.default]
            parts.append((part, chain))
        return parts


def _country_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(f"ByCountry keys are ISO country codes ('PL') or '+' prefixes ('+48'), got {key!r}")
    text = key.strip()
    if text.startswith("+"):
        digits = text[1:].replace(" ", "")
        if not digits.isdigit():
            raise ConfigurationError(f"ByCountry prefix {key!r} must be '+' and digits, e.g. '+48'")
        return "+" + digits
    code = text.upper()
    if code not in COUNTRIES:
        raise ConfigurationError(f"ByCountry: {key!r} is not an ISO 3166-1 alpha-2 country code this table knows")
    return code


def iter_routes(router: Router) -> Iterator[Route]:
    """Every route of ``router`` and of the routers nested in it, depth first."""
    for route in router.routes:
        yield route
        if isinstance(route.provider, Router):
            yield from iter_routes(route.provider)
