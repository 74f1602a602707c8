"""Mobizon (mobizon.kz, .ua, .com.br, .gmbh): the ``/service/<module>/<method>`` API, version 1.

* Docs: https://mobizon.kz/help/api-docs (the same pages on every country site).
* Auth: the API key travels as the ``apiKey`` **query parameter** of every call
  (``?output=json&api=v1&apiKey=…``). It is registered as a secret: it never appears in an
  error, a repr, ``raw``, or a log line (httpx's own request log included).
* Hosts: each account has one home domain (``api.mobizon.kz``, ``.ua``, ``.com.br``,
  ``.gmbh``); pass it as ``base_url`` (``"api.mobizon.ua"`` is enough) or set
  ``OMNISEND_MOBIZON_BASE_URL``. The default is ``api.mobizon.kz``.

Quirks:

* Unconfirmed: Mobizon documents no text length limit. Texts needing more than 10 SMS parts
  (1530 GSM-7 or 670 UCS-2 characters) are refused before sending, a ceiling most routes share,
  rather than left to be cut or refused by an operator after they were charged.
* Bodies are form-encoded with PHP-style brackets (``params[validity]=60``, ``recipients[0]=…``);
  a literal ``+`` goes out as ``%2B``, spaces as ``+``, text as UTF-8. Numbers go out as digits.
* Every answer is the envelope ``{code, data, message}``, read whatever the HTTP status; ``code``
  decides, and numbers that arrive as strings (``"0"``, ``"12111324"``) are read as numbers.
  Codes 4/5/6 (bad module, method, format) come from the vendor, so they are ``ValidationError``.
* Code **13** (wrong domain): the call is re-sent **once** to the domain ``data`` names, only if
  it is ``api.mobizon.<one label>`` or ``api.mobizon.com.br`` (never ``api.mobizon.evil.com``:
  the key goes to no other host); the provider sends there from then on (``home_url``; the
  configured ``base_url`` is never rewritten) and logs a warning on the ``omnisend`` logger asking
  you to fix ``base_url``. Anything else raises ``WrongDomain``.
* No de-duplication exists: codes 3, 10, 98, 100 and 999 and timeouts on a send may follow an
  accepted SMS, so they raise ``DeliveryUnknown`` and are not retried. Every send carries the
  idempotency key as the campaign name (``params[name]``), to find it in the panel before
  re-sending. Code 30 and connection errors are retried; status lookups are retried freely.
* One recipient: ``message/sendSmsMessage``. Several: ``campaign/create``, ``addRecipients`` in
  chunks of 500 (98/99 give per-recipient results; none added raises 99's ``InvalidRecipient``
  with the reasons), then ``campaign/send``. Nothing goes out before ``campaign/send``: create,
  add and the task polls are steps that send nothing (``Repeat.PREPARE``), repeated on ambiguous
  failures (item code 4, "already in the campaign", on a repeat means the first attempt landed),
  and a failure before the send is certainly not sent (``accepted=False``). Code 100
  (a background add) is polled through ``taskqueue/getStatus`` once a second (``Step.delay``), 60
  times at most; its recipients get no message ids.
* Insufficient balance has **no documented code** (unconfirmed). Codes 1, 12, 15 and 999 whose
  ``message`` or ``data`` name the balance or funds (``balance``, ``funds``, ``баланс``,
  ``средств``, ``коштів``, ``қаражат``, ``saldo``, ``Guthaben``) raise ``InsufficientBalance``.
  None of these codes is retried on a send whichever class it gets, so a wrong guess never makes
  omnisend send twice; "insufficient" alone does not count.
* Validation errors (1, 11, 12) keep ``data``'s per-field messages in ``str(error)`` and ``raw``,
  with ``field`` set; a fault in the ``recipient`` field raises ``InvalidRecipient``.
* ``getSMSStatus`` takes at most 100 ids (``status_batch``: ``Client.get_statuses`` asks in
  batches); an id the vendor leaves out reads ``UNKNOWN`` with a ``NotFound`` reason.
* Times (``deferredToTs``, ``statusUpdateTs``) are account-local and zoneless; pass
  ``account_timezone`` (default UTC; the zone Mobizon uses is unconfirmed).
* Webhooks (2026): JSON ``sms-delivery-report`` events, one per message and final status; with
  ``webhook_secret`` the ``sign`` (SHA-1 of ``eventId|attempt|eventCreateTs|secret``) is required
  and checked in constant time (``WebhookAuthError``). ``event_id`` is ``eventId``, stable across
  re-deliveries; form events give no reports. The raw and XML formats are not supported.
* Unconfirmed, safe choices: the shape of ``data`` for code 13 (a host, URL or object is read);
  ``DELETED`` reads as undelivered; ``UNKNOWN``/``EXPIRD``/``SCHEDUL`` are read although only
  third parties show them; sender ids are checked only for length (11 characters, 15 digits).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta, timezone, tzinfo
from functools import partial
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import httpx

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
from ..models import DeliveryReport, DeliveryStatus, Message, RecipientResult, SendResult
from ._accepts import E164, Accepts, Matches, Refused, Required, Within
from ._answers import match_items, refused_status
from ._json import as_text, merged
from ._tables import _code_key
from ._webhook import First, ReportFields, SignedFields
from .base import (
    BaseURL,
    Code,
    Credential,
    ErrorCode,
    ErrorTable,
    Flow,
    Provider,
    Repeat,
    StatusEntry,
    StatusTable,
    Step,
    setting,
    utc_reader,
)

__all__ = ["Mobizon", "WrongDomain"]

R = TypeVar("R")
logger = logging.getLogger("omnisend")


class WrongDomain(ProviderError):
    """Mobizon code 13: this API domain does not serve the account; ``raw["data"]`` names the right one."""

    summary = "this API domain does not serve the account"


ERRORS: Final = ErrorTable(
    {
        1: ErrorCode(ValidationError, "Validation error of the transmitted data; data tells which fields are wrong."),
        2: ErrorCode(NotFound, "The specified record was not found (deleted, wrong id, or no permission)."),
        3: ErrorCode(ServiceUnavailable, "Unidentified application error.", ambiguous=True),
        4: ErrorCode(ValidationError, "Incorrect module parameter specified."),
        5: ErrorCode(ValidationError, "Incorrect method parameter specified."),
        6: ErrorCode(ValidationError, "Incorrect format parameter specified."),
        8: ErrorCode(AuthError, "Login error: wrong API key, or the session expired or was closed."),
        9: ErrorCode(PermissionDenied, "Access to the specified API method denied."),
        10: ErrorCode(ServiceUnavailable, "Error saving data on the server (concurrent access).", ambiguous=True),
        11: ErrorCode(ValidationError, "Some required parameters are missing from the request."),
        12: ErrorCode(ValidationError, "A parameter does not meet the established conditions or limits."),
        13: ErrorCode(
            WrongDomain, "This API server does not serve the user; data holds the right domain (followed once)."
        ),
        14: ErrorCode(PermissionDenied, "The user's account is blocked or deleted."),
        15: ErrorCode(ValidationError, "Error during an operation not related to data update; see message."),
        30: ErrorCode(RateLimited, "Request rate limit exceeded for this API method."),
        98: ErrorCode(
            InvalidRecipient, "The mass operation was done only for some elements; data lists each.", ambiguous=True
        ),
        99: ErrorCode(InvalidRecipient, "None of the elements of the mass operation were processed."),
        100: ErrorCode(
            ServiceUnavailable,
            "Not an error: sent for background execution, data holds the task id (polled on campaigns; "
            "anywhere else the outcome is unknown).",
            ambiguous=True,
        ),
        999: ErrorCode(ServiceUnavailable, "General service error; details in message.", ambiguous=True),
    }
)

#: Refinement of codes 1/11/12 when ``data`` puts the fault on the recipient number.
RECIPIENT_FIELD: Final = ErrorTable(
    {code: ErrorCode(InvalidRecipient, f"{ERRORS[code].meaning} (field: recipient)") for code in (1, 11, 12)}
)
#: Refinement of codes that may carry "out of funds" (no code of its own; see the docstring).
BALANCE: Final = ErrorTable(
    {
        code: ErrorCode(InsufficientBalance, f"{ERRORS[code].meaning} (text mentions the balance)")
        for code in (1, 12, 15, 999)
    }
)
#: ``campaign/addRecipients``: the per-recipient ``code`` of ``data[]`` (0 = added).
RECIPIENT_ERRORS: Final = ErrorTable(
    {
        1: ErrorCode(InvalidRecipient, "Empty recipient number."),
        2: ErrorCode(InvalidRecipient, "No recipient number in the data."),
        3: ErrorCode(InvalidRecipient, "The number is not in international format."),
        4: ErrorCode(DuplicateMessage, "The number is already in this campaign (a repeat: counted as added)."),
        5: ErrorCode(InvalidRecipient, "The number is on the user's or the system stop list."),
        6: ErrorCode(PermissionDenied, "Sending to this country is restricted by the account settings."),
        7: ErrorCode(InvalidRecipient, "The operator or country of the number is unknown."),
        8: ErrorCode(InvalidRecipient, "The operator of the number is not supported."),
        20: ErrorCode(TemplateError, "Placeholders are missing."),
        30: ErrorCode(NotFound, "Contact card not found."),
        31: ErrorCode(InvalidRecipient, "The contact card has no mobile number."),
        32: ErrorCode(NotFound, "Contact not found."),
        51: ErrorCode(ServiceUnavailable, "A short link could not be created (technical error); safe to re-send."),
        99: ErrorCode(ServiceUnavailable, "System error while adding the recipient; safe to re-send."),
    }
)

_S = DeliveryStatus
STATUSES: Final = StatusTable(
    {
        "NEW": StatusEntry(_S.QUEUED, "New message, not yet sent."),
        "ENQUEUD": StatusEntry(_S.QUEUED, "Queued for sending."),
        "ACCEPTD": StatusEntry(_S.SENT, "Sent and accepted by the operator for forwarding."),
        "UNDELIV": StatusEntry(_S.UNDELIVERED, "Not delivered to the recipient.", DeliveryFailed),
        "REJECTD": StatusEntry(
            _S.REJECTED, "Rejected by the operator (number, text, unregistered sender).", ValidationError
        ),
        "PDLIVRD": StatusEntry(_S.SENT, "Not all segments delivered yet."),
        "DELIVRD": StatusEntry(_S.DELIVERED, "Fully delivered to the recipient."),
        "EXPIRED": StatusEntry(_S.EXPIRED, "Not delivered within the waiting period (at most 1 day)."),
        "DELETED": StatusEntry(_S.UNDELIVERED, "Deleted because of operator-side restrictions.", PermissionDenied),
        "UNKNOWN": StatusEntry(_S.UNKNOWN, "No status (appears in campaign counters, not in the status table)."),
        "EXPIRD": StatusEntry(_S.EXPIRED, "Expired (spelling seen only in a third-party SDK)."),
        "SCHEDUL": StatusEntry(_S.SCHEDULED, "Scheduled (spelling seen only in a third-party SDK)."),
    },
    case_insensitive=True,
)
#: The campaign ``status`` of a ``sendSmsMessage``/``campaign/send`` answer.
CAMPAIGN_STATUSES: Final = StatusTable(
    {1: StatusEntry(_S.QUEUED, "Waiting for moderation."), 2: StatusEntry(_S.QUEUED, "Sent without moderation.")}
)
#: Item codes of an added recipient: none, 0, and those that say an earlier attempt added it (4).
ADDED: Final = frozenset({None, 0, *(c for c, row in RECIPIENT_ERRORS.items() if row.exc is DuplicateMessage)})
DOC_TABLES: Final = [
    ("Recipient field at fault (codes 1/11/12)", RECIPIENT_FIELD),
    ("Insufficient balance, detected from the text", BALANCE),
    ("Per-recipient codes of campaign/addRecipients", RECIPIENT_ERRORS),
    ("Campaign status in a send answer", CAMPAIGN_STATUSES),
]

HOSTS: Final = ("api.mobizon.kz", "api.mobizon.ua", "api.mobizon.com.br", "api.mobizon.gmbh")
#: ``api.mobizon.<one label>`` or ``api.mobizon.com.br``: never ``api.mobizon.evil.com``.
TRUSTED_HOST: Final = re.compile(r"api\.mobizon\.(?:[a-z]{2,63}|com\.br)")
BALANCE_WORDS: Final = re.compile(r"balance|funds|баланс|средств|коштів|қаражат|saldo|guthaben", re.IGNORECASE)
RECIPIENT_FIELDS: Final = frozenset({"recipient", "recipients", "to"})
SENDER_PATTERN: Final = r"[^\s].{0,10}|\+?[0-9]{1,15}"
NOT_TEXT: Final = "media or templates (Mobizon sends text SMS; put the text in Message.text)"
VALIDITY: Final = (timedelta(minutes=60), timedelta(minutes=1440))
SCHEDULE: Final = (timedelta(hours=1), timedelta(days=14))
CHUNK: Final = 500
#: Mobizon documents no text limit; 10 parts (1530 GSM-7 / 670 UCS-2 characters) is a safe
#: ceiling shared by most SMS routes, refused before sending rather than split silently.
MAX_PARTS: Final = 10
STATUS_BATCH: Final = 100
TASK_POLLS: Final = 60
TASK_DONE, TASK_REJECTED = 2, 3
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
SENDER_RULE: Final = "up to 11 characters, or up to 15 digits"
#: What a send takes: text SMS, a sender id, validity 60..1440 minutes, scheduled 1 hour to 14 days ahead.
ACCEPTS: Final = Accepts(
    recipients=E164(),
    text=Required("Mobizon needs Message.text"),
    template=Refused(NOT_TEXT),
    media=Refused(NOT_TEXT),
    sender=Matches(SENDER_PATTERN, SENDER_RULE),
    validity=Within(*VALIDITY, why="a validity outside 60 to 1440 minutes"),
    scheduled_at=Within(*SCHEDULE, why="scheduled_at less than 1 hour or more than 14 days ahead"),
)
EMPTY_FORM: Final = {"Content-Type": "application/x-www-form-urlencoded"}
NOT_ENVELOPE: Final = "the answer is not the {code, data, message} envelope"
NO_MESSAGE_ID: Final = "code 0 without a messageId: the message was not accepted"
#: A campaign status a send answer does not document still means the campaign was taken.
SENT_DEFAULT: Final = StatusEntry(_S.QUEUED, "Any other campaign status.")
#: What a call re-sent to the home domain keeps of its headers: never a proxy's or a hook's credentials.
RESENT_HEADERS: Final = frozenset({"content-type", "user-agent", "accept"})
MOVED: Final = (
    "mobizon: %s does not serve this account, re-sent to %s; set Mobizon(base_url=%r) "
    "(or OMNISEND_MOBIZON_BASE_URL) to skip the extra request"
)
#: An ``sms-delivery-report`` event: ``eventId`` is stable across re-deliveries.
WEBHOOK_FIELDS: Final = ReportFields(
    message_id="data.messageId",
    status="data.status",
    recipient="data.to",
    timestamp="data.statusUpdateTs",
    event_id="eventId",
)

#: A ``getSMSStatus`` item (times in the account's zone: ``time`` is set per instance).
STATUS_FIELDS: Final = ReportFields(message_id="id", status="status", timestamp=First("statusUpdateTs", "startSendTs"))

#: Where an ``addRecipients`` item names its number: ``recipient`` (digits), else ``number`` (as sent).
ITEM_NUMBER: Final = (("recipient",), ("number",))
#: ``(module, method, fields)`` of one API call.
Call = tuple[str, str, Mapping[str, Any]]
#: What ``addRecipients`` gave for one chunk: each number's result, and the vendor's items.
Added = tuple[list[RecipientResult], list[object]]
#: ``(code, data, body)`` of a ``{code, data, message}`` answer.
Envelope = tuple[Code | None, Any, dict[str, Any]]


def _https(url: str | None) -> str | None:
    """A home domain without a scheme (``api.mobizon.ua``) as its https URL."""
    return f"https://{url}" if url and "://" not in url else url


class Mobizon(Provider):
    """Mobizon adapter (``/service/<module>/<method>``, API v1).

    Args:
        api_key: the API key from the panel (or ``OMNISEND_MOBIZON_API_KEY``).
        base_url: the account's home domain (``"api.mobizon.ua"`` or a full URL; default
            ``OMNISEND_MOBIZON_BASE_URL`` or ``https://api.mobizon.kz``).
        webhook_secret: the webhook secret set in the panel; when given, ``sign`` is required.
        account_timezone: the zone of the account's zoneless times (default UTC).
        follow_domain_redirect: re-send once to the domain a code-13 answer names (default on).
    """

    name = "mobizon"
    display_name = "Mobizon"
    default_base_url = f"https://{HOSTS[0]}"
    errors = ERRORS
    statuses = STATUSES
    deduplicates = False
    webhook_auth = "`sign`: SHA-1 over the event and your secret"
    webhook_event_type = ("eventType", "sms-delivery-report")  # other event types hold no report
    webhook_check = SignedFields(("eventId", "attempt", "eventCreateTs"), signature="sign", algorithm="sha1")
    status_lookup = True
    status_batch = STATUS_BATCH
    credential_env = "OMNISEND_MOBIZON_API_KEY"
    max_recipients = CHUNK
    max_sms_parts = MAX_PARTS
    owned_options = frozenset({"recipient", "recipients", "params.name", "data.name", "apiKey", "api", "output"})
    accepts = ACCEPTS

    _key: Credential = setting(default=None, alias="api_key", credential=True)
    base_url: BaseURL = setting(default=None, env="OMNISEND_MOBIZON_BASE_URL", convert=_https)
    webhook_secret: str | None = setting(default=None, callback_secret=True)
    account_timezone: tzinfo = setting(default=timezone.utc, repr=True)
    follow_domain_redirect: bool = setting(default=True)

    def __post_init__(self) -> None:
        when = utc_reader(TIME_FORMAT, zone=self.account_timezone)  # times are in the account's zone
        self.webhook_fields, self.status_fields = replace(WEBHOOK_FIELDS, time=when), replace(STATUS_FIELDS, time=when)
        self.home_url: str | None = None  # the account's home domain, once a code 13 answer named it

    def build_call(self, module: str, method: str, fields: Mapping[str, object] | None = None) -> httpx.Request:
        """``POST /service/<module>/<method>`` to :attr:`home_url` (else ``base_url``), the key in the
        query, ``fields`` form-encoded with PHP-style brackets (their names are unique: nothing is lost)."""
        form = dict(_flatten(fields or {}))
        query = {"output": "json", "api": "v1", "apiKey": self._key}  # the cached-URL path: built once
        body: dict[str, Any] = {"data": form} if form else {"headers": EMPTY_FORM, "content": b""}
        path = f"/service/{module}/{method}"
        return self.build_http_request("POST", path, params=query, base_url=self.home_url or self.base_url, **body)

    # -- send -------------------------------------------------------------------------------

    def _send_call(self, message: Message, key: str) -> Call:
        """The first call of a send: ``sendSmsMessage`` for one recipient, ``campaign/create`` for
        several; ``None`` values are left out (:attr:`accepts` checked the message)."""
        validity, when = message.validity, message.scheduled_at
        at = when.astimezone(self.account_timezone).strftime(TIME_FORMAT) if when is not None else None
        params = {"name": key, "validity": validity // timedelta(minutes=1) if validity else None, "deferredToTs": at}
        sms = {"text": message.text, "from": message.sender}
        if len(message.recipients) > 1:
            return "campaign", "create", merged({"data": {**sms, **params, "type": 2}}, message.options)
        one = {"recipient": message.recipients[0].lstrip("+"), **sms, "params": params}
        return "message", "sendSmsMessage", merged(one, message.options)

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        """``message/sendSmsMessage`` for one recipient; ``campaign/create`` (the first step) for several."""
        return self.build_call(*self._send_call(message, idempotency_key))

    def parse_response(
        self, response: httpx.Response, *, message: Message | None = None, idempotency_key: str | None = None
    ) -> SendResult:
        _, data, body = self._envelope(response)
        message_id = as_text(data.get("messageId")) if isinstance(data, dict) else None
        if message_id is None:
            raise ProviderError(NO_MESSAGE_ID, provider=self.name, code=0, http_status=response.status_code, raw=body)
        status = self._sent_status(data.get("status"), message)
        sent = RecipientResult(message.recipients[0] if message is not None else "", message_id, status)
        return SendResult(self.name, message_id, status, (sent,), idempotency_key, raw=body)

    def send_flow(self, message: Message, *, idempotency_key: str) -> Flow[SendResult]:
        if len(message.recipients) == 1:
            return (yield from super().send_flow(message, idempotency_key=idempotency_key))
        return (yield from self._campaign(message, idempotency_key, self._send_call(message, idempotency_key)))

    def _campaign(self, message: Message, key: str, create: Call) -> Flow[SendResult]:
        """create → addRecipients (chunks of 500) → send; nothing goes out before the last step."""
        results, items = list[RecipientResult](), list[object]()
        campaign = yield from self._exchange(create, self._parse_created, repeat=Repeat.PREPARE)
        for start in range(0, len(message.recipients), CHUNK):
            part, raw = yield from self._add(campaign, message.recipients[start : start + CHUNK])
            results, items = results + part, items + raw
        if not any(r.ok for r in results):
            reasons = ", ".join(f"{n}× {m}" for m, n in Counter(r.error.message for r in results if r.error).items())
            text = f"none of the {len(results)} recipients was added: {reasons}"
            raise self.vendor_error(99, message=text, raw={"code": 99, "data": items})
        sent = yield from self._exchange(("campaign", "send", {"id": campaign}), self._parse_data)
        status = self._sent_status(sent, message)
        recipients = tuple(replace(r, status=status) if r.status is DeliveryStatus.QUEUED else r for r in results)
        first = next(r.message_id for r in recipients if r.ok)
        return SendResult(self.name, first, status, recipients, key, raw={"campaignId": campaign, "data": items})

    def _add(self, campaign: str, chunk: Sequence[str]) -> Flow[Added]:
        """``addRecipients`` for one chunk; a background add (code 100) is polled once a second (the
        vendor's limit) until its task is done, and its recipients get no message ids."""
        form = {"id": campaign, "recipients": [n.lstrip("+") for n in chunk]}
        parse = partial(self._parse_added, chunk=chunk)
        added = yield from self._exchange(("campaign", "addRecipients", form), parse, repeat=Repeat.PREPARE)
        if not isinstance(added, str):
            return added
        for _ in range(TASK_POLLS):
            call = ("taskqueue", "getStatus", {"id": added})
            task = yield from self._exchange(call, self._parse_data, repeat=Repeat.PREPARE, delay=1.0)
            state = _code_key(task.get("status")) if isinstance(task, dict) else None
            if state == TASK_DONE:
                return [RecipientResult(n, None, DeliveryStatus.QUEUED) for n in chunk], [{"task": added}]
            if state == TASK_REJECTED:
                raise ProviderError(f"background task {added} was rejected", provider=self.name, code=100)
        raise ServiceUnavailable(f"background task {added} still running after {TASK_POLLS} polls", provider=self.name)

    def _parse_created(self, response: httpx.Response) -> str:
        _, data, body = self._envelope(response)
        if not isinstance(data, (str, int)) or as_text(data) is None:  # not ``[]``, PHP's empty data
            raise self.shape_error(response, "campaign/create answered without a campaign id", raw=body)
        return str(data)

    def _parse_added(self, response: httpx.Response, *, chunk: Sequence[str]) -> str | Added:
        """The task id of a background add (code 100), or each number's result and the items."""
        code, data, _ = self._envelope(response, (0, 98, 99, 100))
        if code == 100:
            return str(data)
        items = [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []
        return [self._added(n, i, response) for n, i in match_items(chunk, items, ITEM_NUMBER)], list(items)

    def _added(self, number: str, item: object, response: httpx.Response) -> RecipientResult:
        if not isinstance(item, dict):  # the answer lists no item for this number
            return RecipientResult(number, None, DeliveryStatus.UNKNOWN)
        if _code_key(item.get("code")) in ADDED:
            return RecipientResult(number, as_text(item.get("messageId")), DeliveryStatus.QUEUED)
        error = self.vendor_error(item.get("code"), response=response, raw=dict(item), table=RECIPIENT_ERRORS)
        return RecipientResult(number, None, refused_status(error), error)

    def _parse_data(self, response: httpx.Response) -> Any:
        return self._envelope(response)[1]

    def _sent_status(self, value: object, message: Message | None) -> DeliveryStatus:
        scheduled = message is not None and message.scheduled_at is not None
        return DeliveryStatus.SCHEDULED if scheduled else (CAMPAIGN_STATUSES.lookup(value) or SENT_DEFAULT).status

    # -- the envelope, code 13 ----------------------------------------------------------------

    def _envelope(self, response: httpx.Response, success: tuple[int, ...] = (0,)) -> Envelope:
        """``(code, data, body)`` for a success code; the typed error otherwise, whatever the HTTP status."""
        body = self.read_json(response)
        if not isinstance(body, dict) or "code" not in body:
            if not response.is_success:
                raise self.http_error(response, raw=body)
            raise self.shape_error(response, NOT_ENVELOPE, raw=body)
        code = _code_key(body["code"])
        if code not in success:
            raise self._error(body, response)
        return code, body.get("data"), body

    def _error(self, body: Mapping[str, Any], response: httpx.Response) -> ProviderError:
        """The typed error for a code, refined by the answer's content (balance words, recipient field)."""
        code, data, text = body.get("code"), body.get("data"), as_text(body.get("message"))
        extra: dict[str, Any] = {"response": response, "vendor_message": text, "raw": dict(body)}
        if BALANCE.lookup(code) and BALANCE_WORDS.search(f"{text} {json.dumps(data, ensure_ascii=False)}"):
            return self.vendor_error(code, table=BALANCE, **extra)
        row = ERRORS.lookup(code)
        if row is not None and issubclass(row.exc, ValidationError) and (fields := _field_messages(data)):
            detail = "; ".join(f"{f}: {' '.join(m)}" for f, m in fields.items())
            extra.update(field=next(iter(fields)), message=f"{(text or row.meaning).rstrip('.')}: {detail}")
        on_recipient = extra.get("field") in RECIPIENT_FIELDS and RECIPIENT_FIELD.lookup(code)
        return self.vendor_error(code, table=RECIPIENT_FIELD if on_recipient else None, **extra)

    def _exchange(self, call: Call, parse: Callable[[httpx.Response], R], **step: Any) -> Flow[R]:
        value: R = yield from self.exchange(Step(self.build_call(*call), parse, **step))
        return value

    def exchange(self, step: Step[R]) -> Flow[R]:
        """One step; on code 13 re-sent once to the domain the answer names (``api.mobizon.*`` only)."""
        try:
            value: R = yield step
        except WrongDomain as exc:
            host = _host(exc.raw) if self.follow_domain_redirect else None
            if host is None:
                raise
            sent, served = step.request, httpx.URL(self.home_url or self.base_url)
            logger.warning(MOVED, served.host, host, f"https://{host}")
            self.home_url = f"https://{host}"  # later calls go there at once; base_url stays what you configured
            call = sent.url.raw_path[len(served.raw_path.rstrip(b"/")) :].decode()  # /service/...?<query with the key>
            headers = {name: value for name, value in sent.headers.items() if name in RESENT_HEADERS}
            moved = httpx.Request("POST", f"https://{host}{call}", headers=headers, content=sent.content)
            value = yield replace(step, request=moved)
        return value

    # -- status -------------------------------------------------------------------------------

    def build_statuses_request(self, message_ids: Sequence[str]) -> httpx.Request:
        return self.build_call("message", "getSMSStatus", {"ids": list(message_ids)})

    def parse_statuses(self, response: httpx.Response, *, message_ids: Sequence[str]) -> list[DeliveryReport]:
        items = self.objects(self._parse_data(response), response, "data")
        return [self.status_fields.report(self, item) for item in items if as_text(item.get("id"))]


# -- helpers -------------------------------------------------------------------------------------


def _flatten(value: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """PHP-style form pairs: ``{"params": {"validity": 60}}`` → ``("params[validity]", "60")``."""
    if isinstance(value, (Mapping, list, tuple)):
        for key, item in value.items() if isinstance(value, Mapping) else enumerate(value):
            if item is not None:  # left out
                yield from _flatten(item, f"{prefix}[{key}]" if prefix else str(key))
    else:
        yield prefix, ("1" if value else "0") if isinstance(value, bool) else str(value)


def _field_messages(data: object) -> dict[str, list[str]]:
    """``{"recipient": ["…"]}`` from a validation answer's ``data`` (empty when it has another shape)."""
    if not isinstance(data, dict) or not all(isinstance(v, (list, str)) for v in data.values()):
        return {}
    return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in data.items() if v}


def _host(raw: object) -> str | None:
    """The ``api.mobizon.*`` host a code-13 answer's ``data`` names (a host, URL or object), or ``None``."""
    data = raw.get("data") if isinstance(raw, dict) else None
    texts = [v.strip().lower() for v in (data.values() if isinstance(data, dict) else [data]) if isinstance(v, str)]
    hosts = (urlsplit(text if "://" in text else f"//{text}").hostname or "" for text in texts)
    return next((host for host in hosts if TRUSTED_HOST.fullmatch(host)), None)
