"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``.

* Docs: https://www.twilio.com/docs/messaging/api/message-resource (the Message resource),
  https://www.twilio.com/docs/usage/twilios-response (error bodies),
  https://www.twilio.com/docs/usage/security#validating-requests (``X-Twilio-Signature``).
* Auth: HTTP Basic with the Account SID and its Auth Token, or with an API key SID (``SK…``) and
  its secret; the URL always names the Account SID.
* Sender: ``From`` (a Twilio number, short code or Alphanumeric Sender ID; ``whatsapp:+…`` on the
  WhatsApp channel) or a Messaging Service (``messaging_service_sid=``, ``MG…``), or both. Scheduled
  sends (``SendAt`` + ``ScheduleType=fixed``) need a Messaging Service. ``Message.media`` becomes
  ``MediaUrl``; ``Message.template`` becomes a Content Template (``ContentSid`` = the template name,
  ``ContentVariables`` = its parameters as JSON). One recipient per request (``send()`` splits).
* Error table: Twilio's error dictionary (the machine-readable ``twilio-error-codes.json`` behind
  https://www.twilio.com/docs/api/errors, snapshot of 2023-05, plus the pages of codes added since:
  21265, 21266, 21635, 21659, 21660, 21661, 30036). It holds every code the dictionary files under the
  REST API (20xxx), the Messages resource (21xxx), message sending (14107), delivery (30001–30036,
  30410, 30450), scheduling (35xxx) and the WhatsApp channel (63xxx) — the codes a Messages request
  or a status callback can carry. Codes of other products (calls, numbers, A2P registration,
  campaign vetting) are left out; a code not in the table is typed from its HTTP status (400
  ``ValidationError``, 401 ``AuthError``, 5xx ``ServiceUnavailable``, …) and keeps the code.

Quirks:

* Errors come as ``{"code", "message", "more_info", "status"}`` with a 4xx/5xx status; the code
  decides the class (any HTTP 429 is ``RateLimited`` whatever its code), the HTTP status when there
  is no code. A create answers 201 with the
  Message resource; its ``status`` is ``queued`` (``accepted``/``scheduled`` through a Messaging
  Service).
* **No de-duplication.** Twilio's Messages API has no idempotency key: the create parameters
  (``To``, ``From``, ``Body``, ``StatusCallback``, …, as listed by the official ``twilio`` library's
  ``MessageList.create``) include none, and a repeated request creates a second message with a new
  SID. So an ambiguous failure (a timeout after the request went out, a 5xx without a body, 20500)
  is **not** retried: ``send()`` raises ``DeliveryUnknown`` with the idempotency key. omnisend puts
  that key in the ``StatusCallback`` URL (``?omnisend_key=…``) so callbacks carry it back for
  reconciliation. Throttling is retried: 20429 ("Requests that receive 429 responses aren't
  processed and are safe to retry after backing off", its page says) and 14107.
* ``Message.options`` go into the form as given (booleans as ``true``/``false``, as the official
  library sends them); they may not set ``To`` or ``StatusCallback``, which omnisend owns (set the
  callback with ``webhook_url=``).
* Status callbacks are form posts signed with ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed by
  the account's Auth Token, over the full URL Twilio called followed by every form field name and
  value sorted by name. The URL is part of what is signed, so ``parse_webhook(url=...)`` takes the
  URL Twilio called (``webhook_url=`` is the default; query items given as ``query=`` are appended
  to it); with and without the default port, as Twilio's own libraries check. API keys do not sign
  callbacks: checking them needs ``auth_token=``.
* Unconfirmed (safe choices): the HTTP status of 20005 (we read the code, whatever the status);
  ``partially_delivered`` is read as ``sent`` (not final); 30002 "Account suspended" is
  ``InsufficientBalance`` because Twilio names a lack of funds as its first cause.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import httpx

from ..errors import (
    AuthError,
    ConfigurationError,
    DeliveryFailed,
    InsufficientBalance,
    InvalidRecipient,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    TemplateError,
    ValidationError,
)
from ..models import DeliveryReport, DeliveryStatus, Message
from ._accepts import Accepts, Longest, Matches, PerRequest, Refused, Required, Within, Without
from ._webhook import Callback, SignedUrl
from .base import Answer, BaseURL, Credential, ErrorCode, ErrorTable, Provider, StatusEntry, StatusTable, setting

__all__ = ["Twilio"]

_E = ErrorCode
ERRORS: Final = ErrorTable(
    {
        # -- REST API (20xxx) and account state ---------------------------------------------------
        10001: _E(InsufficientBalance, "Account is not active (balance at $0 or below, or suspended)"),
        14107: _E(RateLimited, "SMS send rate limit exceeded: too many messages between two numbers in a short time"),
        20001: _E(ValidationError, "Unknown parameters"),
        20002: _E(ValidationError, "Invalid FriendlyName"),
        20003: _E(
            AuthError,
            "Permission Denied (authenticate: bad Account SID, Auth Token or API key)",
            hint="check that account_sid and auth_token (or api_key_sid and api_key_secret) belong to one account",
        ),
        20004: _E(ValidationError, "Method not allowed"),
        20005: _E(InsufficientBalance, "Account not active, potentially because you ran out of funds"),
        20006: _E(PermissionDenied, "Access Denied: insufficient privileges for the requested resource"),
        20008: _E(PermissionDenied, "Test Credentials: this resource cannot be used with test credentials"),
        20010: _E(PermissionDenied, "Action disabled for account"),
        20011: _E(ValidationError, "Invalid TLS version: service requires TLSv1.2"),
        20012: _E(ValidationError, "Invalid TLSv1.2 Cipher Suite"),
        20403: _E(PermissionDenied, "403 Forbidden"),
        20404: _E(NotFound, "Not Found: the resource was not found"),
        20409: _E(ValidationError, "Conflict"),
        20410: _E(ValidationError, "Gone: this API is being discontinued"),
        20413: _E(ValidationError, "Request Entity Too Large"),
        20422: _E(ValidationError, "Invalid Parameter"),
        20423: _E(ValidationError, "Invalid SID"),
        20426: _E(ValidationError, "Upgrade Required"),
        20429: _E(RateLimited, "Too Many Requests: too many concurrent REST API requests"),
        20500: _E(ServiceUnavailable, "Internal Server Error", ambiguous=True),
        20503: _E(ServiceUnavailable, "Service unavailable"),
        # -- the Messages resource (21xxx) ----------------------------------------------------------
        21210: _E(PermissionDenied, "'From' phone number not verified"),
        21211: _E(InvalidRecipient, "Invalid 'To' Phone Number"),
        21212: _E(
            PermissionDenied,
            "Invalid From Number (caller ID): not a valid number, Alphanumeric Sender ID or WhatsApp sender",
        ),
        21265: _E(InvalidRecipient, "'To' number cannot be a Short Code"),
        21266: _E(ValidationError, "'To' and 'From' numbers cannot be the same"),
        21408: _E(
            PermissionDenied,
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
        ),
        21601: _E(PermissionDenied, "Phone number is not a valid SMS-capable inbound phone number"),
        21602: _E(ValidationError, "Message body is required"),
        21603: _E(ValidationError, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"),
        21604: _E(ValidationError, "The destination 'To' phone number is required to send an SMS"),
        21605: _E(ValidationError, "Maximum body length is 160 characters (old API endpoint)"),
        21606: _E(
            PermissionDenied,
            "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination",
        ),
        21607: _E(PermissionDenied, "The 'from' phone number must be the sandbox phone number for trial accounts"),
        21608: _E(
            PermissionDenied,
            "The 'to' phone number provided is not yet verified for this account (trial account)",
            hint="a trial account sends only to verified numbers: verify it in the console or upgrade",
        ),
        21609: _E(ValidationError, "Invalid 'StatusCallback'"),
        21610: _E(
            InvalidRecipient,
            "Attempt to send to unsubscribed recipient",
            hint="the recipient replied STOP to this sender; only their START re-subscribes them",
        ),
        21611: _E(RateLimited, "This 'From' number has exceeded the maximum number of queued messages"),
        21612: _E(
            PermissionDenied,
            "The 'To' phone number is not currently reachable via SMS (this To/From combination cannot be connected)",
        ),
        21614: _E(InvalidRecipient, "'To' number is not a valid mobile number"),
        21616: _E(ValidationError, "The 'From' number matches multiple numbers for your account"),
        21617: _E(ValidationError, "The concatenated message body exceeds the 1600 character limit"),
        21618: _E(ValidationError, "The message body cannot be sent (content filtered)"),
        21619: _E(ValidationError, "Unable to create record: a text message body or media urls must be specified"),
        21620: _E(ValidationError, "Invalid media URL(s)"),
        21621: _E(PermissionDenied, "The 'From' number has not been enabled for MMS"),
        21622: _E(PermissionDenied, "MMS has not been enabled for your account"),
        21623: _E(ValidationError, "Number of media files exceeds allowed limit"),
        21624: _E(ValidationError, "Invalid validity period value"),
        21626: _E(ValidationError, "Invalid 'StatusCallbackEvent'"),
        21627: _E(ValidationError, "Max Price must be a valid float"),
        21635: _E(InvalidRecipient, "'To' number cannot be a landline"),
        21652: _E(ValidationError, "Maximum subject length is 40 characters"),
        21653: _E(ValidationError, "There are more recipient addresses than allowed"),
        21654: _E(TemplateError, "ContentSid Required (ContentVariables were given)"),
        21655: _E(TemplateError, "The ContentSid is Invalid"),
        21656: _E(TemplateError, "The ContentVariables Parameter is invalid"),
        21657: _E(PermissionDenied, "The Sender ID is invalid"),
        21658: _E(ValidationError, "Parameter exceeded character limit"),
        21659: _E(PermissionDenied, "'From' is not a Twilio phone number or Short Code country mismatch"),
        21660: _E(PermissionDenied, "Mismatch between the 'From' number and the account"),
        21661: _E(PermissionDenied, "'From' number is not SMS-capable"),
        21701: _E(NotFound, "The Messaging Service does not exist"),
        21702: _E(PermissionDenied, "The Messaging Service is not available to send new messages"),
        21703: _E(PermissionDenied, "The Messaging Service does not have a phone number available to send a message"),
        21704: _E(PermissionDenied, "The Messaging Service contains no phone numbers"),
        21705: _E(ValidationError, "The Messaging Service is invalid"),
        21708: _E(ValidationError, "Alpha Sender ID Missing from the request"),
        21709: _E(PermissionDenied, "Alpha Sender ID is Invalid or Not Authorized for this Messaging Service"),
        21910: _E(ValidationError, "Invalid From and To pair. From and To should be of the same channel."),
        # -- delivery (30xxx): what status callbacks and lookups carry --------------------------------
        30001: _E(RateLimited, "Queue overflow"),
        30002: _E(InsufficientBalance, "Account suspended between the time of message send and delivery"),
        30003: _E(DeliveryFailed, "Unreachable destination handset (switched off or otherwise unavailable)"),
        30004: _E(InvalidRecipient, "Message blocked: the destination number is blocked from receiving this message"),
        30005: _E(InvalidRecipient, "Unknown destination handset: the number is unknown and may no longer exist"),
        30006: _E(DeliveryFailed, "Landline or unreachable carrier"),
        30007: _E(DeliveryFailed, "Message filtered: content flagged as going against carrier guidelines"),
        30008: _E(DeliveryFailed, "Unknown error"),
        30009: _E(DeliveryFailed, "Missing inbound segment"),
        30010: _E(ValidationError, "Message price exceeds max price"),
        30011: _E(DeliveryFailed, "MMS not supported by the receiving phone number in this region"),
        30012: _E(ValidationError, "TTL is too small"),
        30013: _E(ValidationError, "TTL is too big"),
        30014: _E(InvalidRecipient, "'To' attributes are Invalid"),
        30015: _E(ValidationError, "Non-supported channel type is used"),
        30016: _E(ValidationError, "'To' and 'From' channel types are incompatible"),
        30017: _E(DeliveryFailed, "Carrier network congestion"),
        30018: _E(PermissionDenied, "Destination carrier requires sender ID pre-registration"),
        30019: _E(ValidationError, "Content size exceeds carrier limit"),
        30020: _E(ServiceUnavailable, "Internal Failure with Message Scheduling"),
        30021: _E(ServiceUnavailable, "Internal Failure with messaging service orchestrator"),
        30022: _E(RateLimited, "US A2P 10DLC - Rate Limits Exceeded"),
        30023: _E(RateLimited, "US A2P 10DLC - Daily Message Cap Reached"),
        30024: _E(PermissionDenied, "Numeric Sender ID Not Provisioned on Carrier"),
        30027: _E(RateLimited, "US A2P 10DLC - T-Mobile Daily Message Limit Reached"),
        30028: _E(ValidationError, "Invalid API version"),
        30029: _E(ValidationError, "Invalid ContentRetention"),
        30030: _E(ValidationError, "Invalid AddressRetention"),
        30031: _E(ValidationError, "Invalid MaxRate"),
        30032: _E(PermissionDenied, "Toll-Free Number Has Not Been Verified"),
        30033: _E(PermissionDenied, "US A2P 10DLC - Campaign Suspended"),
        30034: _E(PermissionDenied, "US A2P 10DLC - Message from an Unregistered Number"),
        30035: _E(PermissionDenied, "US A2P 10DLC - Message from a number still being configured"),
        30036: _E(DeliveryFailed, "Validity Period Expired: the message stayed queued longer than its ValidityPeriod"),
        30410: _E(DeliveryFailed, "Provider Timeout Error"),
        30450: _E(PermissionDenied, "Message delivery blocked"),
        # -- scheduling (35xxx) -----------------------------------------------------------------------
        35111: _E(ValidationError, "SendAt timestamp is missing"),
        35114: _E(ValidationError, "Scheduling does not support this timestamp"),
        35118: _E(ValidationError, "MessagingServiceSid is required to schedule a message"),
        35125: _E(ValidationError, "Maximum limit reached in the account for scheduling messages"),
        35126: _E(ValidationError, "The ScheduleType value provided is not supported for this channel"),
        # -- WhatsApp and other channels (63xxx) ------------------------------------------------------
        63001: _E(AuthError, "Channel could not authenticate the request"),
        63002: _E(PermissionDenied, "Channel could not find the From address"),
        63003: _E(InvalidRecipient, "Channel could not find To address"),
        63005: _E(ValidationError, "Channel did not accept given content"),
        63006: _E(ValidationError, "Could not format given content for the channel"),
        63007: _E(PermissionDenied, "Twilio could not find a Channel with the specified From address"),
        63008: _E(PermissionDenied, "Could not execute the request because the channel module has been misconfigured"),
        63009: _E(ServiceUnavailable, "Channel provider returned an internal service error (HTTP 5xx)"),
        63010: _E(ServiceUnavailable, "Twilio's platform encountered an internal error processing this message"),
        63011: _E(ValidationError, "Invalid Request: Twilio encountered an error while processing your request"),
        63012: _E(ServiceUnavailable, "Channel provider returned an internal service error"),
        63013: _E(PermissionDenied, "Channel policy violation"),
        63014: _E(InvalidRecipient, "Channel message blocked by user action"),
        63015: _E(
            PermissionDenied, "Channel Sandbox can only send messages to phone numbers that have joined the Sandbox"
        ),
        63016: _E(
            TemplateError,
            "Failed to send freeform message because you are outside the allowed window",
            hint="outside WhatsApp's 24-hour window only a Content Template may be sent (Message.template)",
        ),
        63017: _E(RateLimited, "Rate limit exceeded"),
        63018: _E(RateLimited, "Rate limit exceeded for Channel"),
        63019: _E(ValidationError, "Media failed to download"),
        63020: _E(PermissionDenied, "Twilio encountered a Business Manager account error"),
        63021: _E(ValidationError, "Channel invalid content error"),
        63022: _E(PermissionDenied, "Invalid vname certificate"),
        63023: _E(DeliveryFailed, "Channel generic error"),
        63024: _E(InvalidRecipient, "Invalid message recipient"),
        63025: _E(ValidationError, "Media already exists"),
        63026: _E(PermissionDenied, "Channel sender content flagged as spam"),
        63027: _E(TemplateError, "Template does not exist for a language and locale"),
        63028: _E(TemplateError, "Number of parameters provided does not match the expected number of parameters"),
        63029: _E(DeliveryFailed, "The receiver failed to download the template"),
        63030: _E(ValidationError, "Unsupported parameter for type of channels message"),
        63031: _E(ValidationError, "Channels message cannot have same From and To"),
        63032: _E(InvalidRecipient, "We cannot send this message to this user because of a WhatsApp limitation"),
        63033: _E(InvalidRecipient, "Recipient blocked to receive message"),
        63034: _E(ValidationError, "Media exceeds size limit"),
        63038: _E(RateLimited, "Account exceeded the daily messages limit"),
        63040: _E(TemplateError, "Template Rejected"),
        63041: _E(TemplateError, "Template paused"),
        63042: _E(TemplateError, "Template disabled"),
        63051: _E(PermissionDenied, "WhatsApp Business Account is Locked"),
    }
)

_S = DeliveryStatus
#: Every value of the Message resource's ``status`` (``MessageInstance.Status`` in the official library).
STATUSES: Final = StatusTable(
    {
        "accepted": StatusEntry(
            _S.QUEUED, "Twilio received the request through a Messaging Service (no sender chosen yet)"
        ),
        "scheduled": StatusEntry(_S.SCHEDULED, "Scheduled through a Messaging Service (SendAt)"),
        "queued": StatusEntry(_S.QUEUED, "Queued to be sent"),
        "sending": StatusEntry(_S.QUEUED, "Twilio is dispatching the message to the nearest upstream carrier"),
        "sent": StatusEntry(_S.SENT, "The nearest upstream carrier accepted the message"),
        "delivered": StatusEntry(_S.DELIVERED, "The carrier confirmed delivery to the handset"),
        "undelivered": StatusEntry(_S.UNDELIVERED, "The carrier reported the message as not delivered", DeliveryFailed),
        "failed": StatusEntry(_S.FAILED, "The message could not be sent (ErrorCode says why)", DeliveryFailed),
        "read": StatusEntry(_S.READ, "The recipient opened the message (WhatsApp, RCS)"),
        "partially_delivered": StatusEntry(
            _S.SENT, "Delivered to some of its destinations only (read as sent, not final)"
        ),
        "canceled": StatusEntry(_S.CANCELLED, "The scheduled message was canceled"),
        "receiving": StatusEntry(_S.QUEUED, "Inbound message being received by Twilio"),
        "received": StatusEntry(_S.DELIVERED, "Inbound message received by Twilio"),
    },
    case_insensitive=True,
)

MAX_BODY: Final = 1600
#: ``From`` per channel: an E.164 number, a short code or an Alphanumeric Sender ID (SMS); a number (WhatsApp).
SENDER_PATTERNS: Final = {
    "sms": r"\+[1-9][0-9]{6,14}|[0-9]{3,8}|(?=[0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11}",
    "whatsapp": r"\+[1-9][0-9]{6,14}",
}
SENDER_RULES: Final = {
    "sms": "an E.164 number, a short code, or an Alphanumeric Sender ID (1-11 letters, digits, spaces)",
    "whatsapp": "the E.164 number of an approved WhatsApp sender",
}
MAX_VALIDITY: Final = 36000
TEMPLATE_CARRIES: Final = "a Content Template carries its text and language: give no text or language"
#: One number per request; a sender (or a Messaging Service) of the channel's kind; scheduling only
#: through a Messaging Service; a Content Template without text or language.
ACCEPTS: Final = Accepts(
    recipients=PerRequest("{count} recipients: Twilio takes one number per request (send() splits)"),
    template=Refused(TEMPLATE_CARRIES, invalid=True, part="language"),
    text=(Longest(MAX_BODY), Without("template", TEMPLATE_CARRIES)),
    sender=Required(
        "Twilio needs a sender (From) or Twilio(messaging_service_sid=...)", default="messaging_service_sid"
    ),
    validity=Within(
        timedelta(seconds=1),
        timedelta(seconds=MAX_VALIDITY),
        why=f"validity must be 1 to {MAX_VALIDITY} seconds, got {{seconds}}",
        invalid=True,
    ),
    scheduled_at=Refused(
        "scheduled_at without a Messaging Service (Twilio(messaging_service_sid=...))", unless="messaging_service_sid"
    ),
    on={
        channel: Accepts(sender=Matches(SENDER_PATTERNS[channel], SENDER_RULES[channel])) for channel in SENDER_PATTERNS
    },
)
SIGNATURE_HEADER: Final = "X-Twilio-Signature"
KEY_PARAM: Final = "omnisend_key"
#: The environment variables of the settings (``OMNISEND_TWILIO_ACCOUNT_SID`` ...) and the form of a SID.
ENV: Final = "OMNISEND_TWILIO_"
SID: Final = "%s[0-9a-fA-F]{32}"
SID_RULE: Final = "'%s' followed by 32 hex digits"
#: What a report reads from a status callback's form, named as in the Message resource.
CALLBACK_FIELDS: Final = {
    "sid": ("MessageSid", "SmsSid"),
    "status": ("MessageStatus", "SmsStatus"),
    "to": ("To",),
    "error_code": ("ErrorCode",),
    "error_message": ("ErrorMessage",),
}


class Twilio(Provider):
    """Twilio Programmable Messaging adapter (SMS, MMS media URLs, WhatsApp).

    Args:
        account_sid: ``AC…`` (or ``OMNISEND_TWILIO_ACCOUNT_SID``).
        auth_token: the account's Auth Token (or ``OMNISEND_TWILIO_AUTH_TOKEN``); also checks callbacks.
        api_key_sid: an API key ``SK…`` to authenticate with instead (or ``OMNISEND_TWILIO_API_KEY_SID``).
        api_key_secret: that key's secret (or ``OMNISEND_TWILIO_API_KEY_SECRET``).
        messaging_service_sid: ``MG…`` to send through (or ``OMNISEND_TWILIO_MESSAGING_SERVICE_SID``).
        base_url: overrides ``https://api.twilio.com`` (tests, the emulator, proxies).
        webhook_url: your status-callback URL: sent as ``StatusCallback`` (with ``?omnisend_key=`` added)
            and the URL ``parse_webhook`` checks ``X-Twilio-Signature`` against when given none.
    """

    name = "twilio"
    display_name = "Twilio"
    default_base_url = "https://api.twilio.com"
    channels = frozenset({"sms", "whatsapp"})
    errors = ERRORS
    statuses = STATUSES
    deduplicates = False
    status_lookup = True
    credential_env = "OMNISEND_TWILIO_AUTH_TOKEN"
    max_recipients = 1
    request_id_header = "Twilio-Request-Id"
    webhook_auth = "`X-Twilio-Signature`: HMAC-SHA1 of the callback URL and the sorted form fields"
    webhook_check = SignedUrl(SIGNATURE_HEADER, secret_hint="auth_token= (API keys do not sign)")
    webhook_format = "form"
    owned_options = frozenset({"To", "StatusCallback"})
    accepts = ACCEPTS
    #: A 2xx answer is the Message resource; an error is ``{"code", "message", ...}`` with a 4xx/5xx status.
    answer = Answer(
        code="code",
        text=("message", "detail", "title"),
        errors_on_success=False,
        recipient="to",
        message_id="sid",
        status="status",
        id_required=True,
    )

    account_sid: Credential = setting(
        default=None, credential=True, env=f"{ENV}ACCOUNT_SID", pattern=SID % "AC", rule=SID_RULE % "AC", secret=False
    )
    _auth_token: str | None = setting(default=None, alias="auth_token", credential=True, required=False)
    api_key_sid: str | None = setting(
        default=None,
        credential=True,
        required=False,
        env=f"{ENV}API_KEY_SID",
        pattern=SID % "SK",
        rule=SID_RULE % "SK",
        secret=False,
    )
    _api_key_secret: str | None = setting(
        default=None, alias="api_key_secret", credential=True, required=False, env=f"{ENV}API_KEY_SECRET"
    )
    messaging_service_sid: str | None = setting(
        default=None,
        credential=True,
        required=False,
        env=f"{ENV}MESSAGING_SERVICE_SID",
        pattern=SID % "MG",
        rule=SID_RULE % "MG",
        secret=False,
        repr=True,
    )
    base_url: BaseURL = setting(default=None)
    webhook_url: str | None = setting(default=None, schemes=("http", "https"))

    def __post_init__(self) -> None:
        key = self.api_key_sid
        user, password = (key, self._api_key_secret) if key else (self.account_sid, self._auth_token)
        if not password:
            hint = "api_key_secret=" if key else "auth_token=... or set OMNISEND_TWILIO_AUTH_TOKEN (or an API key)"
            raise ConfigurationError(f"no {hint.split('=')[0]}. Pass Twilio({hint})", provider=self.name)
        self._basic = (user, password)
        self._authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self.webhook_secret = self._auth_token  # Twilio signs callbacks with the Auth Token

    def _basic_pairs(self) -> tuple[tuple[str, str], ...]:
        return (self._basic,)

    def _request(self, method: str, tail: str, **kwargs: Any) -> httpx.Request:
        path = f"/2010-04-01/Accounts/{self.account_sid}/{tail}"
        return self.build_http_request(method, path, headers={"Authorization": self._authorization}, **kwargs)

    # -- send -----------------------------------------------------------------------------

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        fields = self._content(message)
        channel = "whatsapp:" if message.channel == "whatsapp" else ""
        fields["To"] = channel + message.recipients[0]
        if message.sender is not None:
            fields["From"] = channel + message.sender
        if self.messaging_service_sid is not None:
            fields["MessagingServiceSid"] = self.messaging_service_sid
        if message.validity is not None:
            fields["ValidityPeriod"] = str(int(message.validity.total_seconds()))
        if message.scheduled_at is not None:
            fields["SendAt"] = f"{message.scheduled_at.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
            fields["ScheduleType"] = "fixed"
        if self.webhook_url is not None:
            joiner = "&" if urlsplit(self.webhook_url).query else "?"
            fields["StatusCallback"] = f"{self.webhook_url}{joiner}{urlencode({KEY_PARAM: idempotency_key})}"
        options = {k: str(v).lower() if isinstance(v, bool) else v for k, v in message.options.items() if v is not None}
        return self._request("POST", "Messages.json", data={**fields, **options})

    def _content(self, message: Message) -> dict[str, Any]:
        """``Body`` / ``MediaUrl`` / ``ContentSid`` + ``ContentVariables`` (``ACCEPTS`` checked the message)."""
        fields: dict[str, Any] = {"Body": message.text} if message.text is not None else {}
        if message.template is not None:
            variables = json.dumps(message.template.named_params)
            fields.update(ContentSid=message.template.name, ContentVariables=variables)
        if message.media is not None:
            fields["MediaUrl"] = message.media.url
        return fields

    # -- status lookups and callbacks -----------------------------------------------------

    def build_status_request(self, message_id: str) -> httpx.Request:
        return self._request("GET", f"Messages/{quote(message_id, safe='')}.json")

    def parse_status(self, response: httpx.Response, *, message_id: str | None = None) -> DeliveryReport:
        body = self.read_answer(response)
        return self._report(body, timestamp=_time(body.get("date_updated")), raw=body)

    def webhook_report(self, event: Mapping[str, Any], callback: Callback) -> DeliveryReport:
        """A status callback (its form is signed with this account's Auth Token: no other account's
        passes); the idempotency key comes back in the callback URL's ``omnisend_key``."""
        fields = {key: next((event[n] for n in names if event.get(n)), None) for key, names in CALLBACK_FIELDS.items()}
        if not fields["sid"] or not fields["status"]:
            raise ValidationError("not a message status callback: no MessageSid/MessageStatus", provider=self.name)
        when = _time(event.get("RawDlrDoneDate"))
        return self._report(fields, timestamp=when, raw=dict(event), key=callback.query.get(KEY_PARAM))

    def _report(
        self, fields: Mapping[str, Any], *, timestamp: datetime | None, raw: object, key: str | None = None
    ) -> DeliveryReport:
        """A report from Message-resource fields (``sid``, ``status``, ``to``, ``error_code``, ``error_message``)."""
        sid, status, code = fields.get("sid"), fields.get("status"), str(fields.get("error_code"))
        error_code = int(code) if code.isdigit() else None
        return self.build_report(
            message_id=sid,
            vendor_status=status,
            recipient=_number(fields.get("to")),
            idempotency_key=key,
            timestamp=timestamp,
            error_code=error_code,
            error_message=fields.get("error_message") or None,
            error_table=ERRORS,
            event_id=f"{sid}:{status}:{error_code or ''}",
            raw=raw,
        )


def _number(value: object) -> str | None:
    """A Twilio address without its channel prefix (``whatsapp:+48…`` → ``+48…``)."""
    return None if value in (None, "") else str(value).rpartition(":")[2]


def _time(value: object) -> datetime | None:
    """``date_updated`` (RFC 2822) or ``RawDlrDoneDate`` (``YYMMDDhhmm``, UTC); ``None`` when unreadable."""
    text = str(value)
    try:
        if text.isdigit():
            return datetime.strptime(text, "%y%m%d%H%M").replace(tzinfo=timezone.utc)
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
