"""A stateful Twilio Programmable Messaging emulator: create, fetch, list and cancel Messages; callbacks.

It speaks Twilio's own shapes closely enough for the official ``twilio`` library to use it
(``client.api.base_url = server.base_url``): the Message resource (``sid``, ``status``,
``num_segments``, ``date_created`` in RFC 2822, ``subresource_uris``, …) answered with 201 on
create; errors as ``{"code", "message", "more_info", "status"}``; HTTP Basic with the Account SID
and Auth Token or an API key (20003 otherwise); status callbacks as form posts signed with
``X-Twilio-Signature`` exactly as Twilio signs them.

Behaviour kept from the real API: the required parameters (21604, 21603, 21602), the 1600-character
body limit (21617), the ``whatsapp:`` channel prefix on both ends (21910 when they differ), Twilio's
magic test numbers (``To`` +15005550001 invalid 21211, …02 unroutable 21612, …03 no geo permission
21408, …04 unsubscribed 21610, …09 not a mobile 21614; ``From`` +15005550001 invalid 21212, …07 not
yours 21606, …08 queue full 21611), validity 1–36000 s (21624), scheduling only through a Messaging
Service (35118) with ``ScheduleType=fixed`` (35111), a per-number send limit (14107, HTTP 429),
credit charged per segment (20005 when it runs out; its HTTP status, 401 here, is unconfirmed),
and no de-duplication at all: a repeated request creates a second message, as Twilio does.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from .._text import sms_segments
from ..models import Message
from ..providers.twilio import ERRORS, KEY_PARAM, MAX_BODY, MAX_VALIDITY, SIGNATURE_HEADER, Twilio
from ..webhooks import url_signature
from ._emulator import BLOCKED_NUMBER, INVALID_NUMBER, NOT_ON_WHATSAPP, Emulator, Record, Reply, Request

__all__ = ["TwilioEmulator"]

#: The HTTP status each error code comes with (400 for the others).
HTTP_STATUS: dict[int, int] = {20003: 401, 20005: 401, 20404: 404, 14107: 429, 20429: 429, 20500: 500, 20503: 503}
#: Twilio's magic test numbers (test credentials) and the error each answers.
MAGIC_TO: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM: dict[str, int] = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
API = "/2010-04-01/Accounts/"


def _when(stamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(stamp, tz=timezone.utc))


class TwilioEmulator(Emulator):
    """Twilio's Messages API in memory.

    Args:
        account_sid: the emulated account (``AC`` + 32 hex digits).
        api_keys: API key SID → secret, accepted as Basic credentials besides the Auth Tokens.
        senders: ``From`` values the account owns (``None``: any valid one); others answer 21606.
        opted_out: numbers that answer 21610.
        callback_url: where callbacks go when a message has no ``StatusCallback``.
    """

    provider = "twilio"
    default_credential = "emulated-twilio-auth-token"
    default_account_sid = "AC" + "0" * 31 + "1"
    invalid_number: ClassVar[str] = "+15005550001"
    rate_limit_code: ClassVar[object] = 20429

    def __init__(
        self,
        *,
        account_sid: str = default_account_sid,
        api_keys: dict[str, str] | None = None,
        senders: tuple[str, ...] | None = None,
        opted_out: tuple[str, ...] = (),
        callback_url: str = "https://app.example/twilio/status",
        wall_clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.account_sid = account_sid
        self.api_keys = dict(api_keys or {})
        self.senders = None if senders is None else set(senders)
        self.opted_out = {*opted_out, BLOCKED_NUMBER}
        self.callback_url = callback_url
        self.wall_clock = wall_clock

    def new_id(self) -> str:
        return f"SM{next(self._ids):032x}"

    webhook_secret_option = None  # callbacks are signed with the Auth Token itself

    def url_userinfo(self) -> str:
        return f"{quote(self.account_sid, safe='')}:{quote(self.credentials[0], safe='')}"

    def url_options(self) -> dict[str, str]:
        return {"webhook_url": self.callback_url}

    def make_provider(self, base_url: str, **options: Any) -> Twilio:
        """A :class:`Twilio` for this account, its callbacks addressed to ``callback_url``."""
        options.setdefault("webhook_url", self.callback_url)
        options.setdefault("auth_token", self.credentials[0])
        return Twilio(account_sid=self.account_sid, base_url=base_url, **options)

    # -- answers --------------------------------------------------------------------------------

    def error_reply(self, code: object) -> Reply:
        number = int(str(code))
        row = ERRORS.lookup(number)
        status = HTTP_STATUS.get(number, 400)
        body = {
            "code": number,
            "message": row.meaning if row else "Error",
            "more_info": f"https://www.twilio.com/docs/errors/{number}",
            "status": status,
        }
        return Reply.json(body, status)

    def _authorized(self, request: Request) -> bool:
        header = request.header("authorization") or ""
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ").strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if user == self.account_sid:
            return password in self.credentials
        return bool(password) and self.api_keys.get(user) == password

    def route(self, request: Request) -> Reply:
        reply = self._route(request)
        reply.headers.setdefault("twilio-request-id", f"RQ{uuid.uuid4().hex}")  # Twilio names every request
        return reply

    def _route(self, request: Request) -> Reply:
        path = request.path
        prefix = f"{API}{self.account_sid}/Messages"
        if not path.startswith(API):
            return self._not_found(path)
        if not self._authorized(request) or not path.startswith(prefix):
            return self.error_reply(20003)
        tail = path.removeprefix(prefix)
        if tail == ".json":
            return self._create(request.form) if request.method == "POST" else self._list()
        if not (tail.startswith("/") and tail.endswith(".json")):
            return self._not_found(path)
        sid = tail[1:-5]
        with self.lock:
            record = self.messages.get(sid)
            if record is None:
                return self._not_found(path)
            if request.method == "POST":
                return self._update(record, request.form)
            return Reply.json(self.resource(record))

    def _not_found(self, path: str) -> Reply:
        body = {
            "code": 20404,
            "message": f"The requested resource {path} was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404",
            "status": 404,
        }
        return Reply.json(body, 404)

    def _create(self, form: dict[str, str]) -> Reply:
        code = self._check(form)
        if code is not None:
            return self.error_reply(code)
        to, sender = form["To"], form.get("From")
        body = form.get("Body")
        parts = sms_segments(body).parts if body and not to.startswith("whatsapp:") else 1
        callback = form.get("StatusCallback")
        key = dict(parse_qsl(urlsplit(callback).query)).get(KEY_PARAM) if callback else None
        with self.lock:
            if self.balance < self.price * parts:
                return self.error_reply(20005)
            if self.rate_limited(to):
                return self.error_reply(14107)
            status = "scheduled" if form.get("SendAt") else "accepted" if sender is None else "queued"
            now = self.wall_clock()
            record = self.accept(
                to=to.rpartition(":")[2],
                text=body,
                key=key,
                parts=parts,
                status=status,
                sender=sender,
                address=to,
                service=form.get("MessagingServiceSid"),
                callback=callback,
                media=[form["MediaUrl"]] if form.get("MediaUrl") else [],
                created=now,
                updated=now,
                error_code=None,
            )
            return Reply.json(self.resource(record), 201)

    def _check(self, form: dict[str, str]) -> int | None:
        """The error code Twilio answers for this create request, or ``None`` when it is taken."""
        to, sender, service = form.get("To", ""), form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return 21604
        if sender is None and service is None:
            return 21603
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return 21602
        if len(form.get("Body") or "") > MAX_BODY:
            return 21617
        if form.get("ContentVariables") and not form.get("ContentSid"):
            return 21654
        if sender is not None and to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
            return 21910
        return (
            self._check_recipient(to.rpartition(":")[2], whatsapp=to.startswith("whatsapp:"))
            or self._check_sender(sender, service)
            or self._check_options(form)
        )

    def _check_recipient(self, number: str, *, whatsapp: bool = False) -> int | None:
        if number in MAGIC_TO:
            return MAGIC_TO[number]
        if number == INVALID_NUMBER:
            return 21211
        if whatsapp and number == NOT_ON_WHATSAPP:
            return 63003
        if not (number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16):
            return 21211
        return 21610 if number in self.opted_out else None

    def _check_sender(self, sender: str | None, service: str | None) -> int | None:
        plain = None if sender is None else sender.rpartition(":")[2]
        if plain in MAGIC_FROM:
            return MAGIC_FROM[plain]
        if plain is not None and self.senders is not None and plain not in self.senders:
            return 21606
        if service is not None and not (service.startswith("MG") and len(service) == 34):
            return 21705
        return None

    def _check_options(self, form: dict[str, str]) -> int | None:
        validity = form.get("ValidityPeriod")
        if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= MAX_VALIDITY):
            return 21624
        if form.get("SendAt"):
            if not form.get("MessagingServiceSid"):
                return 35118
            if form.get("ScheduleType") != "fixed":
                return 35111
        return None

    def _update(self, record: Record, form: dict[str, str]) -> Reply:
        """``POST /Messages/{sid}.json``: ``Status=canceled`` cancels a scheduled message (30409 otherwise)."""
        if form.get("Status") != "canceled":
            return self.error_reply(20422)
        if record.status != "scheduled":
            return self.error_reply(30409)
        self.set_status("canceled", message_id=record.id)
        return Reply.json(self.resource(record))

    def _list(self) -> Reply:
        with self.lock:
            items = [self.resource(r) for r in self.messages.values()]
        uri = f"{API}{self.account_sid}/Messages.json"
        page = {"first_page_uri": f"{uri}?PageSize=50&Page=0", "next_page_uri": None, "previous_page_uri": None}
        return Reply.json(
            {
                "messages": items,
                "page": 0,
                "page_size": 50,
                "start": 0,
                "end": max(len(items) - 1, 0),
                "uri": uri,
                **page,
            }
        )

    def resource(self, record: Record) -> dict[str, Any]:
        """The Message resource as Twilio returns it."""
        extra = record.extra
        uri = f"{API}{self.account_sid}/Messages/{record.id}"
        failed = record.status in ("failed", "undelivered")
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": record.text or "",
            "date_created": _when(extra["created"]),
            "date_sent": _when(extra["updated"]) if record.status not in ("queued", "accepted", "scheduled") else None,
            "date_updated": _when(extra["updated"]),
            "direction": "outbound-api",
            "error_code": extra["error_code"] if failed else None,
            "error_message": None,
            "from": record.sender,
            "messaging_service_sid": extra["service"],
            "num_media": str(len(extra["media"])),
            "num_segments": str(record.parts),
            "price": None,
            "price_unit": "USD",
            "sid": record.id,
            "status": record.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": extra["address"],
            "uri": f"{uri}.json",
        }

    # -- delivery reports -----------------------------------------------------------------------

    def set_status(self, status: str, *, message_id: str | None = None, error_code: int | None = None) -> list[Record]:
        with self.lock:
            records = super().set_status(status, message_id=message_id)
            for record in records:
                record.extra.update(updated=self.wall_clock(), error_code=error_code)
            return records

    def deliver(self, message_id: str, *, delivered: bool = True) -> dict[str, Any]:
        if delivered:
            self.set_status("delivered", message_id=message_id)
        else:
            self.set_status("undelivered", message_id=message_id, error_code=30003)
        return self.callback(message_id)

    def callback(self, message_id: str) -> dict[str, Any]:
        """The status callback Twilio posts for this message's current status, signed, as
        ``provider.parse_webhook(**kwargs)`` keyword arguments (``body``, ``headers``, ``url``)."""
        with self.lock:
            record = self.messages[message_id]
            extra = record.extra
            fields = {
                "SmsSid": record.id,
                "SmsStatus": record.status,
                "MessageStatus": record.status,
                "To": extra["address"],
                "MessageSid": record.id,
                "AccountSid": self.account_sid,
                "From": record.sender or "",
                "ApiVersion": "2010-04-01",
            }
            if extra["service"]:
                fields["MessagingServiceSid"] = extra["service"]
            if extra["error_code"] is not None:
                fields["ErrorCode"] = str(extra["error_code"])
            if record.status in ("delivered", "undelivered"):
                fields["RawDlrDoneDate"] = datetime.fromtimestamp(extra["updated"], tz=timezone.utc).strftime(
                    "%y%m%d%H%M"
                )
            url = extra["callback"] or self.callback_url
        signature = url_signature(self.credentials[0], url, fields.items())
        headers = {SIGNATURE_HEADER: signature, "Content-Type": "application/x-www-form-urlencoded"}
        return {"body": urlencode(fields).encode(), "headers": headers, "url": url}

    def demo_message(self, to: str, text: str) -> Message:
        """An SMS from an Alphanumeric Sender ID (Twilio takes one where the destination allows it)."""
        return Message(to=to, text=text, sender="omnisend")
