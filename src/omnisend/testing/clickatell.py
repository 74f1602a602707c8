"""A stateful Clickatell One API emulator: ``POST /v1/message``, ``GET /v1/message/{id}``, callbacks.

Behaviour kept from the real API: the raw integration key in ``Authorization`` (1/401); global
errors as ``{"messages": [], "error": {"code", "description"}}`` with the documented HTTP status;
per-message errors with ``accepted: false`` and HTTP 207 when several messages were sent (a single
rejected message answers with its error's own status, e.g. 402 for 20); 200 messages per request
(22); invalid (25), opted-out (26) and non-WhatsApp (27) recipients; balance charged per SMS part
(20 when it runs out); a per-number rate limit answered as a global 43 on HTTP 400; sender numbers
(45); no de-duplication at all: a repeated ``clientMessageId`` is sent again, as the vendor does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

from .._text import sms_segments
from ..models import Message
from ..providers.clickatell import ERRORS, MAX_SMS_PARTS, MAX_WHATSAPP_TEXT, STATUS_CODES, Clickatell
from ._emulator import BLOCKED_NUMBER, INVALID_NUMBER, NOT_ON_WHATSAPP, Emulator, Record, Reply, Request, unlisted

__all__ = ["ClickatellEmulator"]

#: The HTTP status each error code comes with (400 for the others).
HTTP_STATUS: dict[int, int] = {1: 401, 7: 401, 18: 500, 19: 503, 20: 402, 41: 404}


class ClickatellEmulator(Emulator):
    """Clickatell One API in memory.

    Args:
        opted_out: numbers that answer 26.
        whatsapp_users: numbers reachable on WhatsApp (``None``: every number); others answer 27.
        senders: ``from`` numbers linked to the integration (``None``: any); others answer 45.
        max_per_request: messages one request may carry (22 above it).
        integration_id: the ``integrationId`` callbacks carry.
    """

    provider = "clickatell"
    default_credential = "test-api-key"
    invalid_number: ClassVar[str] = INVALID_NUMBER
    rate_limit_code: ClassVar[object] = 43

    def __init__(
        self,
        *,
        opted_out: tuple[str, ...] = (),
        whatsapp_users: tuple[str, ...] | None = None,
        senders: tuple[str, ...] | None = None,
        max_per_request: int = 200,
        integration_id: str = "emulated-integration",
        webhook_secret: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.opted_out = {n.lstrip("+") for n in (*opted_out, BLOCKED_NUMBER)}
        self.whatsapp_users = None if whatsapp_users is None else {n.lstrip("+") for n in whatsapp_users}
        self.senders = None if senders is None else {n.lstrip("+") for n in senders}
        self.max_per_request = max_per_request
        self.integration_id = integration_id
        #: The shared secret of the callback URL (``?token=``), as ``Clickatell(webhook_secret=)`` expects it.
        self.webhook_secret = webhook_secret
        self.wall_clock = wall_clock

    def make_provider(self, base_url: str, **options: Any) -> Clickatell:
        options.setdefault("webhook_secret", self.webhook_secret)
        return Clickatell(api_key=self.credentials[0], base_url=base_url, **options)

    def demo_message(self, to: str, text: str) -> Message:
        """An SMS without a sender: the One API takes only numbers linked to the integration."""
        return Message(to=to, text=text)

    # -- answers --------------------------------------------------------------------------------

    def _error(self, code: int, description: str | None = None) -> dict[str, Any]:
        row = ERRORS.lookup(code)
        return {"code": code, "description": description or (row.meaning if row else "Error")}

    def error_reply(self, code: object) -> Reply:
        number = int(str(code))
        return Reply.json({"messages": [], "error": self._error(number)}, HTTP_STATUS.get(number, 400))

    def route(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        if path != "/v1/message" and not path.startswith("/v1/message/"):
            return Reply.json({"error": self._error(41)}, 404)
        if (request.header("authorization") or "").strip() not in self.credentials:
            return self.error_reply(1)
        if path == "/v1/message":
            return self._send(request) if request.method == "POST" else self.error_reply(42)
        if request.method != "GET":
            return self.error_reply(42)
        return self._status(path.removeprefix("/v1/message/"))

    def _send(self, request: Request) -> Reply:
        entries = _entries(request)
        if entries is None:
            return self.error_reply(21)
        if len(entries) > self.max_per_request:
            return self.error_reply(22)
        with self.lock:
            numbers = {str(e.get("to", "")) for e in entries}
            if any(self.rate_limited(n) for n in sorted(numbers)):
                return self.error_reply(43)
            answers = [self._one(entry) for entry in entries]
        return Reply.json({"messages": answers, "error": None}, _answer_status(answers))

    def _one(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Accept or reject one message entry (called with the lock held)."""
        to, channel = str(entry.get("to", "")), entry.get("channel", "sms")
        answer: dict[str, Any] = {"apiMessageId": None, "accepted": False, "to": to, "error": None}
        if entry.get("clientMessageId") is not None:
            answer["clientMessageId"] = entry["clientMessageId"]
        code = self._check(entry, to, channel)
        parts = sms_segments(str(entry.get("content") or "")).parts if channel == "sms" else 1
        if code is None and self.balance < self.price * parts:
            code = 20
        if code is not None:
            answer["error"] = self._error(code)
            return answer
        record = self.accept(
            to=f"+{to}",
            text=entry.get("content"),
            key=entry.get("clientMessageId"),
            parts=parts,
            status="QUEUED",
            sender=entry.get("from"),
            channel=channel,
            hsm=entry.get("hsm"),
            updated=self.wall_clock(),
        )
        answer.update(apiMessageId=record.id, accepted=True)
        return answer

    def _check(self, entry: dict[str, Any], to: str, channel: object) -> int | None:
        """The per-message error code for ``entry``, or ``None`` when it can be sent."""
        if channel not in ("sms", "whatsapp"):
            return 23
        code = self._recipient_problem(to, channel)
        if code is not None:
            return code
        sender = entry.get("from")
        if unlisted(None if sender is None else str(sender), self.senders):
            return 45
        return _content_problem(channel, entry.get("content"), entry.get("hsm"))

    def _recipient_problem(self, to: str, channel: object) -> int | None:
        """25 for an invalid number, 26 for one opted out, 27 for one not on WhatsApp (a WhatsApp send)."""
        if not to.isdigit() or not 7 <= len(to) <= 15 or to.startswith("100000"):
            return 25
        if to in self.opted_out:
            return 26
        if channel == "whatsapp" and not self._on_whatsapp(to):
            return 27
        return None

    def _on_whatsapp(self, to: str) -> bool:
        return to != NOT_ON_WHATSAPP[1:] and (self.whatsapp_users is None or to in self.whatsapp_users)

    def _status(self, message_id: str) -> Reply:
        with self.lock:
            record = self.messages.get(message_id)
            if record is None:
                return Reply.json({"status": "UNKNOWN", "timestamp": int(self.wall_clock() * 1000)})
            entry = {"status": record.status, "timestamp": int(record.extra["updated"] * 1000)}
            return Reply.json({record.extra.get("channel", "sms"): entry})

    # -- delivery reports -----------------------------------------------------------------------

    def set_status(self, status: str, *, message_id: str | None = None) -> list[Record]:
        with self.lock:
            records = super().set_status(status, message_id=message_id)
            for record in records:
                record.extra["updated"] = self.wall_clock()
            return records

    def deliver(self, message_id: str, *, delivered: bool = True) -> dict[str, Any]:
        self.set_status("DEVICE_ACK" if delivered else "DELIVERY_FAILURE", message_id=message_id)
        return self.callback([message_id])

    def callback(self, message_ids: list[str]) -> dict[str, Any]:
        """The status callback for these messages' current statuses, as ``parse_webhook`` kwargs."""
        with self.lock:
            records = [self.messages[i] for i in message_ids]
        updates = [
            {
                "channel": r.extra.get("channel", "sms"),
                "timestamp": int(r.extra["updated"] * 1000),
                "statusCode": STATUS_CODES.get(r.status, 1),
                "status": r.status,
                "messageId": r.id,
                "clientMessageId": r.idempotency_key,
            }
            for r in records
        ]
        body = {
            "integrationId": self.integration_id,
            "integrationName": "omnisend emulator",
            "event": {"messageStatusUpdate": updates},
        }
        callback: dict[str, Any] = {"body": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}
        if self.webhook_secret:
            callback["query"] = {"token": self.webhook_secret}
        return callback


def _entries(request: Request) -> list[dict[str, Any]] | None:
    """The message entries of a send; ``None`` when the body is not ``{"messages": [{...}, ...]}`` (21)."""
    try:
        payload = request.json()
    except ValueError:
        return None
    entries = payload.get("messages") if isinstance(payload, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        return None
    return entries


def _answer_status(answers: list[dict[str, Any]]) -> int:
    """202 when every message was accepted, 207 for several with a refusal among them, and the
    refusal's own status for a single message refused."""
    rejected = [a for a in answers if not a["accepted"]]
    if not rejected:
        return 202
    if len(answers) > 1:
        return 207
    return HTTP_STATUS.get(rejected[0]["error"]["code"], 400)


def _content_problem(channel: object, content: object, hsm: object) -> int | None:
    """23 for a missing text (or a malformed WhatsApp template), 100 for an SMS of too many parts,
    24 for a WhatsApp text too long."""
    if channel == "whatsapp" and isinstance(hsm, dict) and content is None:
        ok = isinstance(hsm.get("template"), str) and isinstance(hsm.get("parameters"), dict)
        return None if ok else 23
    if not isinstance(content, str) or not content.strip():
        return 23
    if channel == "sms" and sms_segments(content).parts > MAX_SMS_PARTS:
        return 100
    if channel == "whatsapp" and len(content) > MAX_WHATSAPP_TEXT:
        return 24
    return None
