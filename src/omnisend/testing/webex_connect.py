"""A stateful Webex Connect emulator: Messaging API v1 sends and signed delivery receipts.

Behaviour kept from the real API: every answer is HTTP 200, with a ``response`` array (one entry
per destination: ``"1001"`` Queued and a ``transid``, suffixed ``_1``, ``_2`` after the first) or a
``response`` object carrying the error code as a string. ``key`` header (7002 when missing, 7001
when wrong) or ``Authorization: Bearer`` auth; invalid JSON (7000); missing parameters (7003); at
most 1000 destinations (7009); ``correlationid`` of at most 50 bytes (7004); WhatsApp app ids
(7104) and templates (7108) when configured; credits charged per SMS part (7103); a per-number send
limit (7020); do-not-disturb (7109) numbers answered per destination. An invalid sender id (7101),
number (7102) or SMS text length (7107) is taken (``1001`` Queued) and answered later by a
``Failed`` receipt carrying the code, as the SMS receipt docs show them
(developers.webexconnect.io/reference/sms-1); ``sync_refusals=True`` refuses them in the send
answer instead. No de-duplication: a repeated
``correlationid`` is sent again, as the vendor does. Receipts are ``deliveryInfoNotification``
bodies, signed with ``x-hub-signature`` when a ``webhook_secret`` is set.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, ClassVar, Final

from .._text import sms_segments
from ..providers.webex_connect import ERRORS, HUB_ALGORITHMS, MAX_DESTINATIONS, PATH, WebexConnect
from ._emulator import BLOCKED_NUMBER, INVALID_NUMBER, Emulator, Record, Reply, Request, unlisted

__all__ = ["WebexConnectEmulator"]

_E164 = re.compile(r"\+?[1-9][0-9]{6,14}")
#: The destination field of each channel.
ADDRESS_FIELD: Final = {"sms": "msisdn", "whatsapp": "waid"}

#: A refusal: the error code, and the description when it is not the table's.
Problem = tuple[str, str | None] | None


class WebexConnectEmulator(Emulator):
    """Webex Connect Messaging API v1 in memory.

    Args:
        senders: allowed SMS sender ids (``None``: any).
        apps: WhatsApp app ids configured on the service.
        templates: known template ids (``None``: any).
        dnd: numbers on the do-not-disturb list (7109).
        bearer_tokens: JWTs accepted as ``Authorization: Bearer``.
        webhook_secret: the hub secret receipts are signed with (``None``: unsigned).
        signature_algorithm: ``"sha256"``, ``"sha512"`` or ``"sha1"`` (webhooks configured before April 2022).
        sync_refusals: refuse an invalid sender, number or text length in the send answer
            (7101/7102/7107) instead of taking the message and sending a ``Failed`` receipt.
    """

    provider = "webex_connect"
    default_credential = "test-service-key"
    invalid_number: ClassVar[str] = INVALID_NUMBER
    rate_limit_code: ClassVar[object] = "7020"

    def __init__(
        self,
        *,
        senders: tuple[str, ...] | None = None,
        apps: tuple[str, ...] = ("wa-app-1",),
        templates: tuple[str, ...] | None = None,
        dnd: tuple[str, ...] = (),
        bearer_tokens: tuple[str, ...] = (),
        webhook_secret: str | None = None,
        signature_algorithm: str = "sha256",
        sync_refusals: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.senders = senders
        self.apps = apps
        self.templates = templates
        self.dnd = {n if n.startswith("+") else f"+{n}" for n in (*dnd, BLOCKED_NUMBER)}
        self.bearer_tokens = bearer_tokens
        self.webhook_secret = webhook_secret
        self.signature_algorithm = signature_algorithm
        self.sync_refusals = self.refuses_invalid_number = sync_refusals

    def url_options(self) -> dict[str, str]:
        options = {"whatsapp_app_id": self.apps[0]} if self.apps else {}
        if self.webhook_secret:
            options["webhook_secret"] = self.webhook_secret
        return options

    def make_provider(self, base_url: str, **options: Any) -> WebexConnect:
        kwargs: dict[str, Any] = {
            "service_key": self.credentials[0],
            "base_url": base_url,
            "whatsapp_app_id": self.apps[0] if self.apps else None,
            "webhook_secret": self.webhook_secret,
        }
        kwargs.update(options)
        return WebexConnect(**kwargs)

    def error_reply(self, code: object) -> Reply:
        row = ERRORS.lookup(code)
        description = row.meaning if row is not None else "error"
        return Reply.json({"response": {"code": str(code), "description": description, "transid": str(uuid.uuid4())}})

    def _error(self, code: str, description: str | None = None) -> Reply:
        reply = self.error_reply(code)
        if description is not None:
            data = json.loads(reply.body)
            data["response"]["description"] = description
            reply.body = json.dumps(data).encode()
        return reply

    # -- the API ----------------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.method != "POST" or request.path.rstrip("/") != PATH:
            return Reply.json({"response": {"code": "7600", "description": "no results found"}}, 404)
        bearer = (request.header("authorization") or "").removeprefix("Bearer ").strip()
        key = request.header("key")
        if not bearer and not key:
            return self._error("7002")
        if (bearer not in self.bearer_tokens) if bearer else (key not in self.credentials):
            return self._error("7001", "Authentication failed.")
        try:
            body = request.json()
        except ValueError:
            return self._error("7000")
        if not isinstance(body, dict):
            return self._error("7000")
        return self._send(body)

    def _send(self, body: dict[str, Any]) -> Reply:
        channel = body.get("deliverychannel")
        content = body.get("message")
        template = content.get("template") if isinstance(content, dict) else None
        sms = _sms_block(body) if channel == "sms" else {}
        problem = _envelope_problem(body) or self._channel_problem(body, channel, sms, template)
        if problem is not None:
            return self._error(*problem)
        field = ADDRESS_FIELD[str(channel)]
        numbers = [str(n) for d in body["destination"] if isinstance(d, dict) for n in d.get(field) or []]
        if not numbers:
            return self._error("7003", f"param '{field}' missing")
        return self._accept(body, str(channel), numbers, _sms_text(sms), sms.get("senderid"), template)

    def _channel_problem(self, body: dict[str, Any], channel: object, sms: dict[str, Any], template: Any) -> Problem:
        """What the send's channel refuses in it (7106: not a channel of the service)."""
        if channel == "sms":
            return self._sms_problem(sms, template)
        if channel == "whatsapp":
            return self._whatsapp_problem(body, template)
        return "7106", None

    def _sms_problem(self, sms: dict[str, Any], template: Any) -> Problem:
        text = _sms_text(sms)
        if not text and not template:
            return "7003", "param 'text' missing for channel sms"
        if text and len(text) > 1024 and self.sync_refusals:
            return "7107", None
        if sms.get("type", "1") not in ("1", "2", "3", "4"):
            return "7004", "invalid value of param 'type' , only [1,2,3,4] are allowed"
        if unlisted(sms.get("senderid"), self.senders) and self.sync_refusals:
            return "7101", None
        return None

    def _whatsapp_problem(self, body: dict[str, Any], template: Any) -> Problem:
        if body.get("appid") not in self.apps:
            return "7104", None
        if not template:
            return "7003", "param 'template' missing for channel whatsapp"
        if self.templates is not None and template not in self.templates:
            return "7108", None
        return None

    def _accept(
        self,
        body: dict[str, Any],
        channel: str,
        numbers: list[str],
        text: str | None,
        sender: str | None,
        template: Any,
    ) -> Reply:
        plus = [n if n.startswith("+") else f"+{n}" for n in numbers]
        refused, failing = self._screen(plus, text, sender)
        valid = [n for n in plus if n not in refused and n not in failing]
        parts = sms_segments(text).parts if text else 1
        with self.lock:
            if any(self.rate_limited(n) for n in valid):
                return self._error("7020")
            if valid and self.balance < self.price * parts * len(valid):
                return self._error("7103")
            base, entries = str(uuid.uuid4()), []
            for index, number in enumerate(plus):
                if number in refused:
                    code, description = refused[number]
                    entries.append({"code": code, "description": description})
                    continue
                transid = base if index == 0 else f"{base}_{index}"
                extra = {"channel": channel, "template": template, "callbackData": body.get("callbackData")}
                self._store(transid, number, text, body.get("correlationid"), parts, sender, extra, failing.get(number))
                entries.append(_queued(transid, body))
        return Reply.json({"response": entries})

    def _screen(
        self, numbers: list[str], text: str | None, sender: str | None
    ) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
        """The destinations refused in the answer, and those taken now but answered by a ``Failed``
        receipt: number → (code, description)."""
        refused: dict[str, tuple[str, str]] = {}
        failing: dict[str, tuple[str, str]] = {}
        for number in numbers:
            verdict = self._destination_problem(number, text, sender)
            if verdict is not None:
                now, code, description = verdict
                (refused if now else failing)[number] = (code, description)
        return refused, failing

    def _destination_problem(self, number: str, text: str | None, sender: str | None) -> tuple[bool, str, str] | None:
        """Why a destination is refused in the answer (``True``) or taken and then answered by a
        ``Failed`` receipt (``False``), with the code and description; ``None`` when it is fine."""
        if number == self.invalid_number or not _E164.fullmatch(number):
            return self.sync_refusals, "7102", "Invalid address"
        if number in self.dnd:
            return True, "7109", "User in DnD"
        if text and len(text) > 1024:
            return False, "7107", "Message length exceeded"
        if unlisted(sender, self.senders):
            return False, "7101", "Invalid Sender ID"
        return None

    def _store(
        self,
        transid: str,
        number: str,
        text: str | None,
        key: str | None,
        parts: int,
        sender: str | None,
        extra: dict[str, Any],
        failure: tuple[str, str] | None,
    ) -> None:
        """Keep a message taken under ``transid``; one with a ``failure`` is not charged and gets the
        ``Failed`` receipt carrying it."""
        status = "Queued"
        if failure is not None:
            status, extra["failure"] = "Failed", failure
        self.messages[transid] = Record(transid, number, text, key, status, self.clock(), parts, sender, extra)
        if failure is None:
            self.balance -= self.price * parts

    # -- receipts ---------------------------------------------------------------------------------

    def deliver(self, message_id: str, *, delivered: bool = True) -> dict[str, Any]:
        """The receipt of ``message_id``: delivered or not, or the ``Failed`` one a message taken
        with an invalid sender, number or text length always gets."""
        with self.lock:
            failure = self.messages[message_id].extra.get("failure")
        if failure is not None:
            (record,) = self.set_status("Failed", message_id=message_id)
            return self.receipt(record, code=failure[0], description=failure[1])
        status, code, description = (
            ("Delivered", "7500", "Delivered") if delivered else ("Un-Delivered", "7201", "Delivery failed at Operator")
        )
        (record,) = self.set_status(status, message_id=message_id)
        return self.receipt(record, code=code, description=description)

    def receipt(self, record: Record, *, code: str, description: str, additional: str = "") -> dict[str, Any]:
        """The receipt for ``record``'s current status, as ``parse_webhook`` keyword arguments."""
        whatsapp = record.extra.get("channel") == "whatsapp"
        payload = {
            "deliveryInfoNotification": {
                "deliveryInfo": {
                    "timeStamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    "Description": description,
                    "code": code,
                    "deliveryChannel": "WhatsApp" if whatsapp else "SMS",
                    "additionalInfo": additional,
                    "destination": record.to.lstrip("+"),
                    "destinationType": "waid" if whatsapp else "msisdn",
                    "deliveryStatus": record.status,
                },
                "subtid": "",
                "transid": record.id,
                "callbackData": record.extra.get("callbackData") or "",
                "correlationid": record.idempotency_key or "",
            }
        }
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if self.webhook_secret is not None:
            digest = HUB_ALGORITHMS[self.signature_algorithm]
            headers["x-hub-signature"] = hmac.new(self.webhook_secret.encode(), body, digest).hexdigest()
        return {"body": body, "headers": headers}


def _envelope_problem(body: dict[str, Any]) -> Problem:
    """What every send is checked for first: a channel, 1 to 1000 destinations, a short ``correlationid``."""
    destinations = body.get("destination")
    if not body.get("deliverychannel"):
        return "7003", "param 'deliverychannel' missing"
    if not isinstance(destinations, list) or not destinations:
        return "7003", "any one of [customerid,msisdn,email, userid,pushid,psid, etc.] is mandatory"
    if len(destinations) > MAX_DESTINATIONS:
        return "7009", None
    correlation = body.get("correlationid")
    if correlation is not None and len(str(correlation).encode("utf-8")) > 50:
        return "7004", "invalid value of param 'correlationid'"
    return None


def _sms_block(body: dict[str, Any]) -> dict[str, Any]:
    """``channels.sms`` of a send (empty when it is missing or not an object)."""
    channels = body.get("channels")
    sms = channels.get("sms") if isinstance(channels, dict) else None
    return sms if isinstance(sms, dict) else {}


def _sms_text(sms: dict[str, Any]) -> str | None:
    return str(sms["text"]) if sms.get("text") is not None else None


def _queued(transid: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer entry of a destination taken (``1001`` Queued), echoing the ``correlationid``."""
    entry = {"code": "1001", "description": "Queued", "transid": transid}
    if body.get("correlationid") is not None:
        entry["correlationid"] = body["correlationid"]
    return entry
