"""edna (edna.io / edna.ru): the edna Pulse cascade API and the legacy IM API.

* Docs: https://docs-pulse.edna.io (Pulse) and https://docs.edna.io/kb/ (IM API, "Available Status Codes").
* Auth: the API key as ``X-API-KEY`` on both APIs (``Edna(api_key=...)`` or ``OMNISEND_EDNA_API_KEY``).
* ``Edna(api="pulse")`` (default, current): ``POST /api/cascade/schedule`` on ``https://app.edna.io``
  (``region="ru"``: ``app.edna.ru``). ``Edna(api="im")``: ``POST /api/imOutMessage`` (session
  messages) and ``POST /api/imOutHSM`` (WhatsApp templates) on ``https://im.edna.io`` (``im.edna.ru``).

Quirks:

* Unconfirmed: edna documents no SMS length limit. SMS texts needing more than 10 parts (1530 GSM-7
  or 670 UCS-2 characters) are refused before sending, a ceiling most routes share.
* One recipient per request: a message to several numbers is one request per number, with the ids
  ``<key>--1``, ``<key>--2``, ... A number edna refuses is a failed recipient (``result.failed``); any
  other error is raised while no number was accepted, and is the error of its number after that
  (status ``unknown`` when edna may have taken it). Numbers go out as digits without ``+``.
* Pulse sends from the cascade's channel: pass ``cascade_id=`` (one id, or one per channel, e.g.
  ``{"sms": 101, "whatsapp": 102}``; a cascade needs one content block per channel it holds, so add
  blocks for multi-channel cascades with ``options={"content": {...}}``). ``sender`` and ``validity``
  are refused on Pulse: they belong to the cascade. The IM API takes the sender as ``subject``
  (``Message.sender`` or ``Edna(subject=...)``), ``validityPeriodSeconds``, ``priority`` and an ``id`` of
  at most 36 characters.
* WhatsApp templates are matched **by text**: ``Template.name`` names a text registered with
  ``Edna(templates={"order_ready": "Order {{1}} is ready"})``, or ``Message.text`` is the approved text.
  ``{{1}}``/``{{name}}`` placeholders are filled from ``Template.params``; every placeholder and
  parameter must pair up. Header, footer and buttons go in ``options["header"|"footer"|"keyboard"]``
  (edna's shape); they make the message a template message, so they need a template.
* Media: ``Media.url`` must be https. A WhatsApp location: ``options={"location": {"latitude": ..,
  "longitude": .., "address": ..}}`` (``text`` is the address when none is given).
* Other ``options`` are merged into the JSON body untouched (nested objects merged).
* Errors: Pulse answers problem details (``title``, ``status``, ``detail``; the code is in ``title``),
  the IM API ``{"code": ...}`` (``ok`` on success). Codes match case-insensitively and keep the
  vendor's spelling (``error-longtitude-not-specified``; ``not-template-match`` also as
  ``error-not-template-match``, the spelling of edna's PHP SDK). A problem title not in the tables
  takes its class from the HTTP status and keeps the title as the code.
* De-duplication: the IM ``id`` must be unique (``error-id-not-unique``) and Pulse cancels an
  identical message to the same address within 20 minutes. So ambiguous failures (timeouts, 5xx
  without a code, ``error-system``) are retried with the same id, and ``error-id-not-unique`` on a
  retry means the first attempt landed. Re-sending a failed multi-recipient send with the same
  ``idempotency_key`` is safe for the same reason. The CANCELLED-duplicate rule: a retry that edna
  takes and cancels as a duplicate leaves a ``CANCELLED`` status under the same ``requestId`` as the
  copy that landed, so on Pulse a ``CANCELLED`` callback reads as ``unknown`` (not final; the vendor
  status is kept), and a status lookup reads every history item of the request id: ``cancelled``
  only when every copy was cancelled, else the latest status of the others.
* Pulse status lookups page through ``messages/history`` (``direction=OUT``, ``dateFrom``/``dateTo``
  over ``status_window``, ``offset``/``limit`` 1000, newest first; at most 10 pages) and match the
  request id in the items: ``requestId`` is not a documented filter.
* Statuses: the seed's words, matched case-insensitively (Pulse sends them upper-case). A failure
  report carries edna's error code (``not-whatsapp-user``, ...) typed through the code table.
* Webhooks: ``parse_webhook`` reads the Pulse status callback (``requestId``, ``messageId``, ``status``,
  ``statusAt``, ``error``) and the IM callback (``imOutMessageId``, ``dlvStatus``, ``dlvStatusAt``,
  ``dlvError``). With ``Edna(webhook_key=...)`` (the key of "Authenticate webhooks from edna Pulse")
  a callback must carry it in ``X-API-KEY`` (``webhook_key_header=`` to change), compared in
  constant time; otherwise ``WebhookAuthError`` (an ``AuthError``).

Unconfirmed, and the safe choice made: whether Pulse refuses a repeated ``requestId`` (handled
either way: a duplicate answer on a retry is success, an accepted repeat is cancelled by edna);
the webhook key's header name (configurable); the answer shape of ``messages/history`` (a list,
or ``messages``/``content``; items matched by ``requestId`` or edna's ``messageId``, else
``NotFound``) and whether ``offset`` counts items (as read here) or pages; the Pulse shapes of media captions (``caption``) and locations (``location``);
whether edna accepts ``+`` in numbers (never sent); Pulse's upper-case spelling of
``no-match-template`` (``NO_MATCH_TEMPLATE`` accepted too). edna publishes no rate limit: HTTP 429
is handled by the base (``RateLimited``, ``Retry-After``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx

from ..errors import (
    AuthError,
    ConfigurationError,
    DeliveryFailed,
    DuplicateMessage,
    InsufficientBalance,
    InvalidRecipient,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    TemplateError,
    ValidationError,
)
from ..models import DeliveryReport, DeliveryStatus, Message, Template
from ._accepts import NOT_PAST, Accepts, Longest, OneOf, PerRequest, Refused, Required, Url, Within, Without
from ._json import as_float, as_text, compact, file_name, merged, placed, utc_iso
from ._webhook import First, HeaderKey, Joined, ReportFields, Shapes
from .base import (
    Answer,
    BaseURL,
    Converted,
    Credential,
    ErrorCode,
    ErrorTable,
    Flow,
    Hosts,
    Provider,
    Repeat,
    StatusEntry,
    StatusTable,
    Step,
    setting,
    utc_reader,
)

__all__ = ["Edna"]

_V = ValidationError
ERRORS: Final = ErrorTable(
    {
        # Request processing codes.
        "error-system": ErrorCode(ServiceUnavailable, "System error", ambiguous=True),
        "error-content-do-not-match-hsm-template": ErrorCode(
            TemplateError, "The message does not match the registered HSM template."
        ),
        "error-insufficient-balance": ErrorCode(
            InsufficientBalance,
            "Not enough funds on the balance. Please top up your balance in your dashboard or contact your personal manager.",
        ),
        "error-id-not-unique": ErrorCode(
            DuplicateMessage, "The message ID is not unique within the entire interaction."
        ),
        "error-subject-format": ErrorCode(_V, "Invalid format of the subject value"),
        "error-subject-unknown": ErrorCode(PermissionDenied, "The subject is not allowed for this client."),
        "error-address-format": ErrorCode(InvalidRecipient, "Invalid format of the address number"),
        "error-address-not-specified": ErrorCode(_V, "The request parameters miss the required address number."),
        "error-priority-format": ErrorCode(_V, "Invalid format of the priority value"),
        "error-start-time-format": ErrorCode(_V, "Invalid format of the start time value"),
        "error-validity-period-seconds-format": ErrorCode(_V, "Invalid format of the validity period value"),
        "error-content-type-format": ErrorCode(_V, "Invalid content type (invalid format of the message content type)"),
        "error-im-type-not-specified": ErrorCode(_V, "Type of the messenger is not defined."),
        "error-attachment-url-not-specified": ErrorCode(_V, "Empty attachmentUrl in message"),
        "error-latitude-not-specified": ErrorCode(_V, "Latitude is not defined."),
        "error-longtitude-not-specified": ErrorCode(_V, "Longitude is not defined."),
        "error-content-format": ErrorCode(_V, "Invalid format of the message content"),
        "error-content-type-not-specified": ErrorCode(_V, "Content is not defined."),
        "error-comment-format": ErrorCode(_V, "Invalid comment format"),
        "error-subject-id-format": ErrorCode(_V, "Invalid ID message"),
        "not-template-match": ErrorCode(TemplateError, "Invalid message template"),
        "error-not-template-match": ErrorCode(TemplateError, "Invalid message template (edna PHP SDK spelling)"),
        "not-whatsapp-user": ErrorCode(InvalidRecipient, "The address is not a WhatsApp user."),
        "not-viber-user": ErrorCode(InvalidRecipient, "The address is not a Viber user."),
        "user-blocked": ErrorCode(InvalidRecipient, "User was blocked."),
        # Connector codes.
        "error-system-blocked": ErrorCode(PermissionDenied, "System is blocked"),
        "error-syntax": ErrorCode(_V, "Invalid syntax"),
        "error-unauthorized": ErrorCode(AuthError, "Not unauthorized"),
        "error-not-found": ErrorCode(NotFound, "Error not found"),
    },
    case_insensitive=True,
)

#: Problem-details titles of the Pulse API that are not in the seed table (``Edna.errors`` holds both).
PULSE_ERRORS: Final = ErrorTable(
    {
        "cascade-scheduling-request-not-valid": ErrorCode(
            _V, "Cascade scheduling request is not valid (content blocks must match the cascade's channels)."
        ),
    },
    case_insensitive=True,
)
_ALL_ERRORS: Final = ErrorTable({**ERRORS, **PULSE_ERRORS}, case_insensitive=True)

_S = DeliveryStatus
STATUSES: Final = StatusTable(
    {
        "enqueued": StatusEntry(_S.QUEUED, "The message is in queue for sending."),
        "delayed": StatusEntry(_S.SCHEDULED, "Message delivery is delayed according to the specified start time."),
        "sent": StatusEntry(_S.SENT, "The message has been sent to the address."),
        "delivered": StatusEntry(_S.DELIVERED, "The message has been delivered to the address."),
        "read": StatusEntry(_S.READ, "The message has been read by the recipient."),
        "undelivered": StatusEntry(
            _S.UNDELIVERED, "The message has been sent, but can't be delivered to the address.", DeliveryFailed
        ),
        "failed": StatusEntry(
            _S.FAILED, "The message could not be delivered to the specified address.", DeliveryFailed
        ),
        "expired": StatusEntry(_S.EXPIRED, "No delivered status within the validity period (or 24 hours)."),
        "cancelled": StatusEntry(_S.CANCELLED, "The message has been cancelled."),
        "no-match-template": StatusEntry(
            _S.REJECTED, "The message doesn't match any of the allowed template.", TemplateError
        ),
        "no_match_template": StatusEntry(_S.REJECTED, "no-match-template, underscore spelling.", TemplateError),
    },
    case_insensitive=True,
)

#: Pulse events read differently from ``STATUSES``: edna cancels an identical message to the same
#: address within 20 minutes, so a CANCELLED event may be the fate of a retry whose first copy
#: landed (same ``requestId``). Alone it is not final; a status lookup settles it (``status_flow``).
PULSE_EVENT_STATUSES: Final = StatusTable(
    {
        "cancelled": StatusEntry(
            _S.UNKNOWN,
            "Cancelled; on Pulse possibly a repeat of a message that landed (20-minute duplicate rule): "
            "not final, never hides another copy's status; a lookup reports cancelled when every copy was",
        )
    },
    case_insensitive=True,
)

DOC_TABLES: Final = [("Pulse callback statuses read differently", PULSE_EVENT_STATUSES)]

Api = Literal["pulse", "im"]
HOSTS: Final = {
    ("pulse", "io"): "https://app.edna.io",
    ("pulse", "ru"): "https://app.edna.ru",
    ("im", "io"): "https://im.edna.io",
    ("im", "ru"): "https://im.edna.ru",
}


@dataclass(frozen=True, slots=True)
class _Api:
    """How one edna API spells a send: its paths and where the content fields go (what it accepts: ``ACCEPTS``)."""

    paths: tuple[str, str]
    """The send path of a session message and of a template message."""
    upper: bool
    """Whether ``contentType`` is upper-case (``TEXT``) or lower-case (``text``)."""
    fields: Mapping[str, tuple[str, ...]]
    """Where a content field goes (a path of keys in the content), when not under its own name."""


APIS: Final = {
    "pulse": _Api(
        ("/api/cascade/schedule", "/api/cascade/schedule"),
        upper=True,
        fields={
            "url": ("attachment", "url"),
            "name": ("attachment", "name"),
            "latitude": ("location", "latitude"),
            "longitude": ("location", "longitude"),
            "address": ("location", "address"),
        },
    ),
    "im": _Api(
        ("/api/imOutMessage", "/api/imOutHSM"),
        upper=False,
        fields={"url": ("attachmentUrl",), "name": ("attachmentName",), "address": ("locationAddress",)},
    ),
}
PULSE_BLOCKS: Final = {"sms": "smsContent", "whatsapp": "whatsappContent", "viber": "viberContent"}
MEDIA_ON: Final = "{value} media on {channel}"
#: What each channel carries: media types and templates (a location, ``options["location"]``, only
#: in a plain WhatsApp message: ``_content``).
CHANNELS: Final = {
    "sms": Accepts(
        template=Refused("templates on sms (edna templates are WhatsApp HSM)"), media=OneOf((), MEDIA_ON, "type")
    ),
    "viber": Accepts(
        template=Refused("templates on viber (edna templates are WhatsApp HSM)"),
        media=OneOf(("image",), MEDIA_ON, "type"),
    ),
    "whatsapp": Accepts(
        media=(
            OneOf(("image", "video", "audio", "document"), MEDIA_ON, "type"),
            Without("template", "a WhatsApp template takes media as options['header'] (edna's shape)"),
        )
    ),
}
#: What both APIs take: one number per request, a time not in the past, media over HTTPS.
BOTH: Final = Accepts(
    recipients=PerRequest("edna takes one recipient per request (Client.send sends one request per number)"),
    scheduled_at=NOT_PAST,
    media=Url(("https",), "media.url must be an https:// URL: edna fetches media over HTTPS only"),
    on=CHANNELS,
)
#: Pulse sends from the cascade's channel, with its validity; the IM API takes a sender (``subject``,
#: or ``Edna(subject=)``), a validity in whole seconds, an id of at most 36 characters, no SMS.
ACCEPTS: Final = {
    "pulse": replace(
        BOTH,
        sender=Refused("a sender on Pulse (it sends from the cascade's channel: leave sender out, or use api='im')"),
        validity=Refused("a per-message validity on Pulse (set the stage TTL on the cascade)"),
    ),
    "im": replace(
        BOTH,
        channel=OneOf(("whatsapp", "viber"), "the {value!r} channel on the im API"),
        sender=Required("the IM API needs a subject: pass Message(sender=...) or Edna(subject=...)", default="subject"),
        validity=Within(least=timedelta(seconds=1), why="validity must be at least 1 second", invalid=True),
        idempotency_key=Longest(36, "the IM id allows {most} characters: shorten idempotency_key"),
    ),
}
DOC_ACCEPTS: Final = [('`api="pulse"` (the default)', ACCEPTS["pulse"]), ('`api="im"`', ACCEPTS["im"])]
LOCATION_REFUSED: Final = "a location outside a plain WhatsApp message"
PRIORITIES: Final = ("realtime", "high", "normal", "low")
TEMPLATE_PARTS: Final = ("header", "footer", "keyboard")
CONSUMED_OPTIONS: Final = frozenset({*TEMPLATE_PARTS, "location"})
COORDINATE_LIMITS: Final = {"latitude": 90, "longitude": 180}
#: Pulse status lookups: history items per page (the documented example's ``limit``), pages read
#: at most, the default window of ``dateFrom``, and the query's fixed part (only documented filters).
HISTORY_PAGE: Final = 1000
HISTORY_PAGES: Final = 10
STATUS_WINDOW: Final = timedelta(days=7)
HISTORY_SCOPE: Final = f"the account's newest {HISTORY_PAGES * HISTORY_PAGE} outbound messages of the last {{window}}"
HISTORY_QUERY: Final = {
    "direction": "OUT",
    "limit": HISTORY_PAGE,
    "sort": [{"property": "messageId", "direction": "DESC"}],
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def _cascades(value: int | Mapping[str, int] | None) -> dict[str, int]:
    """``cascade_id`` as ``{channel: id}``; ``ConfigurationError`` when it is not ids of known channels."""
    if value is None:
        return {}
    mapping = value if isinstance(value, Mapping) else dict.fromkeys(PULSE_BLOCKS, value)
    for channel, cascade in mapping.items():
        if channel not in PULSE_BLOCKS or isinstance(cascade, bool) or not isinstance(cascade, int) or cascade < 1:
            raise ConfigurationError(
                f"edna: cascade_id must be a positive int or {{channel: int}} with channels {sorted(PULSE_BLOCKS)}, "
                f"got {channel!r}: {cascade!r}"
            )
    return dict(mapping)


#: edna's timestamps: ``2025-01-30T11:07:55Z``, ``2021-01-15T11:41:20.000+0000``.
_time: Final = utc_reader("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")

#: The two shapes of a status event (callbacks, status answers, Pulse history items). Pulse events
#: read ``CANCELLED`` as not final (``PULSE_EVENT_STATUSES``); the message id is ours (``requestId``)
#: when the event carries it, else edna's.
PULSE_EVENT: Final = ReportFields(
    message_id=First("requestId", "messageId"),
    status="status",
    idempotency_key="requestId",
    timestamp="statusAt",
    error_code="error",
    event_id=Joined(":", "messageId", "status", "statusAt"),
    time=_time,
    error_table=_ALL_ERRORS,
    statuses=PULSE_EVENT_STATUSES,
)
IM_EVENT: Final = ReportFields(
    message_id="imOutMessageId",
    status="dlvStatus",
    idempotency_key="imOutMessageId",
    timestamp="dlvStatusAt",
    error_code="dlvError",
    event_id=Joined(":", "imOutMessageId", "dlvStatus", "dlvStatusAt"),
    time=_time,
    error_table=_ALL_ERRORS,
)
#: A status event of either API (callbacks; status answers and history items are read by their own).
EVENTS: Final = Shapes({"imOutMessageId": IM_EVENT}, default=PULSE_EVENT)


class Edna(Provider):
    """edna adapter: edna Pulse (``api="pulse"``, default) or the IM API (``api="im"``).

    Args:
        api_key: the API key (or ``OMNISEND_EDNA_API_KEY``).
        api: ``"pulse"`` (``cascade/schedule``) or ``"im"`` (``imOutMessage``/``imOutHSM``).
        region: ``"io"`` (default) or ``"ru"``: the host of the account.
        base_url: overrides the host (tests, emulator, proxies).
        cascade_id: Pulse cascade, one id or ``{channel: id}``.
        subject: IM sender name used when ``Message.sender`` is not set.
        priority: IM priority, one of ``realtime``, ``high``, ``normal``, ``low``.
        templates: WhatsApp template name → approved text with ``{{1}}`` placeholders.
        webhook_key: the webhook key; callbacks without it are refused.
        webhook_key_header: the header carrying the webhook key.
        status_window: how far back a Pulse status lookup searches the history (default 7 days).
    """

    name = "edna"
    display_name = "edna"
    channels = frozenset({"sms", "whatsapp", "viber"})
    errors = _ALL_ERRORS
    statuses = STATUSES
    deduplicates = True
    #: IM: ``{"code": ...}`` (``ok`` is success). Pulse: problem details, the code in ``title`` (on
    #: error statuses only), ``detail`` its words. The message keeps the id we chose (``requestId``/``id``).
    answer = Answer(
        code="code",
        failure_code="title",
        text=("detail", "message"),
        ok_codes=("ok",),
        message_id=("requestId", "id"),
        id_is_key=True,
    )
    webhook_auth = "webhook key in a header (`X-API-KEY`)"
    webhook_check = HeaderKey("X-API-KEY")
    webhook_fields = EVENTS
    status_lookup = True
    credential_env = "OMNISEND_EDNA_API_KEY"
    max_recipients = 1
    max_sms_parts = 10
    """edna documents no SMS length limit; 10 parts (1530 GSM-7 / 670 UCS-2 characters) is a safe
    ceiling shared by most SMS routes, refused before sending rather than cut by an operator."""
    owned_options = frozenset({"requestId", "id", "subscriberFilter", "address"})
    accepts = ACCEPTS["pulse"]
    hosts = Hosts(HOSTS, "api", "region")

    _api_key: Credential = setting(default=None, alias="api_key", credential=True)
    api: Api = setting(default="pulse", repr=True)
    region: Literal["io", "ru"] = setting(default="io")
    base_url: BaseURL = setting(default=None)
    cascades: Converted[int | Mapping[str, int] | None, dict[str, int]] = setting(
        default=None, alias="cascade_id", convert=_cascades
    )
    subject: str | None = setting(default=None)
    priority: str | None = setting(default=None, choices=PRIORITIES)
    templates: Converted[Mapping[str, str] | None, dict[str, str]] = setting(default=None)
    webhook_secret: str | None = setting(default=None, alias="webhook_key", callback_secret=True)
    webhook_key_header: str = setting(default="X-API-KEY")
    status_window: timedelta = setting(default=STATUS_WINDOW, positive=True)

    def __post_init__(self) -> None:
        self.templates = dict(self.templates or {})
        self.webhook_secret = self.webhook_secret and self.webhook_secret.strip()
        self.webhook_check = HeaderKey(self.webhook_key_header)

    def _auth(self) -> dict[str, str]:
        return {"X-API-KEY": self._api_key}

    # -- send -----------------------------------------------------------------------------

    def accepts_for(self, message: Message) -> Accepts:
        """The declaration of the API this instance sends through (Pulse or IM)."""
        return ACCEPTS[self.api]

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        api = APIS[self.api]
        kind, fields = self._content(message)
        content = placed({"contentType": kind.upper() if api.upper else kind, **fields}, api.fields)
        body = (self._pulse_body if self.api == "pulse" else self._im_body)(message, idempotency_key, content)
        extra = {k: v for k, v in message.options.items() if k not in CONSUMED_OPTIONS}
        path = api.paths[message.template is not None]
        return self.build_http_request("POST", path, headers=self._auth(), json=merged(compact(body), extra))

    def _content(self, message: Message) -> tuple[str, dict[str, Any]]:
        """The content type and fields of ``message`` (API-neutral names): a template, else a location
        (an option, checked here), else media, else text. Media and templates were checked against
        ``CHANNELS``."""
        template, location, media = message.template, message.options.get("location"), message.media
        parts = [k for k in TEMPLATE_PARTS if k in message.options]
        if parts and template is None:
            self.invalid(f"{', '.join(parts)} need a WhatsApp template: pass template=Template(...)", field="template")
        if template is not None:
            return "text", self._template(message, template)
        if location is not None:
            return "location", self._location(message, location)
        if media is None:
            return "text", {"text": message.text}
        return media.type, {"url": media.url, "name": file_name(media.url), "caption": media.caption or message.text}

    def _template(self, message: Message, template: Template) -> dict[str, Any]:
        """A WhatsApp template, matched by text: the registered (or given) text with its placeholders
        filled, and its header, footer and buttons."""
        if message.options.get("location") is not None:
            self.invalid("a WhatsApp template takes media as options['header'] (edna's shape)", field="media")
        registered = self.templates.get(template.name)
        if registered is not None and message.text is not None:
            self.invalid(f"template {template.name!r} is registered on Edna(templates=): leave text out", field="text")
        source = registered if registered is not None else message.text
        if source is None:
            how = f"register {template.name!r} with Edna(templates={{name: approved text}}) or pass it as Message.text"
            self.invalid(f"edna matches WhatsApp templates by their text: {how}", field="template", error=TemplateError)
        parts = {k: v for k, v in message.options.items() if k in TEMPLATE_PARTS}
        return {"text": self._filled(source, template), **parts}

    def _filled(self, source: str, template: Template) -> str:
        """``source`` with its ``{{1}}``/``{{name}}`` placeholders filled from ``template.params``; every
        placeholder and every parameter must pair up."""
        values = template.named_params
        found = set(_PLACEHOLDER.findall(source))
        unpaired = {"missing": found - values.keys(), "unused": values.keys() - found}
        wrong = ", ".join(f"{label} {sorted(names)}" for label, names in unpaired.items() if names)
        if wrong:
            why = f"template {template.name!r} has placeholders {sorted(found)}: parameters {wrong}"
            self.invalid(why, field="template.params", error=TemplateError)
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], source)

    def _location(self, message: Message, location: object) -> dict[str, Any]:
        """A WhatsApp location alone (no media): numeric ``latitude`` and ``longitude`` within range,
        the address or the text."""
        if message.channel != "whatsapp" or message.media is not None:
            self.unsupported(LOCATION_REFUSED)
        if not isinstance(location, Mapping):
            self.invalid("options['location'] must be a mapping with latitude and longitude", field="options.location")
        values = {name: as_float(location.get(name)) for name in COORDINATE_LIMITS}
        for name, limit in COORDINATE_LIMITS.items():
            if not -limit <= values[name] <= limit:  # NaN (missing, not a number) fails too
                why = f"a location needs a numeric {name} between -{limit} and {limit}"
                self.invalid(why, field=f"options.location.{name}")
        return {**values, "address": location.get("address") or message.text}

    def _pulse_body(self, message: Message, message_id: str, content: dict[str, Any]) -> dict[str, Any]:
        cascade = message.options.get("cascadeId", self.cascades.get(message.channel))
        if cascade is None:
            why = f"no Pulse cascade for {message.channel}: pass Edna(cascade_id=...) or options={{'cascadeId': ...}}"
            raise ConfigurationError(f"edna: {why}", provider=self.name)
        return {
            "requestId": message_id,
            "cascadeId": cascade,
            "subscriberFilter": {"address": message.recipients[0].lstrip("+"), "type": "PHONE"},
            "startTime": utc_iso(message.scheduled_at),
            "content": {PULSE_BLOCKS[message.channel]: content},
        }

    def _im_body(self, message: Message, message_id: str, content: dict[str, Any]) -> dict[str, Any]:
        validity = int(message.validity.total_seconds()) if message.validity is not None else None
        return {
            "id": message_id,
            "subject": message.sender or self.subject,
            "address": message.recipients[0].lstrip("+"),
            "imType": message.channel,
            "priority": self.priority,
            "validityPeriodSeconds": validity,
            "startTime": utc_iso(message.scheduled_at, millis=True),
            **content,
        }

    # -- status -----------------------------------------------------------------------------

    def build_status_request(self, message_id: str) -> httpx.Request:
        """IM: ``GET imOutMessage/{id}``. Pulse: the first ``messages/history`` page (see :meth:`status_flow`)."""
        if self.api == "im":
            path = f"/api/imOutMessage/{quote(message_id, safe='')}"
            return self.build_http_request("GET", path, headers=self._auth())
        return self._history_request(0, datetime.now(timezone.utc))

    def _history_request(self, page: int, now: datetime) -> httpx.Request:
        """One page of the account's outbound history within ``status_window``, newest first.

        Only documented filters (docs-pulse.edna.io messages/history): ``direction``, ``dateFrom``/
        ``dateTo`` and ``offset``/``limit`` paging, sorted by ``messageId``. ``subscriberFilter``
        needs the recipient, which a lookup by id does not have; the request id is matched in the items.
        """
        window = {"dateFrom": utc_iso(now - self.status_window), "dateTo": utc_iso(now + timedelta(minutes=1))}
        query = {**HISTORY_QUERY, **window, "offset": page * HISTORY_PAGE}
        return self.build_http_request("POST", "/api/messages/history", headers=self._auth(), json=query)

    def status_flow(self, message_id: str) -> Flow[DeliveryReport]:
        """IM: one lookup. Pulse: ``messages/history`` pages (newest first) until the request id is found.

        Every item carrying the request id is read (see :meth:`_settled`). The search stops at the
        first page after the matches, at the end of the history, or after ``HISTORY_PAGES`` pages
        (``NotFound`` then). An empty id is refused by the base's lookup.
        """
        if self.api == "im" or not isinstance(message_id, str) or not message_id.strip():
            return (yield from super().status_flow(message_id))
        now, found = datetime.now(timezone.utc), []
        parse = functools.partial(self._parse_history, message_id=message_id)
        for page in range(HISTORY_PAGES):
            items, full = yield Step(self._history_request(page, now), parse, repeat=Repeat.READ)
            found += items
            if (found and not items) or not full:
                break
        return self._settled(found, message_id, HISTORY_SCOPE.format(window=self.status_window))

    def _parse_history(self, response: httpx.Response, *, message_id: str) -> tuple[list[dict[str, Any]], bool]:
        """The items of one history page (a list, or its ``messages``/``content``) naming ``message_id``
        as ``requestId`` or as edna's ``messageId``, and whether the page was full."""
        items = self.read_list(response, "messages", "content")
        mine = [i for i in items if message_id in (as_text(i.get("requestId")), as_text(i.get("messageId")))]
        return mine, len(items) >= HISTORY_PAGE

    def _settled(self, items: list[dict[str, Any]], message_id: str, where: str) -> DeliveryReport:
        """The report of a request id from all its history items; ``NotFound`` when there are none.

        Pulse cancels an identical message to the same address within 20 minutes, so a retry of a
        message that landed can leave a ``CANCELLED`` item with the same request id beside the
        delivered one. The rule: a cancelled item never hides another item's status (the latest
        one, by ``statusAt`` then ``messageId``); the report is ``cancelled`` only when every copy was.
        """
        if not items:
            why = f"no message with request id {message_id!r} among {where}"
            raise self.vendor_error("error-not-found", vendor_message=why)
        copies = [(PULSE_EVENT.report(self, item), as_float(item.get("messageId"), 0.0)) for item in items]
        landed = [c for c in copies if str(c[0].vendor_status).lower() != "cancelled"]
        latest, _ = max(landed or copies, key=lambda c: (c[0].timestamp or _EPOCH, c[1]))
        return latest if landed else replace(latest, status=_S.CANCELLED)  # every copy was cancelled: final

    def parse_status(self, response: httpx.Response, *, message_id: str | None = None) -> DeliveryReport:
        """One status answer: IM ``imOutMessage/{id}``, or one Pulse history page (its items of ``message_id``)."""
        if self.api == "im":
            return IM_EVENT.report(self, self.read_answer(response))
        items, _ = self._parse_history(response, message_id=message_id or "")
        return self._settled(items, message_id or "", "this history page")
