"""A vendor's two tables: code → exception class (:class:`ErrorTable`), status → :class:`DeliveryStatus`
(:class:`StatusTable`), and the HTTP-status fallbacks used when an answer carries no vendor code.

Lookups accept a code however the vendor spells it (``103``, ``"103"``, ``" 103 "``); an unknown
code or status is never a ``KeyError``: it gets the fallback class, or ``UNKNOWN``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from ..errors import (
    AuthError,
    DuplicateMessage,
    InsufficientBalance,
    NotFound,
    OmnisendError,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)
from ..models import DeliveryStatus, ReportError

R = TypeVar("R")
Code = str | int


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of a code table: what a vendor code means and which exception it raises."""

    exc: type[ProviderError]
    """The exception class raised for this code."""
    meaning: str
    """The vendor's own description."""
    retryable: bool | None = None
    """Per-code override, only where the vendor says so; ``None`` follows the class."""
    ambiguous: bool = False
    """The vendor may have taken the message although it answered with this code."""
    retry_after: float | None = None
    """A wait the vendor documents for this code (seconds), used by ``RateLimited``."""
    hint: str | None = None
    """What to check when the fix is known; added to the error's message after the vendor's words."""

    @property
    def is_retryable(self) -> bool:
        return self.exc.default_retryable if self.retryable is None else self.retryable


def _code_key(code: object) -> Code | None:
    """Canonical lookup key: numbers that arrive as strings (``"103"``) find the row ``103``."""
    if isinstance(code, bool) or code is None:
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, float) and code.is_integer():
        return int(code)
    text = str(code).strip()
    if text.lstrip("-").isdigit() and len(text) < 19:
        return int(text)
    return text


Row = TypeVar("Row")


class _CodeMap(Mapping[Code, Row]):
    """A read-only mapping of vendor codes whose lookup finds a row however the vendor spells its key."""

    _what = "code"

    def __init__(self, rows: Mapping[Code, Row], *, case_insensitive: bool = False) -> None:
        self._rows = dict(rows)
        self._case_insensitive = case_insensitive
        self._index: dict[Code, Row] = {}
        for code, row in rows.items():
            key = _code_key(code)
            if key is None:
                raise TypeError(f"bad {self._what} {code!r} in a {type(self).__name__}")
            self._index[self._fold(key)] = row

    def _fold(self, key: Code) -> Code:
        return key.lower() if self._case_insensitive and isinstance(key, str) else key

    def __getitem__(self, code: Code) -> Row:
        return self._rows[code]

    def __iter__(self) -> Iterator[Code]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def _find(self, code: object) -> tuple[Row | None, Code | None]:
        """The row for ``code`` (``None`` if unknown) and the canonical key it was looked up by."""
        if type(code) is str:  # spelled as the row's own key (a hit implies no padding, no digits)
            row = self._index.get(self._fold(code))
            if row is not None:
                return row, code
        key = _code_key(code)
        if key is None:
            return None, None
        key = self._fold(key)
        return self._index.get(key), key


class ErrorTable(_CodeMap[ErrorCode]):
    """A vendor's code table: a read-only mapping with :meth:`error` to build the typed error.

    Args:
        rows: vendor code → :class:`ErrorCode`.
        fallback: the class for a code that is not in the table (forward compatibility).
        case_insensitive: match string codes regardless of case.
    """

    def __init__(
        self,
        rows: Mapping[Code, ErrorCode],
        *,
        fallback: type[ProviderError] = ProviderError,
        case_insensitive: bool = False,
    ) -> None:
        super().__init__(rows, case_insensitive=case_insensitive)
        self.fallback = fallback

    def lookup(self, code: object) -> ErrorCode | None:
        """The row for ``code``, however the vendor spelled the number; ``None`` if unknown."""
        return self._find(code)[0]

    def error(
        self,
        code: object,
        *,
        fallback: type[ProviderError] | None = None,
        at_least: type[ProviderError] | None = None,
        **kwargs: Any,
    ) -> ProviderError:
        """Build (not raise) the typed error for ``code``.

        Args:
            code: the vendor's code, however spelled.
            fallback: the class for a code not in the table (default: the table's own fallback).
            at_least: a class the error must be an instance of (e.g. ``RateLimited`` for any HTTP
                429): a row of another class keeps its code and words but takes this class.
        """
        row = self.lookup(code)
        kept: Code | None = code if isinstance(code, (str, int)) and not isinstance(code, bool) else None
        if kept is None and code is not None:
            kept = str(code)
        if row is None:
            return (fallback or self.fallback)(code=kept, **kwargs)
        if at_least is not None and not issubclass(row.exc, at_least):
            kwargs.setdefault("vendor_message", row.meaning)
            return at_least(code=kept, **kwargs)
        if row.ambiguous:
            kwargs.setdefault("accepted", None)
        if row.retryable is not None:
            kwargs.setdefault("retryable", row.retryable)
        if not kwargs.get("vendor_message"):
            kwargs["vendor_message"] = row.meaning
        if row.retry_after is not None:
            kwargs.setdefault("retry_after", row.retry_after)
        if row.hint and not kwargs.get("message"):
            kwargs["message"] = f"{str(kwargs['vendor_message']).rstrip('. ')}; {row.hint}"
        return row.exc(code=kept, **kwargs)


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One row of a status table."""

    status: DeliveryStatus
    meaning: str
    error: type[ProviderError] | None = None
    """For failure statuses: the exception class the reason corresponds to."""


class StatusTable(_CodeMap[StatusEntry]):
    """A vendor's delivery-status table; unknown values normalise to ``UNKNOWN``, never ``KeyError``.

    Args:
        rows: vendor status → :class:`StatusEntry`.
        case_insensitive: match string statuses regardless of case.
        families: name prefix → entry, for a vendor that documents families of names and adds new
            members over time (``WHATSAPP_TEMPLATE_...``): a name no row holds takes the entry of
            the longest prefix it starts with, so a new failure still reads as a failure.
    """

    _what = "status"

    def __init__(
        self,
        rows: Mapping[Code, StatusEntry],
        *,
        case_insensitive: bool = False,
        families: Mapping[str, StatusEntry] | None = None,
    ) -> None:
        super().__init__(rows, case_insensitive=case_insensitive)
        self.families: Mapping[str, StatusEntry] = dict(families or {})
        self._families = sorted(
            ((p.lower() if case_insensitive else p, e) for p, e in self.families.items()), key=lambda f: -len(f[0])
        )

    def lookup(self, value: object) -> StatusEntry | None:
        """The row for ``value`` (or its name family's); ``None`` if unknown."""
        row, key = self._find(value)
        if row is None and isinstance(key, str):
            row = next((entry for prefix, entry in self._families if key.startswith(prefix)), None)
        return row

    def normalize(self, value: object) -> DeliveryStatus:
        """The :class:`DeliveryStatus` for a vendor value; ``UNKNOWN`` when not in the table."""
        row = self.lookup(value)
        return row.status if row is not None else DeliveryStatus.UNKNOWN

    def report_error(
        self, value: object, *, code: Code | None = None, message: str | None = None
    ) -> ReportError | None:
        """The failure reason for a failure status (``None`` for non-failures)."""
        row = self.lookup(value)
        if row is None or row.error is None:
            return None
        return ReportError(row.error.__name__, code if code is not None else _kept(value), message or row.meaning)


def _kept(value: object) -> Code | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, (str, int)) else str(value)


#: HTTP status → (exception class, whether the vendor may have taken the message).
#: Used only when the body carries no vendor code of its own.
HTTP_FALLBACKS: Final[Mapping[int, tuple[type[OmnisendError], bool | None]]] = {
    400: (ValidationError, False),
    401: (AuthError, False),
    402: (InsufficientBalance, False),
    403: (PermissionDenied, False),
    404: (NotFound, False),
    405: (ValidationError, False),
    408: (ServiceUnavailable, None),
    409: (DuplicateMessage, False),
    413: (ValidationError, False),
    415: (ValidationError, False),
    422: (ValidationError, False),
    429: (RateLimited, False),
    500: (ServiceUnavailable, None),
    502: (ServiceUnavailable, None),
    503: (ServiceUnavailable, False),
    504: (ServiceUnavailable, None),
}
