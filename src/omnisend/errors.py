"""The omnisend exception tree.

Every vendor answer that is not a success becomes one of these classes, whatever the
vendor's dialect (numeric codes in HTTP 200 bodies, string codes, problem documents)::

    OmnisendError
    ├── ConfigurationError         bad or missing settings, raised before any I/O
    │   └── ClientClosed           the client was closed (or its event loop is gone): nothing is sent
    ├── ProviderError              the vendor refused the request (or a pre-flight check did, for it)
    │   ├── AuthError              bad key or token
    │   │   └── WebhookAuthError   a webhook's signature or shared secret is missing or wrong
    │   ├── PermissionDenied       IP not allowed, sender or channel not allowed, account blocked
    │   ├── InsufficientBalance    out of credit
    │   ├── RateLimited            throttled; .retry_after in seconds when known
    │   ├── ValidationError        the request is invalid (code None when caught before sending)
    │   │   ├── InvalidRecipient   bad, blacklisted, opted-out number; not a user of that channel
    │   │   ├── TemplateError      unknown, unapproved or mismatched template
    │   │   └── Unsupported        this provider cannot do what the message asks (raised before sending)
    │   ├── DeliveryFailed         the vendor took the message; the network or handset could not deliver it
    │   ├── NotFound
    │   ├── DuplicateMessage       the idempotency key or message id was used already
    │   └── ServiceUnavailable     vendor internal or temporary error
    ├── TransportError             no usable answer: connection failed, timeout, unparseable body
    │   └── DeliveryUnknown        the request may have been accepted; the outcome is unknown
    └── PartialFailure             some recipients of one send were rejected

Every error carries ``provider``, ``code`` (the vendor's own code, as the vendor writes it),
``vendor_message``, ``http_status``, ``raw`` (the decoded body), ``retryable``, ``accepted``
(``False``: the vendor certainly did not take the message; ``None``: unknown),
``idempotency_key`` and ``attempts``. Errors never hold a request, so no header or secret can
leak through them, and every class survives ``pickle``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from .models import RecipientResult, SendResult

__all__ = [
    "AuthError",
    "ClientClosed",
    "ConfigurationError",
    "DeliveryFailed",
    "DeliveryUnknown",
    "DuplicateMessage",
    "InsufficientBalance",
    "InvalidRecipient",
    "NotFound",
    "OmnisendError",
    "PartialFailure",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "ServiceUnavailable",
    "TemplateError",
    "TransportError",
    "Unsupported",
    "ValidationError",
    "WebhookAuthError",
]


class _Unset:
    """Marks an argument that was not given (``accepted`` may legitimately be ``None``)."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _restore(cls: type[OmnisendError], state: dict[str, Any]) -> OmnisendError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    err.args = (err.message,)
    return err


_E = TypeVar("_E", bound="OmnisendError")
_T = TypeVar("_T", bound="TransportError")


class OmnisendError(Exception):
    """Base class of every error omnisend raises."""

    default_retryable: ClassVar[bool] = False
    default_accepted: ClassVar[bool | None] = False
    summary: ClassVar[str] = "omnisend error"

    provider: str | None
    """Provider id (``"smsapi"``), or ``None`` for checks made before a provider was involved."""
    code: str | int | None
    """The vendor's own code, as the vendor writes it (``103``, ``"error-system"``)."""
    vendor_message: str | None
    """The vendor's own words, verbatim."""
    http_status: int | None
    """The HTTP status of the answer, when there was one."""
    raw: object | None
    """The decoded answer body (JSON object, or text), secrets removed."""
    retryable: bool
    """Whether omnisend may safely send the same request again."""
    accepted: bool | None
    """``False``: the vendor certainly did not take the message; ``None``: unknown; ``True``: taken."""
    idempotency_key: str | None
    """The key of the logical send; re-send with it to stay safe from duplicates."""
    attempts: int | None
    """How many HTTP attempts were made before this error was raised."""
    request_id: str | None
    """The vendor's id of the request, when it sends one (``Provider.request_id_header``: Twilio's
    ``Twilio-Request-Id``); quote it to the vendor's support."""
    route_errors: tuple[OmnisendError, ...] = ()
    """Through a router: the errors of the routes tried before the one that raised this (oldest first)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str | None = None,
        code: str | int | None = None,
        vendor_message: str | None = None,
        http_status: int | None = None,
        raw: object | None = None,
        retryable: bool | None = None,
        accepted: bool | None = _UNSET,
        idempotency_key: str | None = None,
        attempts: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message or vendor_message or self.summary
        self.provider = provider
        self.code = code
        self.vendor_message = vendor_message
        self.http_status = http_status
        self.raw = raw
        self.retryable = self.default_retryable if retryable is None else retryable
        self.accepted = self.default_accepted if accepted is _UNSET else accepted
        self.idempotency_key = idempotency_key
        self.attempts = attempts
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        details = []
        if self.code is not None:
            details.append(f"code {self.code}")
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        text = self.message
        if self.provider:
            text = f"{self.provider}: {text}"
        if details:
            text = f"{text} ({', '.join(details)})"
        return text

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in ("provider", "code", "http_status", "retryable", "accepted")
        )
        return f"{type(self).__name__}({self.message!r}, {fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), dict(self.__dict__)))

    def evolve(self: _E, **changes: Any) -> _E:
        """A new error like this one with ``changes`` (field names); this one is left as it is.

        omnisend never changes an error once it has been raised: where it learns more (the
        attempt count, the key, that the outcome is unknown), it builds a new one.
        """
        unknown = [name for name in changes if not hasattr(self, name)]
        if unknown:
            raise TypeError(f"{type(self).__name__}.evolve: no field {', '.join(sorted(unknown))}")
        state = dict(self.__dict__)
        state.update(changes)
        error = _restore(type(self), state)
        error.__cause__ = self.__cause__
        return error  # type: ignore[return-value]


class ConfigurationError(OmnisendError, ValueError):
    """Settings are missing or wrong (no token, bad base URL); raised before any I/O."""

    summary = "invalid configuration"


class ClientClosed(ConfigurationError):
    """The client was closed, or cannot be used from this event loop; raised before any request.

    Nothing was sent by the call that raised it (``accepted=False``). Create a new client.
    """

    summary = "the client is closed"


class ProviderError(OmnisendError):
    """The vendor refused the request, or a pre-flight check refused it on the vendor's behalf."""

    summary = "the provider refused the request"

    retry_after: float | None
    """Seconds the vendor asked to wait (``Retry-After`` or a documented hint), when it said so."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class AuthError(ProviderError):
    """The key or token was rejected."""

    summary = "authentication failed"


class WebhookAuthError(AuthError):
    """A webhook's signature or shared secret is missing or does not match: refuse the request."""

    summary = "webhook authentication failed"


class PermissionDenied(ProviderError):
    """The account may not do this: IP not allowed, sender or channel not allowed, account blocked."""

    summary = "permission denied"


class InsufficientBalance(ProviderError):
    """The account is out of credit."""

    summary = "insufficient balance"


class RateLimited(ProviderError):
    """The vendor throttled the request; ``retry_after`` says how long to wait, when known."""

    default_retryable = True
    summary = "rate limited"


class ValidationError(ProviderError, ValueError):
    """The request is invalid; ``code`` is ``None`` when omnisend caught it before sending."""

    summary = "invalid request"

    field: str | None
    """The message field at fault, when known (``"to"``, ``"sender"``)."""

    def __init__(self, message: str | None = None, *, field: str | None = None, **kwargs: Any) -> None:
        self.field = field
        super().__init__(message, **kwargs)


class InvalidRecipient(ValidationError):
    """A recipient is malformed, blacklisted, opted out, or not a user of that channel."""

    summary = "invalid recipient"


class TemplateError(ValidationError):
    """The template is unknown, not approved, or its parameters do not match."""

    summary = "template error"


class Unsupported(ValidationError):
    """This provider cannot do what the message asks (sender type, channel, media, schedule...).

    Raised before any request. It is about the provider's capabilities, not the message: a router
    moves on to its next route on it, where it would not on another ``ValidationError``.
    """

    summary = "not supported by this provider"


class DeliveryFailed(ProviderError):
    """The vendor took the message; the network or handset could not deliver it.

    Carrier failure, SIM full, out of coverage, no answer, busy: found in delivery reports and
    status lookups (``DeliveryReport.error``), and in the few synchronous answers that say so.
    """

    default_accepted = True
    summary = "the message could not be delivered"


class NotFound(ProviderError):
    """The message, template, group or other object asked for does not exist."""

    summary = "not found"


class DuplicateMessage(ProviderError):
    """The idempotency key or message id was used already."""

    summary = "duplicate message"


class ServiceUnavailable(ProviderError):
    """The vendor had an internal or temporary error; safe to retry when ``retryable``."""

    default_retryable = True
    summary = "service unavailable"


class TransportError(OmnisendError):
    """No usable answer: the connection failed, timed out, or the body could not be read."""

    default_retryable = True
    summary = "transport error"

    @classmethod
    def from_error(cls: type[_T], error: OmnisendError, message: str, *, retryable: bool) -> _T:
        """This class's error restating ``error`` (vendor code, words, status, body, key kept; chained to it).

        ``DeliveryUnknown.from_error``: the outcome behind ``error`` is unknown;
        ``TransportError.from_error``: it is certainly not sent (``accepted=False``).
        """
        restated = cls(
            message,
            provider=error.provider,
            code=error.code,
            vendor_message=error.vendor_message,
            http_status=error.http_status,
            raw=error.raw,
            retryable=retryable,
            idempotency_key=error.idempotency_key,
            attempts=error.attempts,
            request_id=error.request_id,
        )
        restated.__cause__ = error
        return restated


class DeliveryUnknown(TransportError):
    """The request may have been accepted, but no answer says so; reconcile with ``idempotency_key``."""

    default_retryable = False
    default_accepted = None
    summary = "the outcome of the send is unknown"


class PartialFailure(OmnisendError):
    """Some recipients of one send were rejected; ``result`` holds every recipient's outcome."""

    default_accepted = True
    summary = "some recipients were rejected"

    result: SendResult | None
    """The whole result: accepted and rejected recipients."""

    def __init__(self, message: str | None = None, *, result: SendResult | None = None, **kwargs: Any) -> None:
        self.result = result
        super().__init__(message, **kwargs)

    @property
    def failed(self) -> list[RecipientResult]:
        """The rejected recipients, each with its typed error."""
        return list(self.result.failed) if self.result is not None else []
