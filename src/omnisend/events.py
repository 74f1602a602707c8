"""What a client tells an ``on_event`` handler while it sends.

``Client(provider, on_event=handler)`` (and ``AsyncClient``) calls ``handler(event)``
synchronously with one of these frozen dataclasses. An exception in the handler is logged on
the ``omnisend`` logger and never breaks a send. No field but ``result``/``error`` carries a
phone number, a text or a credential, so a handler may export every field as it is.

* :class:`SendStarted` — a logical send begins (once per ``send()``, whatever the retries).
* :class:`AttemptFinished` — one HTTP attempt ended, with its error and the wait before the next.
* :class:`SendFinished` — the send ended: its result or its final error.
* :class:`RouteSkipped` — a router passed over a route (breaker open, or failed over from it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .errors import OmnisendError
    from .models import SendResult

__all__ = ["AttemptFinished", "Event", "EventHandler", "RouteSkipped", "SendFinished", "SendStarted"]


@dataclass(frozen=True, slots=True)
class SendStarted:
    """A logical send begins; ``provider`` is the client's provider (a router's name, through a router)."""

    provider: str
    idempotency_key: str | None
    recipients: int


@dataclass(frozen=True, slots=True)
class AttemptFinished:
    """One HTTP attempt ended."""

    provider: str
    idempotency_key: str | None
    attempt: int
    """1 for the first attempt of the send, counting every request of it."""
    duration: float
    """Seconds from sending the request to reading (or failing to read) its answer."""
    http_status: int | None
    error: OmnisendError | None
    """The attempt's typed error; ``None`` when it succeeded."""
    retry_in: float | None
    """Seconds until the next attempt; ``None`` when there is none (success, or a final error)."""


@dataclass(frozen=True, slots=True)
class SendFinished:
    """A logical send ended: exactly one of ``result`` and ``error`` is set.

    ``provider`` names the vendor that took the message (``result.provider``) or whose error ended
    the send (``error.provider``): through a router, the route, not the router.
    """

    provider: str
    idempotency_key: str | None
    attempts: int
    duration: float
    result: SendResult | None
    error: OmnisendError | None


@dataclass(frozen=True, slots=True)
class RouteSkipped:
    """A router passed over a route: its breaker is open, or it failed and the router moved on."""

    provider: str
    reason: str


Event = Union[SendStarted, AttemptFinished, SendFinished, RouteSkipped]  # noqa: UP007 - a runtime alias on 3.10
EventHandler = Callable[[Event], object]
