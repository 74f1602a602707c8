"""SMSAPI (smsapi.pl / smsapi.com): the legacy ``POST /sms.do`` API.

* Docs: https://www.smsapi.pl/docs and https://www.smsapi.com/docs ("sms.do", "Error codes").
* Auth: OAuth token as ``Authorization: Bearer <token>``; legacy user/password is not supported.
* Hosts: ``https://api.smsapi.pl`` (default, ``region="pl"``), ``https://api.smsapi.com``
  (``"com"``), ``https://api.smsapi.se`` (``"se"``) or ``https://api.smsapi.bg`` (``"bg"``); an
  account belongs to one of them, and a token of another platform answers 101 (the error says so).

Quirks:

* Errors arrive with **HTTP 200** as ``{"error": <int>, "message": ...}``; the body decides, and
  a non-2xx answer without a code falls back to the HTTP status (the base class).
* The code table covers the whole legacy API (sender names, subusers, contacts) because the
  same numbers come back from every ``sms.do`` call; only codes the vendor says "repeat your
  request" or "too many requests" for are retried.
* De-duplication: every send carries ``idx`` (our idempotency key; ``key--N`` per recipient in
  a bulk send, the same ids whether a message goes alone or in a ``send_many`` batch) and
  ``check_idx=1``; keys holding ``|`` or ``,`` (idx and callback separators) are refused. A repeated ``idx`` answers **53**, which on a retry means
  the first attempt landed, so ambiguous failures (timeouts, 5xx without a body) are retried
  safely. The uniqueness window of ``idx`` is unconfirmed; within one ``send()`` it holds.
* Codes 8, 201 and 999 ("internal error") may follow a message the vendor already took; they
  are marked ambiguous and retried only thanks to ``idx``.
* 52 ("max 10 attempts to one number within 60 s") is a ``RateLimited`` with ``retry_after=60``.
* Unconfirmed (safe choices): whether a success body lists ``invalid_numbers`` for some
  recipients (read when present); the bulk maximum (we split at 1000 recipients); the meaning of
  status names ``RENEWAL``/``STOP``/``DRAFT``/``PENDING`` (queued, cancelled, scheduled, queued);
  the exact callback form (GET, comma-separated ``MsgId``/``status``/``idx``/``donedate``, also
  accepted as a form body). SMSAPI does not sign callbacks: use a secret token in the URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import httpx

from ..errors import (
    AuthError,
    DeliveryFailed,
    DuplicateMessage,
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
from ._accepts import NOT_PAST, Accepts, Matches, PerRequest, Refused, Within
from ._json import as_text
from ._webhook import Callback, Joined, ReportFields, SharedSecret, as_number
from .base import (
    Answer,
    BaseURL,
    Credential,
    ErrorCode,
    ErrorTable,
    Hosts,
    Provider,
    StatusEntry,
    StatusTable,
    setting,
    utc_from_timestamp,
)

__all__ = ["Smsapi"]

ERRORS: Final = ErrorTable(
    {
        8: ErrorCode(ServiceUnavailable, "Error in request (please report)", ambiguous=True),
        11: ErrorCode(
            ValidationError,
            "Message too long or there is no message or parameter nounicode is set and special characters (including Polish characters) are used.",
        ),
        12: ErrorCode(ValidationError, "Message has over 160 chars when parameter &single=1."),
        13: ErrorCode(InvalidRecipient, "Lack of valid phone numbers (invalid or blacklisted numbers)."),
        14: ErrorCode(PermissionDenied, "Invalid sender name."),
        17: ErrorCode(ValidationError, "FLASH message cannot contain special characters."),
        18: ErrorCode(ValidationError, "Invalid number of parameters."),
        19: ErrorCode(ValidationError, "Too many messages in one request."),
        20: ErrorCode(ValidationError, "Invalid number of IDX parameters."),
        27: ErrorCode(ValidationError, "Too long IDX parameter. Maximum 255 chars."),
        28: ErrorCode(
            ValidationError,
            "Invalid value of parameter time_restriction. Available values are: FOLLOW, IGNORE or NEAREST_AVAILABLE.",
        ),
        30: ErrorCode(ValidationError, "Wrong UDH parameter when &datacoding=bin"),
        36: ErrorCode(ValidationError, "Trying to send bin message with footer is disallowed!"),
        40: ErrorCode(NotFound, "No group with given name in contacts database."),
        41: ErrorCode(ValidationError, "Chosen group is empty."),
        50: ErrorCode(ValidationError, "Messages may be scheduled up to 3 months in the future."),
        52: ErrorCode(
            RateLimited,
            "Too many attempts of sending messages to one number (maximum 10 attempts within 60s).",
            retry_after=60.0,
        ),
        53: ErrorCode(
            DuplicateMessage,
            "Not unique idx parameter, message with the same idx has been already sent and &check_idx=1.",
        ),
        54: ErrorCode(ValidationError, "Wrong date format (only unix timestamp and ISO 8601) when &date_validate=1."),
        56: ErrorCode(
            ValidationError,
            "The difference between date sent and expiration date can't be less than 1 and more tha 72 hours.",
        ),
        57: ErrorCode(InvalidRecipient, "Recipient's number is on blacklist."),
        60: ErrorCode(NotFound, "Group of codes with given name doesn't exist."),
        61: ErrorCode(ValidationError, "Group of codes expiry date has passed."),
        62: ErrorCode(ValidationError, "No more codes in given group (every code has been used already)"),
        65: ErrorCode(
            ValidationError,
            "Not enough discount codes for the sending. The number of discount codes must be at least equal to number of messages to be sent.",
        ),
        66: ErrorCode(
            TemplateError,
            "There is no [%code] tag in the message with a &discount_group parameter (this tag is required)",
        ),
        70: ErrorCode(ValidationError, "Invalid CALLBACK address in notify_url parameter."),
        72: ErrorCode(
            ValidationError,
            "Parameter notify_url may be used only for single request (cannot be used for bulk submissions).",
        ),
        74: ErrorCode(PermissionDenied, "Date of sent is outside allowed timeframe set for this user."),
        75: ErrorCode(NotFound, "No planned messages to delete."),
        76: ErrorCode(ValidationError, "Invalid encoding used in request. UTF-8 is required."),
        101: ErrorCode(
            AuthError,
            "Invalid authorization info. ATTENTION! API password may be different than web panel password.",
            hint="a token of another SMSAPI platform answers 101 too: check that Smsapi(region=...) "
            "('pl', 'com', 'se', 'bg') is the platform where the token was made",
        ),
        102: ErrorCode(AuthError, "Invalid username or password."),
        103: ErrorCode(InsufficientBalance, "Insufficient credits on Your account."),
        104: ErrorCode(TemplateError, "No such template."),
        105: ErrorCode(PermissionDenied, "Wrong IP address (for IP filter turned on)."),
        106: ErrorCode(ValidationError, "Invalid link"),
        110: ErrorCode(PermissionDenied, "Action not allowed for your account"),
        200: ErrorCode(ServiceUnavailable, "Unsuccessful message submission, please repeat your request."),
        201: ErrorCode(ServiceUnavailable, "System internal error (please report).", ambiguous=True),
        202: ErrorCode(RateLimited, "Too many simultaneous request, message won't be sent."),
        203: ErrorCode(RateLimited, "Too many requests. Please try again later."),
        300: ErrorCode(ValidationError, "Invalid parameter &points value, &points=1 expected."),
        301: ErrorCode(NotFound, "ID of messages doesn't exist."),
        400: ErrorCode(NotFound, "Invalid message ID of a status response."),
        999: ErrorCode(ServiceUnavailable, "System internal error (please report).", ambiguous=True),
        1000: ErrorCode(PermissionDenied, "Action only available for main user."),
        1001: ErrorCode(
            ValidationError,
            "Invalid action (expected one of following parameters: add_user, set_user, get_user, credits).",
        ),
        1010: ErrorCode(ValidationError, "Subuser's adding error."),
        1020: ErrorCode(ValidationError, "Subuser's editing error."),
        1021: ErrorCode(ValidationError, "No data to edit, at least one parameter has to be edited."),
        1030: ErrorCode(ValidationError, "Checking user's data error."),
        1032: ErrorCode(
            NotFound,
            "Subuser doesn't exist for this main user. This error may also occur when trying to get a subuser which does not contain main account username prefix and not using without_prefix parameter.",
        ),
        1100: ErrorCode(ValidationError, "Subuser's data error."),
        1110: ErrorCode(ValidationError, "Invalid new subuser's name"),
        1111: ErrorCode(ValidationError, "New subuser's name is missing."),
        1112: ErrorCode(ValidationError, "Too short new subuser's name, it has to contain minimum 3 characters."),
        1113: ErrorCode(
            ValidationError,
            "Too long new subuser's name, subuser's name with main user's prefix may contain maximum 32 characters.",
        ),
        1114: ErrorCode(
            ValidationError,
            "Not allowed characters occured in subuser's name, following are allowed: letters [A – Z], digits [0 – 9] and following others @, -, _ and ..",
        ),
        1115: ErrorCode(DuplicateMessage, "Another user with the same name exists."),
        1120: ErrorCode(ValidationError, "New subuser's password error."),
        1121: ErrorCode(ValidationError, "Password too short."),
        1122: ErrorCode(ValidationError, "Password too long."),
        1123: ErrorCode(ValidationError, "Password should be hashed with MD5."),
        1130: ErrorCode(ValidationError, "Credit limit error"),
        1131: ErrorCode(ValidationError, "Parameter limit ought to be a number."),
        1140: ErrorCode(ValidationError, "Month limit error."),
        1141: ErrorCode(ValidationError, "Parameter month_limit ought to be a number."),
        1150: ErrorCode(ValidationError, "Wrong senders parameter value, binnary 0 and 1 values allowed."),
        1160: ErrorCode(ValidationError, "Wrong phonebook parameter vaule, binnary 0 and 1 values allowed."),
        1170: ErrorCode(ValidationError, "Wrong active parameter vaule, binnary 0 and 1 values allowed."),
        1180: ErrorCode(ValidationError, "Parameter info error."),
        1183: ErrorCode(ValidationError, "Parameter info is too long."),
        1190: ErrorCode(ValidationError, "API password for subuser's account error."),
        1192: ErrorCode(ValidationError, "Wrong API password lenght (password hashed with MD5 should have 32 chars)."),
        1193: ErrorCode(ValidationError, "API password should be hashed with MD5."),
        2001: ErrorCode(ValidationError, "Invalid action (parameter add, status, delete or list expected)."),
        2010: ErrorCode(ValidationError, "New sender name adding error."),
        2030: ErrorCode(ValidationError, "Sender name's status checking error."),
        2031: ErrorCode(NotFound, "Such sender name doesn't exist."),
        2060: ErrorCode(ValidationError, "Default sender name error."),
        2061: ErrorCode(ValidationError, "Sender name has to be active for setting it as default."),
        2062: ErrorCode(ValidationError, "This sender name is already set as default."),
        2100: ErrorCode(ValidationError, "Data error."),
        2110: ErrorCode(ValidationError, "Sender name error."),
        2111: ErrorCode(
            ValidationError, "Sender name is missing for adding new sender name action (parameter &add is empty)."
        ),
        2112: ErrorCode(
            ValidationError,
            "Invalid Sender Name's name (i.e. Name containing special chars or name too long), sender name may contain up to 11 chars, chars allowed: a-z A-Z 0-9 - . [spacebar]",
        ),
        2115: ErrorCode(DuplicateMessage, "Sender name already exist"),
        4000: ErrorCode(ValidationError, "General contacts database error."),
        4001: ErrorCode(PermissionDenied, "Action not available for this account."),
        4002: ErrorCode(ValidationError, "Invalid action."),
        4003: ErrorCode(ValidationError, "Invalid parameter usage."),
        4004: ErrorCode(
            ValidationError, "Too large limit parameter value (i.e. for list_contacts action maximum value is 200)."
        ),
        4100: ErrorCode(ValidationError, "General groups' action error."),
        4101: ErrorCode(NotFound, "Group not found."),
        4110: ErrorCode(ValidationError, "General group's name error."),
        4111: ErrorCode(ValidationError, "Invalid group's name."),
        4112: ErrorCode(ValidationError, "Group's name can not be empty."),
        4113: ErrorCode(ValidationError, "Group's name too short (min 2 chars)."),
        4114: ErrorCode(ValidationError, "Group's name too long (max 32 chars)."),
        4115: ErrorCode(ValidationError, "Forbidden chars appeard in group's name."),
        4116: ErrorCode(DuplicateMessage, "Group already exists."),
        4121: ErrorCode(ValidationError, "Invalid Info field value for groups."),
        4122: ErrorCode(ValidationError, "Too long Info field value for contact (max 200 chars)."),
        4200: ErrorCode(ValidationError, "General contact error."),
        4201: ErrorCode(NotFound, "Contact not found."),
        4210: ErrorCode(ValidationError, "General phone number error."),
        4211: ErrorCode(ValidationError, "Invalid phone number."),
        4212: ErrorCode(ValidationError, "Contact has to contain phone number."),
        4213: ErrorCode(ValidationError, "Phone number is too short."),
        4214: ErrorCode(ValidationError, "Phone number is too long."),
        4220: ErrorCode(ValidationError, "First name error."),
        4221: ErrorCode(ValidationError, "First name too short (min 2 chars)."),
        4222: ErrorCode(ValidationError, "First name too long (max 100 chars)."),
        4230: ErrorCode(ValidationError, "Last name error."),
        4231: ErrorCode(ValidationError, "Last name too long (min2 chars)."),
        4232: ErrorCode(ValidationError, "Last name too long (max 100 chars)."),
        4240: ErrorCode(ValidationError, "Contact Info field error."),
        4241: ErrorCode(ValidationError, "Too long Info field value for contact (max 200 chars)."),
        4250: ErrorCode(ValidationError, "E-mail address error for this contact."),
        4260: ErrorCode(ValidationError, "Birth date error for this contact."),
        4270: ErrorCode(ValidationError, "Group error for this contact."),
        4271: ErrorCode(NotFound, "Group not found."),
        4272: ErrorCode(ValidationError, "Group name is neccessary for group actions."),
        4280: ErrorCode(ValidationError, "Gender error."),
    }
)

_S = DeliveryStatus
STATUSES: Final = StatusTable(
    {
        401: StatusEntry(_S.UNKNOWN, "NOT_FOUND: Wrong ID or report has expired."),
        402: StatusEntry(_S.EXPIRED, "EXPIRED: Messages expired."),
        403: StatusEntry(_S.SENT, "SENT: Message is sent."),
        404: StatusEntry(_S.DELIVERED, "DELIVERED: Message is delivered to recipient."),
        405: StatusEntry(
            _S.UNDELIVERED, "UNDELIVERED: Message is undelivered (invalid number, roaming error etc).", DeliveryFailed
        ),
        406: StatusEntry(_S.FAILED, "FAILED: Sending message failed – please report it to us.", ServiceUnavailable),
        407: StatusEntry(
            _S.REJECTED, "REJECTED: Message rejected (not in the seed; sent in callbacks).", InvalidRecipient
        ),
        408: StatusEntry(_S.UNKNOWN, "UNKNOWN: No report (message may be either delivered or not)."),
        409: StatusEntry(_S.QUEUED, "QUEUED: Message is waiting to be sent."),
        410: StatusEntry(_S.SENT, "ACCEPTED: Message is delivered to operator."),
        # The same statuses by name, as sms.do answers and status lookups spell them.
        "NOT_FOUND": StatusEntry(_S.UNKNOWN, "Wrong ID or report has expired."),
        "EXPIRED": StatusEntry(_S.EXPIRED, "Messages expired."),
        "SENT": StatusEntry(_S.SENT, "Message is sent."),
        "DELIVERED": StatusEntry(_S.DELIVERED, "Message is delivered to recipient."),
        "UNDELIVERED": StatusEntry(_S.UNDELIVERED, "Message is undelivered.", DeliveryFailed),
        "FAILED": StatusEntry(_S.FAILED, "Sending message failed.", ServiceUnavailable),
        "REJECTED": StatusEntry(_S.REJECTED, "Message rejected.", InvalidRecipient),
        "UNKNOWN": StatusEntry(_S.UNKNOWN, "No report."),
        "QUEUE": StatusEntry(_S.QUEUED, "Message is waiting to be sent."),
        "QUEUED": StatusEntry(_S.QUEUED, "Message is waiting to be sent."),
        "ACCEPTED": StatusEntry(_S.SENT, "Message is delivered to operator."),
        "RENEWAL": StatusEntry(_S.QUEUED, "Waiting for a renewed attempt (meaning unconfirmed)."),
        "STOP": StatusEntry(_S.CANCELLED, "Stopped before sending (meaning unconfirmed)."),
        "DRAFT": StatusEntry(_S.SCHEDULED, "Draft (meaning unconfirmed)."),
        "PENDING": StatusEntry(_S.QUEUED, "Pending (meaning unconfirmed)."),
    },
    case_insensitive=True,
)

#: The platforms (smsapi-python-client ``smsapi/client.py``: SmsApiPlClient, SmsApiComClient,
#: SmsApiBgClient, SmsApiSwedenClient); an account and its tokens belong to one of them.
HOSTS: Final = {
    "pl": "https://api.smsapi.pl",
    "com": "https://api.smsapi.com",
    "se": "https://api.smsapi.se",
    "bg": "https://api.smsapi.bg",
}
#: Sender names: up to 11 of letters, digits, space and ``. - & @ + _ ! %`` (the SMSAPI Tech FAQ,
#: smsapi.com/blog/tech; the older 2112 text lists fewer). Anything else the vendor refuses (14).
SENDER_PATTERN: Final = r"[A-Za-z0-9 .\-&@+_!%]{1,11}"
SENDER_RULE: Final = "up to 11 characters: letters, digits, space and . - & @ + _ ! %"
MAX_PARTS: Final = 10
#: The fields of every send: JSON answers with details, UTF-8, de-duplication by ``idx``.
FORM: Final = {"format": "json", "encoding": "utf-8", "details": "1", "check_idx": "1"}
#: ``Smsapi(test=True)``: validated and answered, never delivered or charged.
TEST_FORM: Final = {True: {"test": "1"}, False: {}}
MAX_SCHEDULE_AHEAD: Final = timedelta(days=90)
VALIDITY_RANGE: Final = (timedelta(hours=1), timedelta(hours=72))
MAX_IDX: Final = 255
#: SMS only; a sender of ``SENDER_PATTERN``; scheduled up to 90 days ahead; validity 1 to 72 hours.
ACCEPTS: Final = Accepts(
    recipients=PerRequest(),
    media=Refused("media on SMS (use MMS in the SMSAPI panel)"),
    sender=Matches(SENDER_PATTERN, SENDER_RULE),
    scheduled_at=(NOT_PAST, Within(most=MAX_SCHEDULE_AHEAD, why="scheduled_at more than 3 months (90 days) ahead")),
    validity=Within(*VALIDITY_RANGE, why="a validity outside 1 to 72 hours"),
)


class Smsapi(Provider):
    """SMSAPI adapter (``sms.do``).

    Args:
        token: OAuth token from the SMSAPI panel (or ``OMNISEND_SMSAPI_TOKEN``).
        region: the account's platform: ``"pl"`` (api.smsapi.pl, default), ``"com"``
            (api.smsapi.com), ``"se"`` (api.smsapi.se) or ``"bg"`` (api.smsapi.bg).
        base_url: overrides the host (tests, emulator, proxies).
        test: send with ``test=1`` — validated and answered by SMSAPI, never delivered or charged.
        webhook_secret: require this shared secret on callbacks (``?token=`` in the callback URL you
            register, or its Basic-auth password); SMSAPI does not sign callbacks.
    """

    name = "smsapi"
    display_name = "SMSAPI"
    channels = frozenset({"sms"})
    errors = ERRORS
    statuses = STATUSES
    deduplicates = True
    webhook_auth = "shared secret (URL token or Basic auth); SMSAPI does not sign"
    webhook_check = SharedSecret()
    webhook_format = "query"
    webhook_fields = ReportFields(
        message_id="MsgId",
        status="status",
        recipient="to",
        idempotency_key="idx",
        timestamp="donedate",
        event_id=Joined(":", "MsgId", "status"),
        time=utc_from_timestamp,
        numbers=True,
    )
    status_lookup = True
    credential_env = "OMNISEND_SMSAPI_TOKEN"
    max_recipients = 1000
    keyed_recipients = True
    max_sms_parts = MAX_PARTS
    accepts = ACCEPTS
    answer = Answer(
        code="error",
        text="message",
        items="list",
        recipient=("submitted_number", "number"),
        message_id="id",
        status="status",
        item_code="error",
        item_text="message",
    )
    owned_options = frozenset(
        {"to", "group", "idx", "check_idx", "format", "details", "encoding", "access_token", "username", "password"}
    )

    hosts = Hosts(HOSTS, "region")

    _token: Credential = setting(default=None, alias="token", credential=True)
    region: str = setting(default="pl", choices=HOSTS, repr=True)
    base_url: BaseURL = setting(default=None)
    test: bool = setting(default=False, repr=True)
    webhook_secret: str | None = setting(default=None, callback_secret=True)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    # -- send -----------------------------------------------------------------------------

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        form = {"to": ",".join([n.lstrip("+") for n in message.recipients]), **FORM}
        form["idx"] = self._idx(self.recipient_ids(message, idempotency_key))
        form.update(self._content(message))
        self._add_times(form, message)
        form.update(TEST_FORM[bool(self.test)])
        form.update(self.form_options(message.options))
        return self.build_http_request("POST", "/sms.do", headers=self._auth(), data=form)

    def _idx(self, ids: Sequence[str]) -> str:
        """The ``idx`` field: one id per recipient, ``|``-separated, each at most :data:`MAX_IDX` characters."""
        longest, idx = max(ids, key=len), "|".join(ids)
        if len(longest) > MAX_IDX:
            self.invalid(
                f"idempotency_key too long: SMSAPI idx allows {MAX_IDX} characters, and {longest[:20]!r}… has "
                f"{len(longest)} (a send to several numbers adds '--<n>' to the key for each)",
                field="idempotency_key",
            )
        if "," in idx or idx.count("|") != len(ids) - 1:
            self.invalid(
                "idempotency_key may not contain '|' or ',': SMSAPI separates idx values with them",
                field="idempotency_key",
            )
        return idx

    def _content(self, message: Message) -> dict[str, str]:
        """``message``, or ``template`` with ``param1``..``param4``, and ``from``."""
        fields = {"message": message.text} if message.text is not None else {}
        if message.template is not None:
            params = message.template.params
            values = list(params.values()) if isinstance(params, dict) else list(params)
            if len(values) > 4:
                self.unsupported("more than 4 template parameters (param1..param4)", field="template")
            fields.update({"template": message.template.name, **{f"param{i}": v for i, v in enumerate(values, 1)}})
        if message.sender is not None:
            fields["from"] = message.sender
        return fields

    def _add_times(self, form: dict[str, str], message: Message) -> None:
        """``date`` (a scheduled send) and ``expiration_date`` (validity, counted from the send)."""
        send_at = message.scheduled_at or datetime.now(timezone.utc)
        if message.scheduled_at is not None:
            form["date"] = str(int(send_at.timestamp()))
        if message.validity is not None:
            form["expiration_date"] = str(int((send_at + message.validity).timestamp()))

    def answer_items(self, body: Mapping[str, Any], response: httpx.Response) -> list[object]:
        """The accepted ``list``, then the refused ``invalid_numbers`` (each read as code 13)."""
        listed, refused = super().answer_items(body, response), body.get("invalid_numbers")
        if not refused:
            return listed
        return [*listed, *({**item, "error": 13} for item in self.objects(refused, response, "invalid_numbers"))]

    # -- status -----------------------------------------------------------------------------

    def build_status_request(self, message_id: str) -> httpx.Request:
        return self.build_http_request(
            "GET", "/sms.do", headers=self._auth(), params={"status": message_id, "format": "json"}
        )

    def parse_status(self, response: httpx.Response, *, message_id: str | None = None) -> DeliveryReport:
        body = self.read_answer(response)
        items = self.objects(body.get("list"), response, "list")
        item = next((i for i in items if as_text(i.get("id")) == message_id), items[0] if items else None)
        if item is None:
            raise self.vendor_error(301, response=response, raw=body)
        return self.build_report(
            message_id=item.get("id"),
            vendor_status=item.get("status"),
            recipient=as_number(item.get("number")),
            idempotency_key=item.get("idx"),
            timestamp=utc_from_timestamp(item.get("status_change_date") or item.get("date_sent")),
            raw=item,
        )

    # -- webhook ----------------------------------------------------------------------------

    def webhook_events(self, payload: Any, callback: Callback) -> list[Mapping[str, Any]]:
        """One event per report: every field of the callback is comma-separated, in step."""
        if not payload.get("MsgId"):
            raise ValidationError("SMSAPI callback without MsgId", provider=self.name, field="MsgId")
        columns = {name: str(value).split(",") for name, value in payload.items()}
        return [
            {name: values[i] if i < len(values) and values[i] else None for name, values in columns.items()}
            for i in range(len(columns["MsgId"]))
        ]
