"""Clickatell One API: SMS and WhatsApp through ``POST /v1/message``.

* Docs: https://docs.clickatell.com/channels/one-api/ (send, errors table, status table, callbacks).
* Auth: the integration API key as ``Authorization: <key>`` (no ``Bearer`` prefix).
* Host: ``https://platform.clickatell.com``; send ``POST /v1/message`` (``{"messages": [...]}``, one
  entry per recipient), status ``GET /v1/message/{apiMessageId}``, status callbacks as JSON ``POST``.

Quirks:

* **Two code namespaces that overlap.** Request errors (1–46, 100–111, ``ERRORS``) come back on the
  send, globally (``error``) or per message (``messages[i].error``), with HTTP 202/207/400/401/402/
  404/500/503. Message statuses (1–141, ``STATUSES``) come later, in callbacks and lookups. They share
  numbers: request error 25 is a bad recipient, status 25 is an empty balance; reports are built from
  ``STATUSES`` only, so the two never mix.
* Rate limiting is error **43 on HTTP 400** (not 429); 19/503 says "please retry". Both are retried.
* **207** (several messages, some rejected) and per-message errors in any answer give per-recipient
  results: all rejected raises the first recipient's typed error, some rejected lands in
  ``result.failed`` (``raise_for_failures()`` raises ``PartialFailure``).
* **No de-duplication.** ``clientMessageId`` (our idempotency key, the same for every recipient of
  one send) is a reference echoed in callbacks, not a guard. A timeout after the request went out, a
  truncated 2xx, or 18/500 ("internal error": the message may have been taken) is therefore not
  retried: ``send()`` raises ``DeliveryUnknown`` with the key.
* ``Message.options`` fields are merged into every message entry (e.g. vendor-only WhatsApp fields).
* Sends above 100 recipients are split into requests of 100; the first request's failure is raised,
  a later one's becomes per-recipient errors (``UNKNOWN`` status when its outcome is unknown).
* Statuses: the numbered table (1-141, seed and docs.clickatell.com) plus the names of the current
  One API status enum whose numbers are not published (``STOP_MARKETING_MESSAGES``,
  ``WHATSAPP_PARAMETER_INVALID``, ...; matched by name, the callback's number kept as the reason
  code). A name of a documented family the table does not list yet (``ANONYMOUS_USER_ID_*``,
  ``WHATSAPP_TEMPLATE_*``, ``MEDIA_*``, ...) reads as that family's final failure, not ``unknown``.
  Network failures (``EXPIRED``, ``DELIVERY_FAILURE``) are ``DeliveryFailed`` in ``report.error``.
* Callbacks may repeat and arrive out of order: every report keeps the vendor's millisecond timestamp
  so callers can order them. Event types other than ``messageStatusUpdate`` are ignored.

Unconfirmed points and the safe choice taken:

* Requests per call: 200 in the 2019 docs, 100 in a third-party client; we send at most 100.
* Scheduling, validity and media have no documented One API request field: refused before sending.
* ``from`` must be a number linked to the integration (44/45); alphanumeric senders are refused.
* Templates use the documented ``hsm`` form (``{"template", "parameters": {"1": ...}}``) and must carry
  their parameters; free-form WhatsApp text is sent as is (outside the 24-hour window the vendor
  answers status 131). SMS parts: at most 35 (the documented concatenation maximum).
* The error object shape (``{"code", "description"}``) comes from a third-party client; a flat
  ``errorCode``/``errorDescription`` or a plain string is read as well.
* A lookup of an unknown id answers without a channel key: raised as ``NotFound``. ``EMULATED`` (24)
  maps to ``unknown``. Callbacks are unsigned: pass ``integration_id=`` to refuse callbacks from other
  integrations, and keep a secret token in the callback URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from ..errors import (
    AuthError,
    DeliveryFailed,
    InsufficientBalance,
    InvalidRecipient,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    TemplateError,
    ValidationError,
)
from ..models import DeliveryReport, DeliveryStatus, Message, Template
from ._accepts import Accepts, Longest, Matches, PerRequest, Refused, Required, Without
from ._json import as_float, as_text
from ._webhook import Callback, SharedSecret, as_number
from .base import (
    Answer,
    BaseURL,
    Credential,
    ErrorCode,
    ErrorTable,
    Provider,
    StatusEntry,
    StatusTable,
    setting,
    utc_from_timestamp,
)

__all__ = ["Clickatell"]

#: Request-level error codes (send answer, global or per message). 29 and 34–37 are reserved.
ERRORS: Final = ErrorTable(
    {
        1: ErrorCode(AuthError, "Invalid or missing integration API key"),
        2: ErrorCode(PermissionDenied, "Account is not active"),
        3: ErrorCode(PermissionDenied, "Integration is not active"),
        7: ErrorCode(PermissionDenied, "Originating IP address is not approved in your integration"),
        18: ErrorCode(ServiceUnavailable, "Internal error", ambiguous=True),
        19: ErrorCode(ServiceUnavailable, "Internal error, please retry"),
        20: ErrorCode(InsufficientBalance, "Insufficient account balance"),
        21: ErrorCode(ValidationError, "Payload data is malformed"),
        22: ErrorCode(ValidationError, "Maximum messages per request payload exceeded"),
        23: ErrorCode(ValidationError, "Invalid or missing parameter"),
        24: ErrorCode(ValidationError, "Maximum message content size exceeded"),
        25: ErrorCode(InvalidRecipient, "Invalid recipient address"),
        26: ErrorCode(InvalidRecipient, "Recipient opted out"),
        27: ErrorCode(InvalidRecipient, "Recipient not available on channel"),
        28: ErrorCode(InvalidRecipient, "Recipient not available on sandbox"),
        30: ErrorCode(ValidationError, "Content type is not supported"),
        31: ErrorCode(ValidationError, "Media file size exceeds limit"),
        32: ErrorCode(ValidationError, "Media payload size exceeds limit"),
        33: ErrorCode(NotFound, "Media item not found"),
        38: ErrorCode(PermissionDenied, "Channel or feature is not active on the integration"),
        39: ErrorCode(PermissionDenied, "Channel is not available on the integration"),
        40: ErrorCode(ValidationError, "Character set is not supported"),
        41: ErrorCode(NotFound, "Resource does not exist"),
        42: ErrorCode(ValidationError, "HTTP method is not supported on the resource"),
        43: ErrorCode(RateLimited, "Rate limit"),
        44: ErrorCode(PermissionDenied, "FROM number is suspended"),
        45: ErrorCode(PermissionDenied, "FROM number is not related to the integration"),
        46: ErrorCode(PermissionDenied, "Demo access has expired"),
        100: ErrorCode(ValidationError, "(SMS) Maximum message parts exceeded"),
        101: ErrorCode(InvalidRecipient, "(SMS) Destination does not support two-way messaging"),
        110: ErrorCode(PermissionDenied, "(SMS) USA country limit: a two-way integration is required"),
        111: ErrorCode(PermissionDenied, "(SMS) USA country limit: STOP/SUBSCRIBE must be enabled on the integration"),
    }
)

_S = DeliveryStatus
#: The message status table: (code, name, DeliveryStatus, failure reason class, vendor detail).
_STATUS_ROWS: Final[tuple[tuple[int, str, DeliveryStatus, type[ProviderError] | None, str], ...]] = (
    (1, "UNKNOWN", _S.UNKNOWN, None, "Unknown status"),
    (2, "QUEUED", _S.QUEUED, None, "Queued"),
    (3, "SCHEDULED", _S.SCHEDULED, None, "Scheduled for later delivery"),
    (4, "SENT_TO_SUPPLIER", _S.SENT, None, "Sent to supplier"),
    (5, "DEVICE_ACK", _S.DELIVERED, None, "Device acknowledged delivery"),
    (6, "READ", _S.READ, None, "Read Receipt"),
    (20, "EXPIRED", _S.EXPIRED, DeliveryFailed, "The message has expired"),
    (21, "STOPPED_BY_USER", _S.CANCELLED, None, "Message stopped by user"),
    (22, "STOPPED_BY_ADMIN", _S.REJECTED, PermissionDenied, "Message stopped by admin"),
    (23, "DELIVERY_FAILURE", _S.UNDELIVERED, DeliveryFailed, "Error delivering message"),
    (24, "EMULATED", _S.UNKNOWN, None, "Emulated (simulated send; no real delivery)"),
    (25, "INSUFFICIENT_ACCOUNT_BALANCE", _S.REJECTED, InsufficientBalance, "Insufficient account balance"),
    (26, "VOLUME_LIMIT", _S.REJECTED, RateLimited, "Volume limit exceeded"),
    (27, "VOLUME_LIMIT_DAILY", _S.REJECTED, RateLimited, "Daily volume limit exceeded"),
    (28, "VOLUME_LIMIT_MONTHLY", _S.REJECTED, RateLimited, "Monthly volume limit exceeded"),
    (29, "RECIPIENT_DOES_NOT_EXIST", _S.UNDELIVERED, InvalidRecipient, "Recipient does not exist on channel"),
    (60, "ENCRYPTION_ACCESS_DENIED", _S.FAILED, PermissionDenied, "Security access denied"),
    (61, "ENCRYPTION_CONTENT_ERROR", _S.FAILED, ValidationError, "Content decryption failed"),
    (80, "MEDIA_NOT_FOUND", _S.FAILED, NotFound, "Media not found"),
    (81, "MEDIA_SIZE_ERROR", _S.FAILED, ValidationError, "Media size error"),
    (82, "MEDIA_CHECKSUM_FAILURE", _S.FAILED, ValidationError, "Media checksum failure"),
    (83, "MEDIA_REJECTED_BY_SUPPLIER", _S.REJECTED, ValidationError, "Channel supplier rejected media file"),
    (84, "MEDIA_METADATA_ERROR", _S.FAILED, ValidationError, "Media metadata not found or not matching the request"),
    (85, "MEDIA_ACCESS_ERROR", _S.FAILED, NotFound, "Media file could not be accessed (newer table)"),
    (100, "ROUTING_ERROR", _S.FAILED, ServiceUnavailable, "Routing error"),
    (130, "WHATSAPP_ACCOUNT_PAYMENT_ISSUE", _S.FAILED, PermissionDenied, "Whatsapp account payment issue"),
    (131, "WHATSAPP_RE_ENGAGEMENT_REQUIRED", _S.REJECTED, TemplateError, "Re-engagement required"),
    (132, "WHATSAPP_SPAM_RATE_LIMIT_REACHED", _S.REJECTED, RateLimited, "Spam rate limit reached"),
    (133, "WHATSAPP_SERVER_RATE_LIMIT", _S.FAILED, RateLimited, "Whatsapp server rate limit"),
    (134, "WHATSAPP_HSM_NOT_AVAILABLE", _S.REJECTED, TemplateError, "Whatsapp HSM request structure not available"),
    (139, "WHATSAPP_EXPERIMENTAL_NUMBER", _S.UNDELIVERED, DeliveryFailed, "Non-delivery: WhatsApp experimental number"),
    (140, "WHATSAPP_TEMPLATE_TEXT_TOO_LONG", _S.REJECTED, TemplateError, "Template text too long (newer table)"),
    (141, "WHATSAPP_TEMPLATE_FORMAT_MISMATCH", _S.REJECTED, TemplateError, "Template format mismatch (newer table)"),
)

#: Names of the current One API status enum whose numbers are not published (help.clickatell.com
#: One API reference; a public One API client's ``status.rs``), and spellings the issue tracker
#: reported (``WHATSAPP_HSM_PARAM_*``): (name, DeliveryStatus, failure reason class, vendor detail).
_NAMED_ROWS: Final[tuple[tuple[str, DeliveryStatus, type[ProviderError], str], ...]] = (
    ("STOP_MARKETING_MESSAGES", _S.REJECTED, InvalidRecipient, "The recipient stopped marketing messages"),
    ("EXCESSIVE_MESSAGES_TO_RECIPIENT", _S.REJECTED, RateLimited, "Too many messages to this recipient"),
    ("ENCRYPTION_VALIDATION_ERROR", _S.FAILED, ValidationError, "Encrypted content could not be validated"),
    ("MEDIA_TYPE_NOT_SUPPORTED", _S.FAILED, ValidationError, "The media type is not supported"),
    ("WHATSAPP_HSM_PARAM_COUNT_MISMATCH", _S.REJECTED, TemplateError, "Template parameter count mismatch"),
    ("WHATSAPP_HSM_IS_MISSING", _S.REJECTED, TemplateError, "Template is missing"),
    ("WHATSAPP_HSM_DOWNLOAD_FAILED", _S.REJECTED, TemplateError, "Template download failed"),
    ("WHATSAPP_HSM_PACK_IS_MISSING", _S.REJECTED, TemplateError, "Template language pack is missing"),
    ("WHATSAPP_HSM_PARAM_IS_MISSING", _S.REJECTED, TemplateError, "Template parameter is missing"),
    ("WHATSAPP_HSM_PARAM_DOWNLOAD_FAILED", _S.REJECTED, TemplateError, "Template parameter download failed"),
    ("WHATSAPP_HSM_PARAM_PACK_IS_MISSING", _S.REJECTED, TemplateError, "Template parameter pack is missing"),
    (
        "WHATSAPP_TEMPLATE_FORMATTING_POLICY_VIOLATED",
        _S.REJECTED,
        TemplateError,
        "The template text violates WhatsApp's formatting policy",
    ),
    ("WHATSAPP_TEMPLATE_MEDIA_FORMAT_UNSUPPORTED", _S.REJECTED, TemplateError, "Template media format unsupported"),
    ("WHATSAPP_PARAMETER_MISSING", _S.REJECTED, TemplateError, "A template parameter is missing"),
    ("WHATSAPP_PARAMETER_INVALID", _S.REJECTED, TemplateError, "A template parameter is invalid"),
    ("WHATSAPP_PARAMETER_NOT_REQUIRED", _S.REJECTED, TemplateError, "A parameter was given the template does not take"),
    ("WHATSAPP_TEMPLATE_INVALID_URL", _S.REJECTED, TemplateError, "A template button URL is invalid"),
    ("WHATSAPP_TEMPLATE_INVALID_PHONE_NUMBER", _S.REJECTED, TemplateError, "A template button number is invalid"),
    (
        "WHATSAPP_TEMPLATE_RECEIVER_NO_BUTTON_SUPPORT",
        _S.UNDELIVERED,
        DeliveryFailed,
        "The recipient's WhatsApp cannot show template buttons",
    ),
)

#: Families of names the vendor extends over time: a new member reads as a final failure.
STATUS_FAMILIES: Final = {
    "ANONYMOUS_USER_ID_": StatusEntry(_S.FAILED, "Anonymous user id errors (recipient)", InvalidRecipient),
    "ENCRYPTION_": StatusEntry(_S.FAILED, "Encryption errors", ValidationError),
    "MEDIA_": StatusEntry(_S.FAILED, "Media errors", ValidationError),
    "WHATSAPP_HSM_": StatusEntry(_S.REJECTED, "WhatsApp template (HSM) errors", TemplateError),
    "WHATSAPP_PARAMETER_": StatusEntry(_S.REJECTED, "WhatsApp template parameter errors", TemplateError),
    "WHATSAPP_TEMPLATE_": StatusEntry(_S.REJECTED, "WhatsApp template errors", TemplateError),
    "WHATSAPP_": StatusEntry(_S.FAILED, "Other WhatsApp delivery errors", DeliveryFailed),
}

#: Callbacks carry the number and the name; status lookups carry the name only.
STATUSES: Final = StatusTable(
    {
        **{code: StatusEntry(status, f"{name}: {detail}", exc) for code, name, status, exc, detail in _STATUS_ROWS},
        **{name: StatusEntry(status, f"({code}) {detail}", exc) for code, name, status, exc, detail in _STATUS_ROWS},
        **{name: StatusEntry(status, detail, exc) for name, status, exc, detail in _NAMED_ROWS},
    },
    case_insensitive=True,
    families=STATUS_FAMILIES,
)
DOC_TABLES: Final = [
    (
        "Status name families (a newer name of a family reads as its failure)",
        StatusTable({f"{prefix}*": entry for prefix, entry in STATUS_FAMILIES.items()}),
    )
]
#: Status name → its number, for the failure code on a report.
STATUS_CODES: Final = {name: code for code, name, *_ in _STATUS_ROWS}

MAX_SMS_PARTS: Final = 35
MAX_WHATSAPP_TEXT: Final = 4096
SENDER_PATTERN: Final = r"\+?[0-9]{3,15}"
_BAD_PARAMETER: Final = re.compile(r"[\n\t]| {5,}")
#: Text or a WhatsApp template (not both); a sender number; no media, schedule or validity fields.
ACCEPTS: Final = Accepts(
    recipients=PerRequest("{count} recipients: at most {most} recipients per request (send() splits)"),
    template=Refused("Template.language (the template name selects the approved language)", part="language"),
    text=(
        Required("text is required", instead="template"),
        Without("template", "a WhatsApp template carries no text: give text or a template, not both"),
    ),
    media=Refused("media messages (upload to /v1/media and pass the fields in options)"),
    sender=(
        Matches(r"\+*\d+", "alphanumeric sender ids (the sender is a number linked to the integration)", invalid=False),
        Matches(SENDER_PATTERN, "a number linked to the integration, 3 to 15 digits"),
    ),
    scheduled_at=Refused("scheduled_at (the One API has no scheduling field)"),
    validity=Refused("validity (the One API has no validity field)"),
    on={
        "sms": Accepts(template=Refused("templates on SMS (templates are WhatsApp only)")),
        "whatsapp": Accepts(
            text=Longest(MAX_WHATSAPP_TEXT, "WhatsApp text has {length} characters; {name} allows at most {most}")
        ),
    },
)


class Clickatell(Provider):
    """Clickatell One API adapter (SMS and WhatsApp).

    Args:
        api_key: the integration's API key (or ``OMNISEND_CLICKATELL_API_KEY``).
        base_url: overrides the host (tests, emulator, proxies).
        integration_id: when given, callbacks from another integration are refused.
    """

    name = "clickatell"
    display_name = "Clickatell"
    default_base_url = "https://platform.clickatell.com"
    channels = frozenset({"sms", "whatsapp"})
    errors = ERRORS
    statuses = STATUSES
    deduplicates = False
    webhook_auth = "shared secret (URL token or Basic auth); Clickatell does not sign"
    webhook_check = SharedSecret()
    status_lookup = True
    credential_env = "OMNISEND_CLICKATELL_API_KEY"
    max_recipients = 100
    owned_options = frozenset({"to", "clientMessageId"})
    max_sms_parts = MAX_SMS_PARTS
    answer = Answer(items="messages", recipient="to", message_id="apiMessageId")
    accepts = ACCEPTS

    _api_key: Credential = setting(default=None, alias="api_key", credential=True)
    base_url: BaseURL = setting(default=None)
    integration_id: str | None = setting(default=None, repr=True)
    webhook_secret: str | None = setting(default=None, callback_secret=True)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": self._api_key}

    # -- send -----------------------------------------------------------------------------

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        fields = self._content(message)
        fields["clientMessageId"] = idempotency_key
        if message.sender is not None:
            fields["from"] = message.sender.lstrip("+")
        fields.update(message.options)
        messages = [{"channel": message.channel, "to": to.lstrip("+"), **fields} for to in message.recipients]
        return self.build_http_request("POST", "/v1/message", headers=self._auth(), json={"messages": messages})

    def _content(self, message: Message) -> dict[str, Any]:
        """The channel-specific fields of one message entry: ``content``, or a WhatsApp template (``hsm``)."""
        if message.template is not None:
            template = message.template
            return {"hsm": {"template": template.name, "parameters": self._parameters(template)}}
        return {"content": message.text}

    def _parameters(self, template: Template) -> dict[str, str]:
        """Positional template parameters ``{"1": ..., "2": ...}``, checked as WhatsApp wants them."""
        values = template.named_params
        if not values:
            self.invalid(
                f"template {template.name!r} has no parameters; pass the values of {{{{1}}}}, {{{{2}}}}, … in params",
                field="template.params",
            )
        keys = [str(i) for i in range(1, len(values) + 1)]
        if set(values) != set(keys):
            self.invalid(
                "template parameters are positional: a list, or a dict keyed '1', '2', … without gaps",
                field="template.params",
            )
        for key in keys:
            if not values[key].strip() or _BAD_PARAMETER.search(values[key]):
                self.invalid(
                    f"template parameter {key} is empty or holds a new line, a tab or more than 4 spaces in a row",
                    field="template.params",
                )
        return {key: values[key] for key in keys}

    def answer_error(self, body: Mapping[str, Any], response: httpx.Response) -> tuple[object, object] | None:
        return _error_of(body)

    def item_error(self, item: Mapping[str, Any]) -> tuple[object, object] | None:
        return _error_of(item) or ((None, "not accepted") if item.get("accepted") is False else None)

    # -- status -----------------------------------------------------------------------------

    def build_status_request(self, message_id: str) -> httpx.Request:
        return self.build_http_request("GET", f"/v1/message/{quote(message_id, safe='')}", headers=self._auth())

    def parse_status(self, response: httpx.Response, *, message_id: str | None = None) -> DeliveryReport:
        body = self.read_answer(response)
        channels = [v for v in body.values() if isinstance(v, dict) and "status" in v]
        if not channels:
            raise NotFound(
                "Clickatell does not know this message id",
                provider=self.name,
                http_status=response.status_code,
                raw=body,
            )
        latest = max(channels, key=lambda entry: as_float(entry.get("timestamp"), 0.0))
        return self._report(latest, message_id=message_id, raw=body)

    # -- webhook ----------------------------------------------------------------------------

    def webhook_events(self, payload: Any, callback: Callback) -> list[Mapping[str, Any]]:
        """Every ``event.messageStatusUpdate[]`` entry, in the order sent (other event types: none);
        a callback from another integration than ``integration_id`` is refused."""
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), dict):
            raise ValidationError("not a One API callback: no 'event' object", provider=self.name, field="event")
        if self.integration_id is not None and str(payload.get("integrationId")) != self.integration_id:
            raise ValidationError(
                "callback from another integration", provider=self.name, field="integrationId", raw=payload
            )
        updates = payload["event"].get("messageStatusUpdate") or []
        updates = [updates] if isinstance(updates, dict) else updates
        if not isinstance(updates, list):
            raise ValidationError(
                "'event.messageStatusUpdate' is neither an object nor a list", provider=self.name, field="event"
            )
        return [u for u in updates if isinstance(u, dict)]

    def webhook_report(self, event: Mapping[str, Any], callback: Callback) -> DeliveryReport:
        return self._report(event, message_id=event.get("messageId"), raw=event)

    def _report(self, entry: Mapping[str, Any], *, message_id: object, raw: object) -> DeliveryReport:
        """A report from a status entry (name and/or number); the failure code is the status number."""
        name, number = entry.get("status"), entry.get("statusCode")
        vendor_status: object
        code: object
        if isinstance(name, str) and name.upper() in STATUS_CODES:
            vendor_status, code = name, STATUS_CODES[name.upper()]
        elif isinstance(name, str) and name and STATUSES.lookup(name) is not None:
            vendor_status, code = name, name if number in (None, "") else number
        elif STATUSES.lookup(number) is not None or name in (None, ""):
            vendor_status, code = number, number
        else:
            vendor_status, code = name, number
        timestamp = entry.get("timestamp")
        return self.build_report(
            message_id=message_id,
            vendor_status=vendor_status,
            recipient=as_number(entry.get("to")),
            idempotency_key=entry.get("clientMessageId"),
            timestamp=utc_from_timestamp(timestamp, millis=True),
            error_code=code if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
            event_id=f"{message_id}:{vendor_status}:{timestamp}",
            raw=raw,
        )


def _error_of(obj: Mapping[str, Any]) -> tuple[Any, str | None] | None:
    """``(code, description)`` of an error object, flat error fields or a plain string; ``None`` if none."""
    error = obj.get("error")
    if isinstance(error, dict) and (error.get("code") is not None or error.get("description")):
        return error.get("code"), as_text(error.get("description") or error.get("message"))
    if obj.get("errorCode") not in (None, "", 0):
        return obj["errorCode"], as_text(obj.get("errorDescription") or error)
    if isinstance(error, (str, int)) and not isinstance(error, bool) and error not in ("", 0):
        return (error, None) if isinstance(error, int) or error.isdigit() else (None, error)
    return None
