"""The sans-I/O step contract between an adapter and the client: a :class:`Step` (one request and the
pure function that reads its answer) and a :data:`Flow` (a generator of steps).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from ..errors import DuplicateMessage

R = TypeVar("R")


class Repeat(enum.Enum):
    """What sending a step's request a second time can do: the one fact the retry verdict needs of a step."""

    ONCE = "once"
    """A repeat may make a second message (the vendor cannot de-duplicate): an answer that leaves
    the outcome open is ``DeliveryUnknown`` and is not retried."""
    DEDUPLICATED = "deduplicated"
    """The vendor recognises a repeat by our key: an ambiguous failure is retried, and a
    "duplicate" answer to a retry means the first attempt landed."""
    READ = "read"
    """The request only reads (a status lookup): repeating it is harmless."""
    PREPARE = "prepare"
    """The request sends nothing by itself: it prepares a later step that does (a campaign's
    ``create`` and recipient lists before its ``send``). Repeating it is harmless, so a failure
    that leaves its outcome open is retried, and a failure that ends it is *certainly not sent*
    (``accepted=False``, a ``DeliveryUnknown`` restated as a ``TransportError``)."""


@dataclass(frozen=True, slots=True)
class Step(Generic[R]):
    """One HTTP exchange of a flow: the request, and the pure function that reads its answer.

    The client sends ``request`` (again, unchanged, on each retry) and hands the response to
    ``parse``. ``repeat`` says what a second copy of the request can do (see :class:`Repeat`).
    ``on_duplicate`` builds the result when the vendor answers "already seen" to a repeated
    attempt: the first attempt landed.
    """

    request: httpx.Request
    parse: Callable[[httpx.Response], R]
    repeat: Repeat = Repeat.ONCE
    on_duplicate: Callable[[DuplicateMessage], R] | None = None
    delay: float = 0.0
    """Seconds the client waits before sending this step (vendor pacing such as "poll at most
    once a second"); it uses the retry policy's ``sleep``, so tests do not really wait."""
    provider: str | None = None
    """The provider that makes this request, when it is not the client's own (a router's route):
    errors the client builds for it (a refused connection, a timeout) name that provider."""


#: A flow yields steps, receives each step's parsed value (or the step's error, thrown in),
#: and returns the final value.
Flow = Generator[Step[Any], Any, R]
