"""Public data types: the :class:`Message` you send and what comes back.

``Message`` is a frozen pydantic model, strict about input (unknown fields are refused and a
bad value raises :class:`omnisend.ValidationError` naming the field). Results are small frozen
dataclasses that keep the vendor's ``raw`` payload.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from . import _inputs, errors
from ._text import normalize_e164
from .errors import OmnisendError, PartialFailure, ValidationError

__all__ = [
    "Channel",
    "DeliveryReport",
    "DeliveryStatus",
    "Media",
    "Message",
    "RecipientResult",
    "ReportError",
    "SendResult",
    "Template",
]

Channel = Literal["sms", "whatsapp", "viber"]


class DeliveryStatus(str, enum.Enum):
    """Where a message is in its life, the same words for every vendor and channel."""

    QUEUED = "queued"
    """Accepted by the vendor, not yet handed to a network."""
    SCHEDULED = "scheduled"
    """Accepted for sending at a later time."""
    SENT = "sent"
    """Handed to the operator or channel; no handset confirmation yet."""
    DELIVERED = "delivered"
    """Confirmed delivered to the handset or app."""
    READ = "read"
    """Read by the recipient (WhatsApp, Viber)."""
    UNDELIVERED = "undelivered"
    """The network could not deliver it (unreachable, invalid, roaming)."""
    FAILED = "failed"
    """The vendor failed to send it."""
    EXPIRED = "expired"
    """Its validity ran out before delivery."""
    REJECTED = "rejected"
    """Refused by the vendor or operator (blacklist, balance, content)."""
    CANCELLED = "cancelled"
    """Cancelled before sending."""
    UNKNOWN = "unknown"
    """No usable report; also any vendor status omnisend does not know yet."""

    @property
    def is_final(self) -> bool:
        """Whether no further status change is expected."""
        return self in _FINAL

    def __str__(self) -> str:
        return self.value


_FINAL = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.CANCELLED,
    }
)


class _Input(BaseModel):
    """Strict input base: frozen, unknown fields refused, pydantic errors turned into ours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            # What ``BaseModel.__init__`` does, without its extra frame and keyword repacking.
            self.__pydantic_validator__.validate_python(data, self_instance=self)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"]) or None
            msg = str(first["msg"]).removeprefix("Value error, ")
            where = f"{type(self).__name__}.{loc}" if loc else type(self).__name__
            original = (first.get("ctx") or {}).get("error")
            cls = type(original) if isinstance(original, ValidationError) else ValidationError
            raise cls(f"{where}: {msg}", field=loc) from exc


class Template(_Input):
    """A vendor template (WhatsApp HSM, SMSAPI template) and its parameters."""

    name: str = Field(min_length=1)
    """Template name or id, as registered with the vendor."""
    params: dict[str, str] | list[str] = Field(default_factory=dict)
    """Named (dict) or positional (list) parameters."""
    language: str | None = None
    """Template language code, where the vendor asks for it (``"en"``)."""

    @property
    def named_params(self) -> dict[str, str]:
        """The parameters by placeholder name: a dict as given, a list numbered from ``"1"``
        (``["42", "Main St"]`` → ``{"1": "42", "2": "Main St"}``, for ``{{1}}``, ``{{2}}``)."""
        if isinstance(self.params, dict):
            return dict(self.params)
        return {str(i): value for i, value in enumerate(self.params, 1)}

    @model_validator(mode="after")
    def _check_text(self) -> Template:
        params = [*self.params, *self.params.values()] if isinstance(self.params, dict) else self.params
        for value in (self.name, self.language, *params):
            _sendable(value, "the template")
        return self


class Media(_Input):
    """An attachment: an image, video, audio or document reachable at a public URL."""

    url: str
    """Public URL of the media file."""
    type: Literal["image", "video", "audio", "document"] = "image"
    """Kind of media."""
    caption: str | None = None
    """Optional caption shown with it."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("media url must be an http(s) URL")
        if not value.isprintable() or value != value.strip():
            raise ValueError("media url contains whitespace or a control character")
        return value

    @field_validator("caption")
    @classmethod
    def _caption(cls, value: str | None) -> str | None:
        return _sendable(value, "caption")


class Message(_Input):
    """One logical message: one text (or template) to one or many recipients.

    Example:
        >>> Message(to="+48500100200", text="Your code is 1234", sender="Shop").recipients
        ('+48500100200',)
    """

    to: str | list[str]
    """One E.164 number or a list of them; spaces and dashes are dropped."""
    text: str | None = None
    """The message body."""
    sender: str | None = None
    """Sender id (alphanumeric name or number); vendor rules are checked by the provider."""
    channel: Channel = "sms"
    """``"sms"`` (default), ``"whatsapp"`` or ``"viber"``."""
    template: Template | None = None
    """A vendor template, for WhatsApp HSM and vendor templates."""
    media: Media | None = None
    """An attachment, where the channel supports it."""
    scheduled_at: datetime | None = None
    """When to send; must carry a time zone."""
    validity: timedelta | None = None
    """How long the vendor should keep trying to deliver."""
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    """One key per logical send; generated when absent and reused on every retry."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Your own key/value data, kept on the result (not sent)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Vendor-only request fields, merged into the request (escape hatch). Values must be JSON
    values; timezone-aware datetimes and dates are turned into ISO 8601 text. Fields omnisend sets
    itself (the vendor's idempotency and recipient fields, credentials) are refused by the provider."""

    _recipient_ids: tuple[str, ...] | None = PrivateAttr(default=None)
    # Internal: the vendor id of each recipient, set on the merged message of a ``send_many`` batch
    # and on each chunk of a split send (see ``Provider.recipient_ids``); never set by callers.

    @field_validator("to")
    @classmethod
    def _to(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return normalize_e164(value)
        if not value:
            raise ValueError("at least one recipient is required")
        numbers = [normalize_e164(v) for v in value]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a recipient appears twice; each number may appear once per message")
        return numbers

    @field_validator("text")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("text is empty")
        return _sendable(value, "text")

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("sender is empty; leave it out to use the account default")
        if value is not None and not value.isprintable():
            raise ValueError("sender contains a control or unprintable character")
        return value

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        problem = None if value is None else _inputs.key_problem(value)
        if problem is not None:
            raise ValueError(f"idempotency_key {problem}")
        return value

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _inputs.json_options(value) if value else value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            _sendable(key, "a metadata key")
            _sendable(item, f"metadata[{key!r}]")
        return value

    @field_validator("scheduled_at")
    @classmethod
    def _scheduled(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("scheduled_at must carry a time zone (e.g. datetime.now(timezone.utc))")
        return value

    @field_validator("validity")
    @classmethod
    def _validity(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("validity must be positive")
        return value

    @model_validator(mode="after")
    def _content(self) -> Message:
        if self.text is None and self.template is None and self.media is None:
            raise ValueError("a message needs text, a template or media")
        return self

    @property
    def recipients(self) -> tuple[str, ...]:
        """The recipients as a tuple, whether ``to`` was one number or a list."""
        return (self.to,) if isinstance(self.to, str) else tuple(self.to)

    def _part(self, to: list[str], ids: tuple[str, ...] | None, **update: Any) -> Message:
        """A copy to the numbers ``to`` (a chunk, a batch), each keeping the vendor id in ``ids``."""
        part = self.model_copy(update={"to": to, **update})
        part._recipient_ids = ids
        return part


def _sendable(value: str | None, what: str = "the value") -> str | None:
    """``value``, or ``ValueError`` when it holds what no vendor can be sent (NUL, a lone surrogate)."""
    problem = None if value is None else _inputs.text_problem(value)
    if problem is not None:
        raise ValueError(f"{what} {problem}")
    return value


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The outcome for one recipient of a send."""

    to: str
    message_id: str | None
    status: DeliveryStatus
    error: OmnisendError | None = None
    """The typed error when the vendor rejected this recipient (``DeliveryUnknown`` when the outcome
    for it is unknown, e.g. a later request of a split send timed out)."""
    provider: str | None = None
    """The route that took (or last refused) this recipient, when a router spread one send over
    several routes; ``None`` otherwise (``SendResult.provider`` says it for every recipient)."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a successful ``send()`` returns: one entry per recipient, and the vendor's answer."""

    provider: str
    message_id: str | None
    """The vendor id of the first (or only) accepted message; ``None`` if the vendor gave none."""
    status: DeliveryStatus
    recipients: tuple[RecipientResult, ...]
    idempotency_key: str | None = None
    attempts: int = 1
    """HTTP attempts made, retries included."""
    raw: object | None = None
    """The decoded vendor answer (for several requests, a list of them)."""
    deduplicated: bool = False
    """True when the vendor said an earlier attempt with this key had already been accepted."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    segments: int | None = None
    """SMS parts per recipient (``omnisend.sms_segments``); ``None`` for other channels."""
    route_errors: tuple[OmnisendError, ...] = ()
    """Through a router: the errors of the routes tried before the one that took the message."""

    @property
    def failed(self) -> tuple[RecipientResult, ...]:
        """Recipients the vendor rejected."""
        return tuple(r for r in self.recipients if r.error is not None)

    @property
    def succeeded(self) -> tuple[RecipientResult, ...]:
        """Recipients the vendor accepted."""
        return tuple(r for r in self.recipients if r.error is None)

    def raise_for_failures(self) -> SendResult:
        """Raise :class:`PartialFailure` if any recipient was rejected; return ``self`` otherwise."""
        failed = self.failed
        if failed:
            raise PartialFailure(
                f"{len(failed)} of {len(self.recipients)} recipients rejected",
                provider=self.provider,
                idempotency_key=self.idempotency_key,
                attempts=self.attempts,
                result=self,
            )
        return self


@dataclass(frozen=True, slots=True)
class ReportError:
    """Why a message failed, as a delivery report tells it."""

    error_class: str
    """The omnisend exception class name the vendor reason maps to (``"InsufficientBalance"``)."""
    code: str | int | None
    """The vendor's own failure code."""
    message: str | None = None
    """The vendor's description."""

    @property
    def exception_class(self) -> type[errors.OmnisendError]:
        """The exception class itself, for ``issubclass`` checks."""
        cls = getattr(errors, self.error_class, errors.ProviderError)
        return cls if isinstance(cls, type) else errors.ProviderError


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """One delivery status of one message to one recipient, from a webhook or a status lookup."""

    provider: str
    message_id: str | None
    status: DeliveryStatus
    vendor_status: str | int | None
    """The vendor's own status value, verbatim."""
    recipient: str | None = None
    idempotency_key: str | None = None
    """The key (client reference) the message was sent with, when the vendor echoes it."""
    error: ReportError | None = None
    timestamp: datetime | None = None
    """When the vendor says the status changed (timezone-aware UTC)."""
    event_id: str | None = None
    """A vendor event id, where one exists; used to drop replayed webhooks."""
    raw: object | None = None
