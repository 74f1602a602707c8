"""Webex Connect (formerly IMImobile imiconnect): Messaging API v1, ``POST /resources/v1/messaging``.

* Docs: https://developers.webexconnect.io/reference/send-message-api-v1 (request and answers),
  https://help.webexconnect.io/docs/api-codes (the code tables below),
  https://developers.webexconnect.io/reference/outbound-webhooks (delivery receipts).
* Auth: the service key in a ``key`` header, or ``Authorization: Bearer <JWT>`` (``bearer_token=``;
  a JWT you mint from the service id and secret; it wins when both are given, so only it is sent).
* Hosts: ``https://api.{region}.webexconnect.io`` (``region=`` one of ca, eu, uk, us, us1, in, au;
  default ``us``). Legacy tenants keep their ``api.imiconnect.*`` host: pass it as ``base_url``.

Quirks:

* **Errors arrive with HTTP 200.** The body decides: a ``response`` *array* holds one result per
  destination (``"1001"`` Queued, each with its ``transid``); a ``response`` *object* is an error
  for the whole request. Codes are strings and are kept as the vendor writes them.
* The vendor's code list has four sections (Messaging, Transaction Status, Event, Profile) and the
  same number means different things in different sections (7005, 7010, 7011, 7208, 7601), so
  there is one table per section. ``ERRORS`` (Messaging) reads send answers; the Transaction Status
  table gives the reason class of a failed delivery receipt; the Event and Profile tables are
  documented for completeness (those APIs are not spoken here). Codes that say the network or
  handset could not deliver (7201-7211, 7301, 74xx, 7503) are ``DeliveryFailed`` (the vendor took
  the message), in receipts and in the rare send answer that carries one. Within Messaging, 7010, 7208 and
  7601 each carry two texts; the row takes the safe reading (refused, not retried).
* **No de-duplication:** ``correlationid`` (our idempotency key, at most 50 bytes) is echoed in
  answers and receipts but never de-duplicates, so an ambiguous failure (timeout after the request
  went out, 5xx without a body, a truncated answer) raises ``DeliveryUnknown`` and is not retried.
  Internal-error codes (7006, 7011, 7518) and delivery-status codes answered instead of a result
  (7200, 7303, 7500-7502) are marked ambiguous for the same reason. 7020 and 7302 (rate limits)
  and connection failures are retried.
* One request carries at most 1000 destinations (7009), "subject to your TPS limits: if your TPS is
  10 you can send up to 10 destinations at once" (getting started with the Messaging API). So
  ``max_destinations=`` (default 1000, the documented ceiling; set it to the tenant's TPS) caps
  each request, and ``send()`` splits a longer list into requests of that size and merges the
  per-recipient results; if the first request fails, its error is
  raised, and a later request's failure becomes the error of each of its recipients
  (``result.failed``; ``DeliveryUnknown`` for those whose outcome is unknown). ``split_batches=False``
  refuses such a list instead. Each destination is its own object, so results map by position.
* SMS: ``channels.sms`` with ``senderid`` (pre-configured on the service), ``text`` (at most 1024
  characters) and ``type`` ``"1"`` (text) or ``"4"`` (unicode, chosen when the text is not GSM-7);
  a template (``message.template``) may replace the text.
* WhatsApp: template messages only (``appid`` + ``message.template`` + ``parameters``; a list of
  parameters is sent as ``{"1": ..., "2": ...}``; the language belongs to the Webex template and is
  not sent). Destinations are ``waid`` digits without ``+``; ``sender`` is ignored (the app id
  decides). Viber, media and ``scheduled_at`` are refused (v1 has no send-at field).
* ``validity`` becomes ``expiry`` (UTC). ``options`` (e.g. ``callbackData``, at most 2000
  characters; ``notifyurlAuthId``) are merged into the request body untouched.
* Status lookups: Messaging API v1 documents no lookup by ``transid`` (the Transaction Status API's
  endpoint is not published), so ``get_status`` raises a ``ValidationError`` saying so; delivery
  receipts (``parse_webhook``) are the status source.
* Receipts: ``deliveryInfoNotification`` with ``deliveryStatus`` (Submitted, Delivered,
  Un-Delivered, Failed, Read), ``transid`` (our ``message_id``) and ``correlationid`` (our
  idempotency key). A failed receipt keeps its ``code`` and ``Description`` as the reason; expiry
  and rejection codes refine the status (table below). With ``webhook_secret=`` the
  ``x-hub-signature`` header (hex HMAC SHA-256 or SHA-512 of the body, optionally ``sha256=``
  prefixed; SHA-1 too, which the vendor still sends for outbound webhooks configured before April
  2022) is checked in constant time; a missing or wrong signature raises ``WebhookAuthError`` (an
  ``AuthError``). The secret key is what proves the sender: without it no HMAC, SHA-1 included,
  can be forged, so the algorithm is read from the prefix or the digest length.
* Unconfirmed (safe choices): whether an answer array can mix accepted and refused destinations
  (each entry is read on its own); ``1002`` in a send answer (accepted, as the Event API means it);
  the ``type`` values (legacy docs); ``waid`` without ``+``; ``Clicked`` receipts (read); the code
  the vendor answers when a request carries more destinations than the tenant's TPS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final, NoReturn

import httpx

from .._text import sms_segments
from ..errors import (
    AuthError,
    DeliveryFailed,
    DuplicateMessage,
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
from ..models import DeliveryStatus, Message, Template
from ._accepts import Accepts, Longest, Matches, PerRequest, Refused, Required, Without
from ._json import utc_iso
from ._webhook import BodyHmac, Callback, First, Joined, ReportFields
from .base import (
    Answer,
    BaseURL,
    ErrorCode,
    ErrorTable,
    Hosts,
    Provider,
    StatusEntry,
    StatusTable,
    setting,
    utc_from_timestamp,
)

__all__ = ["WebexConnect"]

ERRORS: Final = ErrorTable(
    {
        "7000": ErrorCode(ValidationError, "Invalid JSON"),
        "7001": ErrorCode(AuthError, "Authentication failed"),
        "7002": ErrorCode(AuthError, "Service Key Missing"),
        "7003": ErrorCode(ValidationError, "Mandatory parameter missing (e.g. param 'text' missing for channel sms)"),
        "7004": ErrorCode(ValidationError, "Invalid parameter value (e.g. invalid value of param 'type')"),
        "7005": ErrorCode(ValidationError, "Request expired"),
        "7006": ErrorCode(ServiceUnavailable, "Internal error occurred / Internal server error", ambiguous=True),
        "7007": ErrorCode(PermissionDenied, "Service Inactive"),
        "7008": ErrorCode(PermissionDenied, "Inactive Profile"),
        "7009": ErrorCode(ValidationError, "Maximum number of destination address (1000)"),
        "7010": ErrorCode(PermissionDenied, "Source IP is not in the allowed list / Service provider exception"),
        "7011": ErrorCode(ServiceUnavailable, "Unknown Exception", ambiguous=True),
        "7019": ErrorCode(ValidationError, "Request expired"),
        "7020": ErrorCode(RateLimited, "You have reached maximum transaction limit"),
        "7101": ErrorCode(PermissionDenied, "Invalid Sender ID"),
        "7102": ErrorCode(InvalidRecipient, "Invalid address"),
        "7103": ErrorCode(InsufficientBalance, "Not enough credits"),
        "7104": ErrorCode(ValidationError, "Invalid app id"),
        "7105": ErrorCode(InvalidRecipient, "Customer profile not found"),
        "7106": ErrorCode(PermissionDenied, "Channel not configured"),
        "7107": ErrorCode(ValidationError, "Message length exceeded"),
        "7108": ErrorCode(TemplateError, "Invalid template"),
        "7109": ErrorCode(InvalidRecipient, "User in DnD"),
        "7110": ErrorCode(InvalidRecipient, "User is not active"),
        "7111": ErrorCode(ValidationError, "Spam content detected"),
        "7112": ErrorCode(ValidationError, "Invalid message type"),
        "7113": ErrorCode(PermissionDenied, "Social hours"),
        "7114": ErrorCode(PermissionDenied, "Configuration Error. Please contact admin."),
        "7115": ErrorCode(PermissionDenied, "Rate plan not defined"),
        "7116": ErrorCode(InvalidRecipient, "Destination profile is not verified"),
        "7117": ErrorCode(PermissionDenied, "RTM is not enabled for this app"),
        "7118": ErrorCode(PermissionDenied, "push is not enabled for this app"),
        "7119": ErrorCode(InvalidRecipient, "Destination profile doesn't have OS details"),
        "7120": ErrorCode(ValidationError, "Voice params length exceeded"),
        "7121": ErrorCode(TemplateError, "Replaceable params could not be fetched."),
        "7200": ErrorCode(ProviderError, "Unknown Status", ambiguous=True),
        "7201": ErrorCode(DeliveryFailed, "Delivery failed at Operator"),
        "7202": ErrorCode(DeliveryFailed, "Delivery failed at platform"),
        "7203": ErrorCode(InvalidRecipient, "Unknown Subscriber address"),
        "7204": ErrorCode(InvalidRecipient, "Insufficient Credits in subscriber account"),
        "7205": ErrorCode(ValidationError, "Error in Binary message"),
        "7206": ErrorCode(DeliveryFailed, "Can't deliver. Subscriber SIM Full"),
        "7207": ErrorCode(DeliveryFailed, "Subscriber out of coverage area or not reachable"),
        "7208": ErrorCode(PermissionDenied, "Source ip is not in the allowed list / Message expired"),
        "7209": ErrorCode(DeliveryFailed, "Unable to deliver multipart message"),
        "7210": ErrorCode(PermissionDenied, "Billing Configuration error"),
        "7211": ErrorCode(DeliveryFailed, "Billing error at operator"),
        "7212": ErrorCode(InvalidRecipient, "Invalid registration"),
        "7213": ErrorCode(InvalidRecipient, "Unregistered"),
        "7214": ErrorCode(DeliveryFailed, "Cloud specific failure"),
        "7301": ErrorCode(DeliveryFailed, "Message expired"),
        "7302": ErrorCode(RateLimited, "Rate limit exceeded"),
        "7303": ErrorCode(ProviderError, "Delivery notification of a message expired", ambiguous=True),
        "7304": ErrorCode(AuthError, "Invalid app credentials(Invalid OAuth)"),
        "7305": ErrorCode(AuthError, "Invalid user credentials"),
        "7307": ErrorCode(ServiceUnavailable, "End point not reachable(FB is not reachable)"),
        "7401": ErrorCode(DeliveryFailed, "No answer"),
        "7402": ErrorCode(DeliveryFailed, "Customer busy"),
        "7403": ErrorCode(DeliveryFailed, "Call rejected"),
        "7404": ErrorCode(DeliveryFailed, "Others"),
        "7500": ErrorCode(ProviderError, "Delivered (a delivery status, not a send answer)", ambiguous=True),
        "7501": ErrorCode(ProviderError, "Submited (a delivery status, not a send answer)", ambiguous=True),
        "7502": ErrorCode(ProviderError, "Read (a delivery status, not a send answer)", ambiguous=True),
        "7503": ErrorCode(DeliveryFailed, "Message expired before delivery attempt"),
        "7504": ErrorCode(PermissionDenied, "Authentication error (push provider)"),
        "7505": ErrorCode(ValidationError, "Too large payload ( >4kb)"),
        "7506": ErrorCode(ValidationError, "Invalid time to live value"),
        "7507": ErrorCode(RateLimited, "Too many requests for the App"),
        "7508": ErrorCode(ServiceUnavailable, "GCM server error"),
        "7509": ErrorCode(RateLimited, "Too many concurrent requests for same customer"),
        "7510": ErrorCode(ValidationError, "Too big payload"),
        "7511": ErrorCode(ValidationError, "Invalid time to live value"),
        "7512": ErrorCode(InvalidRecipient, "Invalid push id"),
        "7513": ErrorCode(InvalidRecipient, "Unregistered Device"),
        "7514": ErrorCode(PermissionDenied, "Wrong apns certificate gateway"),
        "7515": ErrorCode(PermissionDenied, "Bad apns certificate"),
        "7516": ErrorCode(RateLimited, "Too many request for the same device"),
        "7517": ErrorCode(ServiceUnavailable, "APNS server error"),
        "7518": ErrorCode(ProviderError, "Unknown", ambiguous=True),
        "7600": ErrorCode(NotFound, "no results found"),
        "7601": ErrorCode(
            ValidationError, "transaction is not under this service or service key is invalid / Verification failed"
        ),
        "7602": ErrorCode(InvalidRecipient, "user presence failure"),
        "7603": ErrorCode(ValidationError, "either validation failed for request or user verification failure"),
        "7618": ErrorCode(ValidationError, "Invalid request characters: The character uxxxx cannot be included"),
        "7627": ErrorCode(ValidationError, "Parameter missing: media id"),
        "7628": ErrorCode(InvalidRecipient, "The other user is not yet a follower"),
        "7629": ErrorCode(InvalidRecipient, "The other user is not yet a follower"),
        "7630": ErrorCode(ValidationError, "Rich media message is empty"),
        "7631": ErrorCode(ValidationError, "Text message is empty"),
        "7632": ErrorCode(ValidationError, "Error source: multimedia file size"),
        "7633": ErrorCode(ValidationError, "Message contents too long"),
        "7634": ErrorCode(ValidationError, "Title too long"),
        "7635": ErrorCode(ValidationError, "Description too long"),
        "7636": ErrorCode(ValidationError, "URL too long"),
        "7637": ErrorCode(ValidationError, "Image URL too long"),
        "7638": ErrorCode(ValidationError, "Audio play time over limit"),
        "7639": ErrorCode(RateLimited, "Rich media messages over limit (quota used up)", retryable=False),
        "7641": ErrorCode(RateLimited, "Message quantity over limit (quota used up)", retryable=False),
        "7642": ErrorCode(InvalidRecipient, "This user does not exist."),
        "7643": ErrorCode(ValidationError, "Invalid image file type (invalid file type)"),
    }
)

#: Messaging codes that only concern a request, absent from the Transaction Status section.
_REQUEST_ONLY: Final = frozenset({"7000", "7001", "7002", "7003", "7004", "7005", "7007", "7009", "7603"})

#: Transaction Status section: the reasons of failed deliveries (receipts), where 7010, 7208 and
#: 7601 carry their delivery meanings and the file-size codes 7608-7611 appear.
TRANSACTION_ERRORS: Final = ErrorTable(
    {
        **{code: row for code, row in ERRORS.items() if code not in _REQUEST_ONLY},
        "7010": ErrorCode(ServiceUnavailable, "Service provider exception"),
        "7208": ErrorCode(DeliveryFailed, "Message expired"),
        "7601": ErrorCode(NotFound, "Transaction is not under this service or service key is invalid"),
        "7602": ErrorCode(InvalidRecipient, "User presence failure / validation or user verification failure"),
        "7608": ErrorCode(ValidationError, "Invalid image file size"),
        "7609": ErrorCode(ValidationError, "Invalid audio file size"),
        "7610": ErrorCode(ValidationError, "Invalid video file size"),
        "7611": ErrorCode(ValidationError, "Invalid thumbnail file size"),
    }
)

#: Event (Custom Event API) section; 7005 means an internal error here. Documented, not spoken.
EVENT_ERRORS: Final = ErrorTable(
    {
        "7000": ErrorCode(ValidationError, "Invalid JSON"),
        "7001": ErrorCode(AuthError, "Authentication failed"),
        "7002": ErrorCode(AuthError, "Service key missing"),
        "7004": ErrorCode(ValidationError, "Invalid value"),
        "7005": ErrorCode(ServiceUnavailable, "Internal error occurred", ambiguous=True),
        "7006": ErrorCode(ServiceUnavailable, "Internal error occurred", ambiguous=True),
        "7025": ErrorCode(ValidationError, "Mandatory custom parameters missing"),
    }
)

#: Profile API section; 7011 means an invalid attribute here. Documented, not spoken.
PROFILE_ERRORS: Final = ErrorTable(
    {
        "7003": ErrorCode(ValidationError, "Mandatory parameter missing (e.g. CustomerId is missing)"),
        "7010": ErrorCode(PermissionDenied, "Source IP is not in the allowed list"),
        "7011": ErrorCode(ValidationError, "Invalid Attribute Value"),
        "7012": ErrorCode(ValidationError, "Batch size limit(100) exceeded"),
        "7013": ErrorCode(NotFound, "Master profile store not found"),
        "7014": ErrorCode(NotFound, "Customer not found / App profile not found"),
        "7015": ErrorCode(DuplicateMessage, "Customer already exists / App profile already exists"),
        "7016": ErrorCode(ServiceUnavailable, "Unknown error", ambiguous=True),
        "7017": ErrorCode(ValidationError, "Profile attribute doesn't exist"),
        "7018": ErrorCode(ValidationError, "Invalid app profile or app profile is not linked to this client"),
        "7019": ErrorCode(ValidationError, "Request expired"),
        "7020": ErrorCode(RateLimited, "You have reached maximum transaction limit"),
    }
)

#: Every section's error table, by the section's name in the vendor's code list.
SECTIONS: Final[Mapping[str, ErrorTable]] = {
    "Messaging": ERRORS,
    "Transaction Status": TRANSACTION_ERRORS,
    "Event": EVENT_ERRORS,
    "Profile": PROFILE_ERRORS,
}

_S = DeliveryStatus
#: Success codes: per destination in a send answer (1001), and of the Event/Profile APIs.
RESULTS: Final = StatusTable(
    {
        "1000": StatusEntry(_S.QUEUED, "Success (Profile API)"),
        "1001": StatusEntry(_S.QUEUED, "Queued (Messaging API; also 'Queued in burst mode')"),
        "1002": StatusEntry(_S.QUEUED, "Queues (Event API) / Partial success (Profile API)"),
    }
)

#: ``deliveryInfo.deliveryStatus`` of a receipt.
STATUSES: Final = StatusTable(
    {
        "Submitted": StatusEntry(_S.SENT, "Submitted to the operator or channel"),
        "Sent": StatusEntry(_S.SENT, "Sent (spelling of later API versions)"),
        "Delivered": StatusEntry(_S.DELIVERED, "Delivered to the handset or app"),
        "Read": StatusEntry(_S.READ, "Read by the recipient (WhatsApp, push, in-app)"),
        "Clicked": StatusEntry(_S.READ, "A link in the message was clicked (an engagement event)"),
        "Un-Delivered": StatusEntry(_S.UNDELIVERED, "Not delivered by the network", DeliveryFailed),
        "Undelivered": StatusEntry(_S.UNDELIVERED, "Not delivered (spelling without hyphen)", DeliveryFailed),
        "Failed": StatusEntry(_S.FAILED, "Failed (the receipt's code, when known, tells why)", DeliveryFailed),
    },
    case_insensitive=True,
)

#: Receipt codes that refine a failure status (``Un-Delivered``/``Failed``), whatever it said.
REASON_STATUSES: Final = StatusTable(
    {
        "7005": StatusEntry(_S.EXPIRED, "Request expired"),
        "7019": StatusEntry(_S.EXPIRED, "Request expired"),
        "7208": StatusEntry(_S.EXPIRED, "Message expired"),
        "7301": StatusEntry(_S.EXPIRED, "Message expired"),
        "7503": StatusEntry(_S.EXPIRED, "Message expired before delivery attempt"),
        "7111": StatusEntry(_S.REJECTED, "Spam content detected"),
        "7403": StatusEntry(_S.REJECTED, "Call rejected"),
        "7303": StatusEntry(_S.UNKNOWN, "Delivery notification of a message expired: outcome unknown"),
    }
)

DOC_TABLES: Final = [
    ("Success codes (send answers; Event and Profile APIs)", RESULTS),
    ("Transaction Status codes (reasons in delivery receipts)", TRANSACTION_ERRORS),
    ("Receipt codes that refine a failure status", REASON_STATUSES),
    ("Event API codes (documented; this API is not used)", EVENT_ERRORS),
    ("Profile API codes (documented; this API is not used)", PROFILE_ERRORS),
]

REGIONS: Final = frozenset({"ca", "eu", "uk", "us", "us1", "in", "au"})
PATH: Final = "/resources/v1/messaging"
MAX_DESTINATIONS: Final = 1000
#: The GSM originator rule: up to 11 alphanumeric characters, or a number of up to 15 digits.
SENDER_PATTERN: Final = r"[A-Za-z0-9 .\-_]{1,11}|\+?[0-9]{3,15}"
MAX_CORRELATION_BYTES: Final = 50
MAX_SMS_CHARS: Final = 1024
MAX_CALLBACK_DATA: Final = 2000
#: Text or a template (WhatsApp: a template only); no media or schedule; the key as ``correlationid``.
ACCEPTS: Final = Accepts(
    recipients=PerRequest(
        "{count} recipients: at most {most} destinations per request "
        "(max_destinations; send through Client with split_batches=True to split them)"
    ),
    media=Refused("media (send WhatsApp media through a template)"),
    template=Without("text", "pass either text or a template, not both"),
    scheduled_at=Refused("scheduled_at (Messaging API v1 has no send-at field)"),
    idempotency_key=Longest(
        MAX_CORRELATION_BYTES,
        "idempotency_key is {length} bytes; Webex Connect correlationid allows at most {most} bytes",
        in_bytes=True,
    ),
    on={
        "sms": Accepts(
            sender=Matches(
                SENDER_PATTERN, "up to 11 letters, digits, space, '.', '-', '_', or a number of 3 to 15 digits"
            ),
            text=Longest(MAX_SMS_CHARS, "text is {length} characters; Webex Connect SMS allows at most {most}"),
        ),
        "whatsapp": Accepts(
            template=Required("free-form WhatsApp text (send a template: Message.template)", invalid=False)
        ),
    },
)
#: HMAC algorithms of ``x-hub-signature``: SHA-256 and SHA-512, and SHA-1 for outbound webhooks
#: configured before April 2022 (help.webexconnect.io outbound-webhooks).
HUB_ALGORITHMS: Final = {"sha256": hashlib.sha256, "sha512": hashlib.sha512, "sha1": hashlib.sha1}


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return utc_from_timestamp(value, millis=float(value) > 1e11)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


class WebexConnect(Provider):
    """Webex Connect adapter (Messaging API v1).

    Args:
        service_key: the service's API key (or ``OMNISEND_WEBEX_CONNECT_SERVICE_KEY``), sent as ``key``.
        bearer_token: a JWT for ``Authorization: Bearer`` instead of the key.
        region: the tenant's region (``"us"``, ``"eu"``, ...) for ``https://api.{region}.webexconnect.io``.
        base_url: overrides the host (legacy ``api.imiconnect.*`` hosts, tests, the emulator).
        whatsapp_app_id: the WhatsApp app id (``appid``); ``options={"appid": ...}`` overrides it.
        webhook_secret: the outbound webhook's hub secret; receipts must then be signed.
        notify_url: an HTTPS URL for this client's receipts (``notifyurl``), instead of the service's.
        split_batches: split more than ``max_destinations`` recipients into several requests
            (default) or refuse them.
        max_destinations: destinations per request, 1 to 1000 (default 1000). The vendor caps a
            request at the tenant's TPS ("if your TPS is 10 you can send up to 10 destinations at
            once"): set it to yours.
    """

    name = "webex_connect"
    display_name = "Webex Connect"
    channels = frozenset({"sms", "whatsapp"})
    errors = ERRORS
    statuses = STATUSES
    deduplicates = False
    webhook_auth = "`x-hub-signature`: HMAC SHA-256, SHA-512 (or legacy SHA-1) of the body"
    webhook_check = BodyHmac("x-hub-signature", algorithms=tuple(HUB_ALGORITHMS))
    webhook_fields = ReportFields(
        message_id="transid",
        status="deliveryInfo.deliveryStatus",
        recipient="deliveryInfo.destination",
        idempotency_key="correlationid",
        timestamp="deliveryInfo.timeStamp",
        error_code="deliveryInfo.code",
        error_message=Joined(
            " - ",
            First("deliveryInfo.Description", "deliveryInfo.description"),
            "deliveryInfo.additionalInfo",
            skip_empty=True,
        ),
        event_id=Joined(":", "transid", "deliveryInfo.deliveryStatus", "deliveryInfo.code"),
        time=_timestamp,
        error_table=TRANSACTION_ERRORS,
        reasons=REASON_STATUSES,
        failure_codes_only=True,  # every receipt carries a code, "7500" on a delivered one
    )
    credential_env = "OMNISEND_WEBEX_CONNECT_SERVICE_KEY"
    owned_options = frozenset({"correlationid", "destination"})
    accepts = ACCEPTS
    #: A ``response`` object is an error of the whole request unless its code is a success code;
    #: a ``response`` array holds one entry per destination, in order.
    answer = Answer(
        code="response.code",
        text="response.description",
        items="response",
        message_id="transid",
        item_code="code",
        item_text="description",
        accepted=RESULTS,
        missing_is_error=False,
    )

    hosts = Hosts("https://api.{region}.webexconnect.io", "region")

    _key: str | None = setting(default=None, alias="service_key", credential=True)
    _token: str | None = setting(default=None, alias="bearer_token", credential=True, instead_of="service_key")
    region: str = setting(default="us", choices=REGIONS, repr=True)
    base_url: BaseURL = setting(default=None)
    whatsapp_app_id: str | None = setting(default=None)
    webhook_secret: str | None = setting(default=None, callback_secret=True)
    notify_url: str | None = setting(default=None, schemes=("https",))  # the vendor posts receipts only to HTTPS
    split_batches: bool = setting(default=True)
    max_recipients: int = setting(default=MAX_DESTINATIONS, alias="max_destinations", between=(1, MAX_DESTINATIONS))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {"key": self._key or ""}

    # -- send -----------------------------------------------------------------------------

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        numbers = message.recipients
        whatsapp = message.channel == "whatsapp"
        body: dict[str, Any] = {
            "deliverychannel": message.channel,
            "destination": [{"waid": [n.lstrip("+")]} if whatsapp else {"msisdn": [n]} for n in numbers],
            "correlationid": idempotency_key,
        }
        body.update(self._whatsapp(message) if whatsapp else self._sms(message))
        if message.validity is not None:
            body["expiry"] = utc_iso(datetime.now(timezone.utc) + message.validity, millis=True)
        if self.notify_url is not None:
            body["notifyurl"] = self.notify_url
        body.update(message.options)
        if len(str(body.get("callbackData", ""))) > MAX_CALLBACK_DATA:
            self.invalid(f"callbackData allows at most {MAX_CALLBACK_DATA} characters", field="options.callbackData")
        return self.build_http_request("POST", PATH, headers=self._auth(), json=body)

    def _sms(self, message: Message) -> dict[str, Any]:
        sms = {"senderid": message.sender} if message.sender is not None else {}
        if message.template is not None:
            return {"message": _template(message.template), **({"channels": {"sms": sms}} if sms else {})}
        text = message.text or ""
        sms.update(text=text, type="1" if sms_segments(text).encoding == "gsm7" else "4")
        return {"channels": {"sms": sms}}

    def _whatsapp(self, message: Message) -> dict[str, Any]:
        assert message.template is not None  # ACCEPTS requires one on WhatsApp
        appid = message.options.get("appid") or self.whatsapp_app_id
        if not appid:
            self.invalid(
                "WhatsApp needs the app id: WebexConnect(whatsapp_app_id=...) or options={'appid': ...}", field="appid"
            )
        return {"appid": appid, "message": _template(message.template)}

    # -- status -----------------------------------------------------------------------------

    def build_status_request(self, message_id: str) -> httpx.Request:
        self.unsupported(
            "status lookups (Messaging API v1 documents no lookup by transid; "
            "use delivery receipts, WebexConnect.parse_webhook, instead)"
        )

    # -- webhook ----------------------------------------------------------------------------

    def webhook_events(self, payload: Any, callback: Callback) -> list[Mapping[str, Any]]:
        """One event per ``deliveryInfo`` of each ``deliveryInfoNotification``, with its note's fields."""
        events: list[Mapping[str, Any]] = []
        for item in payload if isinstance(payload, list) else [payload]:
            note = item.get("deliveryInfoNotification") if isinstance(item, dict) else None
            if not isinstance(note, dict):
                self._malformed("without deliveryInfoNotification", "deliveryInfoNotification")
            infos = note.get("deliveryInfo")
            for info in infos if isinstance(infos, list) else [infos or {}]:
                if not isinstance(info, dict):
                    self._malformed("with a deliveryInfo that is not an object", "deliveryInfo")
                events.append({**{k: v for k, v in note.items() if k != "deliveryInfo"}, "deliveryInfo": info})
        return events

    def _malformed(self, problem: str, field: str) -> NoReturn:
        raise ValidationError(f"Webex Connect receipt {problem}", provider=self.name, field=field)


def _template(template: Template) -> dict[str, Any]:
    parameters = template.named_params
    return {"template": template.name, "parameters": parameters} if parameters else {"template": template.name}
