"""Delivery-report callbacks, read once for every vendor: authentication strategies and event fields.

:meth:`Provider.parse_webhook <omnisend.providers.base.Provider.parse_webhook>` is a template: it
authenticates the callback by the strategy the adapter declares (``webhook_check``), decodes the
body (``webhook_format``: ``"json"``, ``"form"``, or ``"query"`` — the query's fields and a form
body), then asks the adapter which events the payload holds (``webhook_events``) and reads each one
as a :class:`~omnisend.DeliveryReport` (``webhook_fields``, a :class:`ReportFields` mapping — or
:class:`Shapes` of several, told apart by a field —, or the ``webhook_report`` hook).

The strategies, one per way vendors prove they sent a callback (each comparison constant-time; the
secret is the provider's ``webhook_secret``, and ``None`` checks nothing unless the strategy says
otherwise):

* :class:`SharedSecret` — vendors that do not sign: a secret you put in the callback URL
  (``?token=``) or its user info (the Basic-auth password);
* :class:`HeaderKey` — a static key the vendor sends in a header (edna);
* :class:`BodyHmac` — a hex HMAC of the raw body in a header, the algorithm named by a
  ``sha256=`` prefix or the digest's length (Webex Connect ``x-hub-signature``);
* :class:`SignedFields` — a digest of some payload fields and the secret, carried in the payload
  (Mobizon ``sign``);
* :class:`SignedUrl` — a base64 HMAC of the URL the vendor called and the sorted form fields, in a
  header (Twilio ``X-Twilio-Signature``); it needs the secret and the URL.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import ConfigurationError, ValidationError, WebhookAuthError
from ..models import DeliveryReport, DeliveryStatus
from ..webhooks import hmac_hex, verify_shared_secret, verify_url_signature
from ._guard import WebhookHeaders
from ._json import as_text, value_at
from ._tables import ErrorTable, StatusTable

if TYPE_CHECKING:
    from .base import Provider

__all__ = [
    "BodyHmac",
    "Callback",
    "CallbackAuth",
    "First",
    "HeaderKey",
    "Joined",
    "ReportFields",
    "SharedSecret",
    "SignedFields",
    "Shapes",
    "SignedUrl",
    "WebhookFormat",
    "as_number",
]

WebhookFormat = Literal["json", "form", "query"]


class Callback:
    """One callback request as the web framework received it, decoded on first use.

    ``url`` is the URL the vendor called (the given one, else the provider's ``webhook_url``, with
    ``query`` appended when it has none of its own); ``query`` is that URL's query, or the given one.
    """

    def __init__(
        self,
        provider: Provider,
        body: bytes | str,
        headers: Mapping[str, str] | None,
        query: Mapping[str, str] | None,
        url: str | None,
    ) -> None:
        self.provider = provider
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.headers = headers if isinstance(headers, WebhookHeaders) else WebhookHeaders(headers or {})
        target = url or provider.webhook_url
        if target and query and not urlsplit(target).query:
            target += f"?{urlencode(query)}"
        self.url = target
        self.query: dict[str, str] = dict(parse_qsl(urlsplit(target).query)) if target else dict(query or {})

    def _invalid(self, text: str) -> ValidationError:
        return ValidationError(text, provider=self.provider.name, field="body")

    @functools.cached_property
    def form(self) -> list[tuple[str, str]]:
        """The body's form fields, in order (a name may come several times)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._invalid("the callback body is not UTF-8") from exc
        return parse_qsl(text, keep_blank_values=True)

    @functools.cached_property
    def payload(self) -> Any:
        """The decoded body (``webhook_format``); authentication fields are left out of form payloads."""
        kind = self.provider.webhook_format
        if kind == "json":
            try:
                return json.loads(self.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self._invalid("not a JSON webhook event: the body is not JSON") from exc
        check = self.provider.webhook_check
        private = check.private_fields() if check is not None else frozenset()
        fields = dict(self.form)
        if kind == "query":
            fields.update(self.query)
        return {k: v for k, v in fields.items() if k not in private}


# -- the strategies -----------------------------------------------------------------------------


class CallbackAuth:
    """How a vendor proves it sent a callback: :meth:`verify` raises ``WebhookAuthError`` otherwise."""

    def private_fields(self) -> frozenset[str]:
        """Query or form fields that carry the proof, not the event (left out of the payload)."""
        return frozenset()

    def verify(self, provider: Provider, callback: Callback) -> None:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class SharedSecret(CallbackAuth):
    """For vendors that do not sign: the secret as the ``param`` query value or the Basic-auth password."""

    param: str = "token"

    def private_fields(self) -> frozenset[str]:
        return frozenset({self.param})

    def verify(self, provider: Provider, callback: Callback) -> None:
        if provider.webhook_secret is not None:
            verify_shared_secret(
                provider.webhook_secret,
                headers=callback.headers,
                query=callback.query,
                param=self.param,
                provider=provider.name,
            )


@dataclasses.dataclass(frozen=True)
class HeaderKey(CallbackAuth):
    """A static key the vendor sends in ``header`` (surrounding blanks ignored)."""

    header: str = "X-API-KEY"

    def verify(self, provider: Provider, callback: Callback) -> None:
        if provider.webhook_secret is None:
            return
        given = callback.headers.get(self.header)
        if given is None or not hmac.compare_digest(given.strip().encode(), provider.webhook_secret.encode()):
            raise WebhookAuthError(
                f"webhook key {'missing' if given is None else 'wrong'} in {self.header}: the callback is not "
                f"from {provider.display_name}, or the key was renewed",
                provider=provider.name,
            )


#: Hex digest length → algorithm, for signatures without an ``algorithm=`` prefix.
_HEX_LENGTHS: Final = {40: "sha1", 64: "sha256", 128: "sha512"}


@dataclasses.dataclass(frozen=True)
class BodyHmac(CallbackAuth):
    """A hex HMAC of the raw body in ``header``, optionally ``<algorithm>=``-prefixed; the algorithm
    (one of ``algorithms``) is read from the prefix or the digest's length. The secret key is what
    proves the sender, so any of them, SHA-1 included, cannot be forged without it."""

    header: str
    algorithms: tuple[str, ...] = ("sha256",)

    def verify(self, provider: Provider, callback: Callback) -> None:
        secret = provider.webhook_secret
        if secret is None:
            return
        given = (callback.headers.get(self.header) or "").strip()
        if not given:
            raise WebhookAuthError(
                f"callback without {self.header} (a webhook secret is configured)", provider=provider.name
            )
        prefix, _, digest = given.rpartition("=")
        digest = digest.lower()
        algorithm = prefix.lower() or _HEX_LENGTHS.get(len(digest), "")
        known = algorithm in self.algorithms
        expected = hmac_hex(secret, callback.body, algorithm if known else self.algorithms[0])
        if not hmac.compare_digest(expected.encode(), digest.encode("utf-8", "replace")) or not known:
            raise WebhookAuthError(
                f"{self.header} does not match the callback (forged or wrong secret)", provider=provider.name
            )


@dataclasses.dataclass(frozen=True)
class SignedFields(CallbackAuth):
    """A hex digest (``algorithm``) of the payload's ``signed`` fields and the secret, joined by
    ``separator``, carried in the payload's ``signature`` field."""

    signed: tuple[str, ...]
    signature: str = "sign"
    algorithm: str = "sha1"
    separator: str = "|"

    def verify(self, provider: Provider, callback: Callback) -> None:
        if provider.webhook_secret is None:
            return
        payload = callback.payload
        event = payload if isinstance(payload, Mapping) else {}
        text = self.separator.join([*(f"{event.get(name)}" for name in self.signed), provider.webhook_secret])
        expected = hashlib.new(self.algorithm, text.encode()).hexdigest()
        if not hmac.compare_digest(expected.encode(), str(event.get(self.signature) or "").lower().encode()):
            raise WebhookAuthError(f"webhook {self.signature} is missing or does not match", provider=provider.name)


@dataclasses.dataclass(frozen=True)
class SignedUrl(CallbackAuth):
    """A base64 HMAC-SHA1 of the URL the vendor called and the sorted form fields, in ``header``
    (:func:`omnisend.webhooks.verify_url_signature`). Always checked: without a secret or a URL it
    is a ``ConfigurationError``, ``secret_hint`` saying what to configure."""

    header: str
    secret_hint: str = "webhook_secret="

    def verify(self, provider: Provider, callback: Callback) -> None:
        secret, url = provider.webhook_secret, callback.url
        if secret is None or not url:
            need = self.secret_hint if url else f"parse_webhook(url=...) or {type(provider).__name__}(webhook_url=...)"
            raise ConfigurationError(f"checking {self.header} needs {need}", provider=provider.name)
        signature = callback.headers.get(self.header)
        verify_url_signature(secret, url, callback.form, signature, header=self.header, provider=provider.name)


# -- reading one event ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class First:
    """The first of several paths that holds a value."""

    paths: tuple[str, ...]

    def __init__(self, *paths: str) -> None:
        object.__setattr__(self, "paths", paths)

    def read(self, event: Mapping[str, Any]) -> Any:
        return next((v for v in (value_at(event, p.split(".")) for p in self.paths) if v not in (None, "")), None)


@dataclasses.dataclass(frozen=True)
class Joined:
    """Several fields as one text: ``Joined(":", "id", "status")`` → ``"<id>:<status>"``.

    With ``skip_empty`` missing parts are left out (``None`` when none is left); otherwise each part
    is written as is (a missing one as ``None``), so the text is stable for replay keys.
    """

    separator: str
    parts: tuple[Field, ...]
    skip_empty: bool = False

    def __init__(self, separator: str, *parts: Field, skip_empty: bool = False) -> None:
        object.__setattr__(self, "separator", separator)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "skip_empty", skip_empty)

    def read(self, event: Mapping[str, Any]) -> str | None:
        values = [_read(part, event) for part in self.parts]
        if self.skip_empty:
            return self.separator.join(str(v) for v in values if v not in (None, "")) or None
        return self.separator.join(f"{v}" for v in values)


#: Where a report field is in an event: a dotted path (``"data.status"``), or :class:`First` / :class:`Joined`.
Field = str | First | Joined


def _read(field: Field | None, event: Mapping[str, Any]) -> Any:
    if field is None:
        return None
    return value_at(event, field.split(".")) if isinstance(field, str) else field.read(event)


#: ``ValidationError.field`` of an event that names no message id (``parse_webhook`` skips it
#: when the callback holds other events, and raises it when it holds no other).
UNNAMED_EVENT: Final = "webhook.message_id"

_FAILURES: Final = frozenset(
    {DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.REJECTED, DeliveryStatus.EXPIRED}
)


@dataclasses.dataclass(frozen=True)
class ReportFields:
    """Where each part of a :class:`~omnisend.DeliveryReport` is in one vendor event.

    The status goes through the provider's status table (``statuses`` first, when given: events
    that read differently from lookups); a reason code (``error_code``) through ``error_table`` —
    only for a failure status with ``failure_codes_only`` (vendors that put a code on every
    receipt, success included) — and a code in ``reasons`` refines a failure's status (an expiry
    code makes it ``expired``). ``numbers``: the payload is text (a form), so a status or code
    written in digits is the vendor's number; otherwise codes are kept as text. ``time`` turns the
    vendor's timestamp into a UTC datetime. The recipient is read as an E.164 number
    (:func:`as_number`), and the whole event is the report's ``raw``.
    """

    message_id: Field
    status: Field
    recipient: Field | None = None
    idempotency_key: Field | None = None
    timestamp: Field | None = None
    error_code: Field | None = None
    error_message: Field | None = None
    event_id: Field | None = None
    time: Callable[[Any], datetime | None] | None = None
    error_table: ErrorTable | None = None
    statuses: StatusTable | None = None
    reasons: StatusTable | None = None
    numbers: bool = False
    failure_codes_only: bool = False

    def value(self, name: str, event: Mapping[str, Any]) -> Any:
        """The raw value of report field ``name`` (``"message_id"``, ...) in ``event``; ``None`` when absent."""
        return _read(getattr(self, name), event)

    def report(self, provider: Provider, event: Mapping[str, Any]) -> DeliveryReport:
        """``event`` as a report of ``provider`` (its status and error tables applied)."""
        message_id, status, code = (
            _read(self.message_id, event),
            _read(self.status, event),
            _read(self.error_code, event),
        )
        if message_id is None or message_id == "":
            raise ValidationError(
                f"the {provider.display_name} event names no message id", provider=provider.name, field=UNNAMED_EVENT
            )
        status, code = (_number(status), _number(code)) if self.numbers else (status, as_text(code))
        failed = provider.statuses.normalize(status) in _FAILURES
        report = provider.build_report(
            message_id=message_id,
            vendor_status=status,
            recipient=as_number(_read(self.recipient, event)),
            idempotency_key=_read(self.idempotency_key, event),
            timestamp=self.time(_read(self.timestamp, event)) if self.time is not None else None,
            error_code=code if failed or not self.failure_codes_only else None,
            error_message=as_text(_read(self.error_message, event)),
            error_table=self.error_table,
            event_id=_read(self.event_id, event),
            raw=dict(event),
        )
        row = self.statuses.lookup(status) if self.statuses is not None else None
        if row is None and failed and self.reasons is not None:
            row = self.reasons.lookup(code)
        return dataclasses.replace(report, status=row.status) if row is not None else report


def _number(value: object) -> int | str | None:
    text = as_text(value)
    return int(text) if text is not None and text.isascii() and text.isdigit() else text


_PUNCTUATION: Final = re.compile(r"[\s().\-]")


@dataclasses.dataclass(frozen=True)
class Shapes:
    """Events of more than one shape, told apart by a field: the :class:`ReportFields` of the first
    of ``shapes`` whose key the event carries read it, else ``default`` (edna: an IM callback carries
    ``imOutMessageId``, a Pulse one does not). An adapter declares it as its ``webhook_fields``."""

    shapes: Mapping[str, ReportFields]
    default: ReportFields

    def report(self, provider: Provider, event: Mapping[str, Any]) -> DeliveryReport:
        """``event`` read by the fields of its shape."""
        fields = next((fields for key, fields in self.shapes.items() if key in event), self.default)
        return fields.report(provider, event)


def as_number(value: object) -> str | None:
    """A recipient as the report gives it: ``+<digits>`` when it is a phone number however written
    (``48500100200``, ``+48 500-100-200``, ``whatsapp:+48500100200``), else the vendor's text."""
    text = as_text(value)
    if text is None:
        return None
    text = text.rpartition(":")[2].strip()
    digits = _PUNCTUATION.sub("", text).removeprefix("+")
    return f"+{digits}" if digits.isdigit() else text
