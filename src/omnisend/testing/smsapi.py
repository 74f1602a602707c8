"""A stateful SMSAPI emulator: ``POST /sms.do`` sends, ``GET /sms.do?status=`` lookups, callbacks.

Behaviour kept from the real API: errors with HTTP 200 and ``{"error": N}``; Bearer-token auth
(101); credits charged per SMS part (103 when they run out); a per-number limit of sends in a
sliding window (52); ``idx`` + ``check_idx=1`` de-duplication (53); invalid or blacklisted numbers
(13 with ``invalid_numbers``, 57); sender names (14); ``test=1`` answers without storing; the
body as a form (the PHP and Python clients) or as JSON (the JavaScript and Go clients: smsapi-go
``LegacyPost``, booleans and numbers as JSON values); ``date_sent`` and callback ``donedate`` in
Unix seconds, as the vendor's fixtures have them.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar
from urllib.parse import urlencode

from .._text import sms_segments
from ..providers.smsapi import ERRORS, Smsapi
from ._emulator import BLOCKED_NUMBER, INVALID_NUMBER, Emulator, Reply, Request, unlisted

__all__ = ["SmsapiEmulator"]

#: Status name → the numeric code callbacks carry.
STATUS_CODES = {
    "NOT_FOUND": 401,
    "EXPIRED": 402,
    "SENT": 403,
    "DELIVERED": 404,
    "UNDELIVERED": 405,
    "FAILED": 406,
    "REJECTED": 407,
    "UNKNOWN": 408,
    "QUEUE": 409,
    "ACCEPTED": 410,
}


class SmsapiEmulator(Emulator):
    """SMSAPI ``sms.do`` in memory. ``blacklist`` numbers answer 57; ``+4899…`` numbers are invalid."""

    provider = "smsapi"
    default_credential = "test-token"
    invalid_number: ClassVar[str] = "+48990000000"
    rate_limit_code: ClassVar[object] = 203

    def __init__(
        self,
        *,
        blacklist: tuple[str, ...] = (),
        senders: tuple[str, ...] | None = None,
        webhook_secret: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.blacklist = {n.lstrip("+") for n in (*blacklist, BLOCKED_NUMBER)}
        #: The shared secret of the callback URL (``?token=``), as ``Smsapi(webhook_secret=)`` expects it.
        self.webhook_secret = webhook_secret
        self.senders = senders
        self.used_idx: set[str] = set()

    def make_provider(self, base_url: str, **options: Any) -> Smsapi:
        options.setdefault("webhook_secret", self.webhook_secret)
        return Smsapi(token=self.credentials[0], base_url=base_url, **options)

    def error_reply(self, code: object) -> Reply:
        row = ERRORS.lookup(code)
        return Reply.json({"error": code, "message": row.meaning if row else "error"})

    def route(self, request: Request) -> Reply:
        if request.path.rstrip("/") != "/sms.do":
            return Reply.json({"error": "not_found", "message": "Not found"}, 404)
        auth = request.header("authorization") or ""
        if auth.removeprefix("Bearer ").strip() not in self.credentials:
            return self.error_reply(101)
        try:
            body = _json_fields(request) if _is_json(request) else request.form
        except ValueError:
            return self.error_reply(11)
        fields = {**request.query, **body}
        if request.method == "GET" and "status" in fields:
            return self._status(fields["status"])
        return self._send(fields)

    def _send(self, form: dict[str, str]) -> Reply:
        text = form.get("message", "")
        numbers, idxs = _recipients(form)
        code = self._malformed(form, text, numbers, idxs)
        if code is not None:
            return self.error_reply(code)
        with self.lock:
            if _flag(form.get("check_idx")) and any(i in self.used_idx for i in idxs):
                return self.error_reply(53)
            valid, invalid, blacklisted = self._classify(numbers)
            if blacklisted == numbers:
                return self.error_reply(57)
            if not valid:
                return Reply.json(
                    {"error": 13, "message": "No correct phone numbers", "invalid_numbers": _refused(invalid)}
                )
            if any(self.rate_limited(n) for n in valid):
                return self.error_reply(52)
            parts = sms_segments(text).parts if text else 1
            if self.balance < self.price * parts * len(valid):
                return self.error_reply(103)
            items = self._take(form, parts, valid, numbers, idxs)
        body: dict[str, Any] = {
            "count": len(items),
            "list": items,
            "message": text,
            "length": len(text),
            "parts": parts,
        }
        if invalid or blacklisted:
            body["invalid_numbers"] = _refused(invalid + blacklisted)
        return Reply.json(body)

    def _classify(self, numbers: list[str]) -> tuple[list[str], list[str], list[str]]:
        """``numbers`` as (valid, invalid, blacklisted), each in the order given."""
        blacklisted = [n for n in numbers if n in self.blacklist]
        invalid = [n for n in numbers if _invalid(n)]
        return [n for n in numbers if n not in invalid and n not in blacklisted], invalid, blacklisted

    def _malformed(self, form: dict[str, str], text: str, numbers: list[str], idxs: list[str]) -> int | None:
        """The error code of a send the vendor refuses as a whole before looking at its numbers, in
        the order SMSAPI checks; ``None`` when it is well formed."""
        checks = (
            (not text.strip() and not form.get("template"), 11),  # no message (nor template)
            (not numbers, 13),  # no recipient
            (len(idxs) not in (0, 1, len(numbers)), 20),  # neither one idx nor one per number
            (any(len(i) > 255 for i in idxs), 27),  # an idx too long
            (unlisted(form.get("from"), self.senders), 14),  # a sender name not registered
        )
        return next((code for failed, code in checks if failed), None)

    def _take(
        self, form: dict[str, str], parts: int, valid: list[str], numbers: list[str], idxs: list[str]
    ) -> list[dict[str, Any]]:
        """The answer item of each valid number's message; unless ``test=1``, the messages are stored
        and charged, and their idx values count as used."""
        test, text, sender = _flag(form.get("test")), form.get("message", ""), form.get("from")
        sent_at = int(time.time())  # Unix seconds, as in the vendor's answers (not the rate-limit clock)
        items = []
        for number in valid:
            idx = _idx_of(number, numbers, idxs)
            if test:
                msg_id, status = self.new_id(), "QUEUE"
            else:
                record = self.accept(
                    to=f"+{number}", text=text, key=idx, parts=parts, status="QUEUE", sender=sender, sent_at=sent_at
                )
                msg_id, status = record.id, record.status
            items.append(
                {
                    "id": msg_id,
                    "points": round(self.price * parts, 4),
                    "number": number,
                    "submitted_number": number,
                    "date_sent": sent_at,
                    "status": status,
                    "idx": idx,
                    "error": None,
                    "parts": parts,
                }
            )
        if not test:
            self.used_idx.update(idxs)
        return items

    def _status(self, ids: str) -> Reply:
        with self.lock:
            records = [self.messages[i] for i in ids.split("|") if i in self.messages]
        if not records:
            return self.error_reply(301)
        return Reply.json(
            {
                "count": len(records),
                "list": [
                    {
                        "id": r.id,
                        "number": r.to.lstrip("+"),
                        "status": r.status,
                        "idx": r.idempotency_key,
                        "date_sent": r.extra.get("sent_at", int(time.time())),
                        "points": self.price * r.parts,
                    }
                    for r in records
                ],
            }
        )

    def deliver(self, message_id: str, *, delivered: bool = True) -> dict[str, Any]:
        status = "DELIVERED" if delivered else "UNDELIVERED"
        (record,) = self.set_status(status, message_id=message_id)
        record.extra["done_at"] = int(time.time())
        return {"query": self.callback_query([message_id])}

    def callback_query(self, message_ids: list[str]) -> dict[str, str]:
        """The GET parameters SMSAPI sends for these messages' current statuses (comma-batched)."""
        with self.lock:
            records = [self.messages[i] for i in message_ids]
        return {
            "MsgId": ",".join(r.id for r in records),
            "status": ",".join(str(STATUS_CODES.get(r.status, 408)) for r in records),
            "idx": ",".join(r.idempotency_key or "" for r in records),
            "donedate": ",".join(str(r.extra.get("done_at") or r.extra.get("sent_at", "")) for r in records),
            "to": ",".join(r.to.lstrip("+") for r in records),
            "username": "emulator",
            **({"token": self.webhook_secret} if self.webhook_secret else {}),
        }

    def callback_url(self, receiver: str, message_ids: list[str]) -> str:
        return f"{receiver}?{urlencode(self.callback_query(message_ids))}"


def _is_json(request: Request) -> bool:
    return (request.header("content-type") or "").split(";")[0].strip().lower() == "application/json"


def _json_fields(request: Request) -> dict[str, str]:
    """A JSON ``sms.do`` body as the form fields it stands for (``true`` is ``1``, a list is comma-joined)."""
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    fields: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            fields[str(key)] = "1" if value else "0"
        elif isinstance(value, list):
            fields[str(key)] = ("|" if key == "idx" else ",").join(str(v) for v in value)
        else:
            fields[str(key)] = str(value)
    return fields


def _recipients(form: dict[str, str]) -> tuple[list[str], list[str]]:
    """The numbers of ``to`` (comma-separated, ``+`` optional) and the ``idx`` values (``|``-separated)."""
    numbers = [n.strip().lstrip("+") for n in form.get("to", "").split(",") if n.strip()]
    return numbers, form["idx"].split("|") if form.get("idx") else []


def _invalid(number: str) -> bool:
    """A number SMSAPI answers as invalid: not all digits, too short, or the emulator's invalid ones."""
    return not number.isdigit() or len(number) < 8 or number.startswith("4899") or number == INVALID_NUMBER[1:]


def _refused(numbers: list[str]) -> list[dict[str, str]]:
    """The ``invalid_numbers`` entries of an answer."""
    return [{"number": n, "submitted_number": n, "message": "Invalid phone number"} for n in numbers]


def _idx_of(number: str, numbers: list[str], idxs: list[str]) -> str | None:
    """The ``idx`` of ``number``'s message: its own where each number has one, else the shared one."""
    if len(idxs) == len(numbers):
        return idxs[numbers.index(number)]
    return idxs[0] if idxs else None


def _flag(value: str | None) -> bool:
    """A boolean field: ``1`` (PHP, JSON ``true``) or ``True`` (the Python client sends booleans so)."""
    return value is not None and value.strip().lower() in ("1", "true")
