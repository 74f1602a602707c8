"""A stateful edna emulator: edna Pulse (``cascade/schedule``, ``messages/history``) and the IM API
(``imOutMessage``, ``imOutHSM``, ``GET imOutMessage/{id}``), with their callbacks.

Behaviour kept from the real APIs: ``X-API-KEY`` auth (``error-unauthorized``); Pulse errors as problem
details with the code in ``title``, IM errors as ``{"code": ...}`` with HTTP 200; one cascade per channel
whose content blocks must match (``cascade-scheduling-request-not-valid``); a balance that runs out
(``error-insufficient-balance``); unique ids (``error-id-not-unique``) and Pulse's 20-minute cancel of an
identical message to the same address; WhatsApp templates matched by text (IM: the sync
``error-content-do-not-match-hsm-template``; Pulse: the ``NO_MATCH_TEMPLATE`` status outside an open
session); the format checks behind the seed's ``error-*-format`` / ``*-not-specified`` codes; numbers
that are not on WhatsApp/Viber or blocked (IM: sync codes; Pulse: a failed status carrying the code).
edna publishes no rate limit; this emulator throttles per number with HTTP 429 and ``Retry-After: 1``.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Final, Literal

from ..models import Message
from ..providers.edna import ERRORS, PULSE_BLOCKS, PULSE_ERRORS, Edna
from ._emulator import BLOCKED_NUMBER, INVALID_NUMBER, NOT_ON_VIBER, NOT_ON_WHATSAPP, Emulator, Record, Reply, Request

__all__ = ["EdnaEmulator"]

#: Emulated cascades, one channel each: channel → cascade id.
CASCADE_OF: Final = {"sms": 1001, "whatsapp": 1002, "viber": 1003}
CHANNEL_OF: Final = {cascade: channel for channel, cascade in CASCADE_OF.items()}
#: The emulated channels' subject ids (``subjectId`` in Pulse callbacks).
SUBJECT_ID_OF: Final = {"sms": 5001, "whatsapp": 5002, "viber": 5003}
#: HTTP statuses of Pulse problem answers (the IM API answers its codes with HTTP 200).
PULSE_HTTP: Final = {
    "error-unauthorized": 401,
    "error-insufficient-balance": 402,
    "error-system-blocked": 403,
    "error-not-found": 404,
    "error-id-not-unique": 409,
    "error-system": 500,
}
CONTENT_TYPES: Final = {
    "sms": ("text",),
    "viber": ("text", "image"),
    "whatsapp": ("text", "image", "document", "video", "audio", "location"),
}
DUPLICATE_WINDOW: Final = 20 * 60.0
RATE_LIMITED: Final = 429


class EdnaEmulator(Emulator):
    """edna Pulse and IM API in memory.

    Args:
        subjects: IM sender names of the account (others: ``error-subject-unknown``).
        templates: approved WhatsApp template texts, ``{{1}}`` placeholders matching any text.
        sessions: numbers with an open WhatsApp session (free text allowed on Pulse).
        not_on_whatsapp, not_on_viber, blocked: numbers refused (``not-whatsapp-user``, ...).
        webhook_key: sent as ``X-API-KEY`` on callbacks, and given to :meth:`make_provider`.
        repeated_request_id: what Pulse does with a ``requestId`` it has seen: ``"refuse"``
            (``error-id-not-unique``, default) or ``"cancel"`` (accepted, then cancelled as a
            20-minute duplicate: a second history item with the same ``requestId``). edna documents
            the duplicate cancel but not the refusal, so test both.
    """

    provider = "edna"
    default_credential = "test-api-key"
    invalid_number: ClassVar[str] = INVALID_NUMBER
    rate_limit_code: ClassVar[object] = RATE_LIMITED

    def __init__(
        self,
        *,
        subjects: tuple[str, ...] = ("omnisend",),
        templates: tuple[str, ...] = ("Your order {{1}} is ready for pickup at {{2}}.",),
        sessions: tuple[str, ...] = (),
        not_on_whatsapp: tuple[str, ...] = (),
        not_on_viber: tuple[str, ...] = (),
        blocked: tuple[str, ...] = (),
        webhook_key: str | None = None,
        repeated_request_id: Literal["refuse", "cancel"] = "refuse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if repeated_request_id not in ("refuse", "cancel"):
            raise ValueError(f"repeated_request_id must be 'refuse' or 'cancel', got {repeated_request_id!r}")
        self.repeated_request_id = repeated_request_id
        self.pulse_log: list[Record] = []  # every Pulse message, copies under a repeated requestId too
        self.subjects = subjects
        self.templates = [_pattern(t) for t in templates]
        self.sessions, self.blocked = _digits(sessions), _digits((*blocked, BLOCKED_NUMBER))
        self.not_on = {
            "whatsapp": _digits((*not_on_whatsapp, NOT_ON_WHATSAPP)),
            "viber": _digits((*not_on_viber, NOT_ON_VIBER)),
        }
        self.webhook_key = webhook_key
        self.used_ids: set[str] = set()
        self._recent: dict[tuple[str, str], float] = {}
        self._edna_ids = iter(range(8_681_000, 10**9))
        self._local = threading.local()

    def make_provider(self, base_url: str, **options: Any) -> Edna:
        settings: dict[str, Any] = {
            "api_key": self.credentials[0],
            "base_url": base_url,
            "cascade_id": dict(CASCADE_OF),
            "subject": self.subjects[0] if self.subjects else None,
            "webhook_key": self.webhook_key,
        }
        settings.update(options)
        return Edna(**settings)

    webhook_secret_option = "webhook_key"

    def url_options(self) -> dict[str, str]:
        options = {"cascade_id": ",".join(f"{channel}:{cascade}" for channel, cascade in CASCADE_OF.items())}
        if self.subjects:
            options["subject"] = self.subjects[0]
        if self.webhook_key:
            options["webhook_key"] = self.webhook_key
        return options

    def demo_message(self, to: str, text: str) -> Message:
        return Message(to=to, text=text)  # SMS through a Pulse cascade: the sender is the cascade's

    # -- answers ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        self._local.pulse = not request.path.startswith("/api/imOut")
        return super().handle(request)

    def error_reply(self, code: object) -> Reply:
        if code == RATE_LIMITED:
            return Reply.json({"status": 429, "detail": "Too many requests"}, 429, {"Retry-After": "1"})
        row = ERRORS.lookup(code) or PULSE_ERRORS.lookup(code)
        meaning = row.meaning if row else "error"
        if getattr(self._local, "pulse", True):
            status = PULSE_HTTP.get(str(code), 400)
            return Reply.json({"title": code, "status": status, "detail": meaning}, status)
        return Reply.json({"code": code})

    def route(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        if request.header("x-api-key") not in self.credentials:
            return self.error_reply("error-unauthorized")
        try:
            data = request.json() if request.method == "POST" else None
        except ValueError:
            return self.error_reply("error-syntax")
        endpoint = self._posts().get(path) if request.method == "POST" else None
        if endpoint is not None and isinstance(data, dict):
            return endpoint(data)
        if request.method == "GET" and path.startswith("/api/imOutMessage/"):
            return self._im_status(path.rsplit("/", 1)[1])
        return self.error_reply("error-syntax" if data is not None else "error-not-found")

    def _posts(self) -> dict[str, Callable[[dict[str, Any]], Reply]]:
        """The POST endpoints (a JSON object each): path → handler."""
        return {
            "/api/cascade/schedule": self._pulse_send,
            "/api/messages/history": self._history,
            "/api/imOutMessage": functools.partial(self._im_send, hsm=False),
            "/api/imOutHSM": functools.partial(self._im_send, hsm=True),
        }

    # -- Pulse -----------------------------------------------------------------------------

    def _pulse_send(self, data: dict[str, Any]) -> Reply:
        found = _cascade_blocks(data)
        if found is None:
            return self.error_reply("cascade-scheduling-request-not-valid")  # unknown cascade or wrong blocks
        rid, channel, block, target = found
        address = str(target.get("address") or "")
        problem = self._pulse_address_problem(address, target)
        if problem is None and _parse_time(data.get("startTime")) is False:
            problem = "error-start-time-format"
        if problem is not None:
            return self.error_reply(problem)
        fields = {
            "contentType": str(block.get("contentType", "")).lower(),
            "text": block.get("text"),
            "attachmentUrl": (block.get("attachment") or {}).get("url"),
            **(block.get("location") or {}),
        }
        problem = _content_problem(fields, CONTENT_TYPES[channel])
        if problem:
            return self.error_reply(problem)
        with self.lock:
            return self._pulse_take(data, rid, channel, address, fields)

    def _pulse_take(self, data: dict[str, Any], rid: str, channel: str, address: str, fields: dict[str, Any]) -> Reply:
        """Take a well-formed Pulse send (with the lock held): refused, cancelled or stored with its first status."""
        if rid in self.used_ids:
            if self.repeated_request_id == "refuse":
                return self.error_reply("error-id-not-unique")
            # the retry of a message that landed: cancelled as a duplicate
            self._log(rid, address, fields["text"], channel, "cancelled", data["cascadeId"])
            return Reply.json({"requestId": rid})
        if self.rate_limited(address):
            return self.error_reply(RATE_LIMITED)
        if self.balance < self.price:
            return self.error_reply("error-insufficient-balance")
        fingerprint = (address, json.dumps(data["content"], sort_keys=True))
        now = self.clock()
        if now - self._recent.get(fingerprint, -DUPLICATE_WINDOW) < DUPLICATE_WINDOW:
            status, error = "cancelled", None  # edna cancels an identical message within 20 minutes
        else:
            status, error = self._pulse_status(data, channel, address, fields)
        self._recent[fingerprint] = now
        self._store(rid, address, fields["text"], channel, "pulse", status, error, cascade=data["cascadeId"])
        return Reply.json({"requestId": rid})

    def _pulse_status(
        self, data: dict[str, Any], channel: str, address: str, fields: dict[str, Any]
    ) -> tuple[str, str | None]:
        """The first status (and error) of a Pulse message that is not a duplicate."""
        if address in self.blocked:
            return "failed", "user-blocked"
        if address in self.not_on.get(channel, ()):
            return "undelivered", f"not-{channel}-user"
        if channel == "whatsapp" and fields["contentType"] == "text" and address not in self.sessions:
            if not self._matches_template(fields["text"]):
                return "no-match-template", None
        return _first_status(data), None

    def _history(self, data: dict[str, Any]) -> Reply:
        """``messages/history`` with its documented filters only (docs-pulse.edna.io): ``subscriberFilter``,
        ``messageId`` (edna's id), ``direction``, ``channelTypes``, ``dateFrom``/``dateTo``, ``sort`` by
        ``messageId``, ``offset``/``limit``. Anything else (``requestId``) is ignored, as edna would."""
        start, end = _parse_time(data.get("dateFrom")), _parse_time(data.get("dateTo"))
        if start is False or end is False:
            return self.error_reply("error-syntax")
        wanted = _HistoryFilter.of(data, start, end)
        sort = (data.get("sort") or [{}])[0]
        offset, limit = data.get("offset") or 0, data.get("limit") or 0
        if not _is_count(offset) or not _is_count(limit):
            return self.error_reply("error-syntax")
        with self.lock:
            found = [r for r in self.pulse_log if wanted.matches(r)]
            found.sort(key=lambda r: int(r.extra["edna_id"]), reverse=str(sort.get("direction")).upper() == "DESC")
            items = [self._pulse_event(r) for r in found[offset : offset + (limit or 1000)]]
        return Reply.json(items)

    def _pulse_event(self, record: Record) -> dict[str, Any]:
        """A Pulse status event, with every field the callback docs mark required (requestId,
        messageId, cascadeId, cascadeStageUUID, subject, subjectId, status, statusAt)."""
        channel = record.extra["channel"]
        return {
            "requestId": record.id,
            "messageId": record.extra["edna_id"],
            "cascadeId": record.extra.get("cascade"),
            "cascadeStageUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"edna-emulator/{record.extra.get('cascade')}/1")),
            "channelType": channel.upper(),
            "direction": "OUT",
            "subject": self.subjects[0] if self.subjects else None,
            "subjectId": SUBJECT_ID_OF[channel],
            "status": record.status.upper().replace("-", "_"),
            "statusAt": record.extra["status_at"],
            "error": record.extra.get("error"),
            "comment": None,
            "text": record.text,
        }

    # -- IM API ----------------------------------------------------------------------------

    def _im_send(self, data: dict[str, Any], *, hsm: bool) -> Reply:
        problem = self._im_problem(data, hsm=hsm)
        if problem is not None:
            return self.error_reply(problem)
        message_id, address, channel = data["id"], str(data.get("address") or ""), data["imType"]
        with self.lock:
            if message_id in self.used_ids:
                return self.error_reply("error-id-not-unique")
            if self.rate_limited(address):
                return self.error_reply(RATE_LIMITED)
            if address in self.blocked:
                return self.error_reply("user-blocked")
            if address in self.not_on[channel]:
                return self.error_reply(f"not-{channel}-user")
            if self.balance < self.price:
                return self.error_reply("error-insufficient-balance")
            self._store(message_id, address, data.get("text"), channel, "im", _first_status(data), None)
        return Reply.json({"id": message_id, "code": "ok"})

    def _im_problem(self, data: dict[str, Any], *, hsm: bool) -> str | None:
        """The seed code of a malformed IM send (the first check it fails), ``None`` when well formed."""
        message_id, subject, address = data.get("id"), data.get("subject"), str(data.get("address") or "")
        channel = data.get("imType")
        checks = [
            (not isinstance(message_id, str) or not 0 < len(message_id) <= 36, "error-subject-id-format"),
            (not isinstance(subject, str) or not subject, "error-subject-format"),
            (subject not in self.subjects, "error-subject-unknown"),
            (not address, "error-address-not-specified"),
            (not self._valid_address(address), "error-address-format"),
            (channel not in ("whatsapp", "viber") or (hsm and channel != "whatsapp"), "error-im-type-not-specified"),
            (data.get("priority", "normal") not in ("realtime", "high", "normal", "low"), "error-priority-format"),
            (not _positive_int(data.get("validityPeriodSeconds", 1)), "error-validity-period-seconds-format"),
            (_parse_time(data.get("startTime")) is False, "error-start-time-format"),
            (not isinstance(data.get("comment", ""), str), "error-comment-format"),
        ]
        problem = next((code for failed, code in checks if failed), None)
        problem = problem or _content_problem(data, CONTENT_TYPES[str(channel)])
        if problem is None and hsm and not self._matches_template(data.get("text")):
            problem = "error-content-do-not-match-hsm-template"
        return problem

    def _im_status(self, message_id: str) -> Reply:
        with self.lock:
            record = self.messages.get(message_id)
            if record is None or record.extra["api"] != "im":
                return self.error_reply("error-not-found")
            return Reply.json({**self._im_event(record), "code": "ok"})

    def _im_event(self, record: Record) -> dict[str, Any]:
        return {
            "imOutMessageId": record.id,
            "dlvStatus": record.status.lower(),
            "dlvStatusAt": record.extra["status_at"].replace("Z", ".000+0000"),
            "dlvError": record.extra.get("error"),
        }

    # -- state -----------------------------------------------------------------------------

    def _valid_address(self, address: str) -> bool:
        return address.isdigit() and 8 <= len(address) <= 15 and f"+{address}" != self.invalid_number

    def _pulse_address_problem(self, address: str, target: dict[str, Any]) -> str | None:
        """The seed code of a subscriber filter without an address, or not a valid ``PHONE`` one."""
        if not address:
            return "error-address-not-specified"
        if target.get("type") != "PHONE" or not self._valid_address(address):
            return "error-address-format"
        return None

    def _matches_template(self, text: object) -> bool:
        return isinstance(text, str) and any(p.fullmatch(text) for p in self.templates)

    def _store(
        self,
        message_id: str,
        address: str,
        text: object,
        channel: str,
        api: str,
        status: str,
        error: str | None,
        **extra: Any,
    ) -> Record:
        """Keep a message under the id the client chose (edna echoes it everywhere) and charge for it."""
        record = Record(
            message_id, f"+{address}", text if isinstance(text, str) else None, message_id, status, self.clock()
        )
        record.extra.update(
            api=api,
            channel=channel,
            error=error,
            edna_id=next(self._edna_ids),
            status_at=_now(),
            sent_at=datetime.now(timezone.utc),
            **extra,
        )
        self.messages[message_id] = record
        self.used_ids.add(message_id)
        if api == "pulse":
            self.pulse_log.append(record)
        if status != "cancelled":
            self.balance -= self.price
        return record

    def _log(self, message_id: str, address: str, text: object, channel: str, status: str, cascade: object) -> None:
        """A Pulse copy under a request id already used (``repeated_request_id="cancel"``): history only."""
        record = Record(message_id, f"+{address}", text if isinstance(text, str) else None, message_id, status, 0.0)
        record.extra.update(
            api="pulse",
            channel=channel,
            error=None,
            edna_id=next(self._edna_ids),
            status_at=_now(),
            sent_at=datetime.now(timezone.utc),
            cascade=cascade,
        )
        self.pulse_log.append(record)

    def deliver(self, message_id: str, *, delivered: bool = True) -> dict[str, Any]:
        with self.lock:
            record = self.messages[message_id]
            record.status = "delivered" if delivered else "undelivered"
            channel = record.extra["channel"]
            reason = "user-blocked" if channel == "sms" else f"not-{channel}-user"
            record.extra.update(status_at=_now(), error=None if delivered else reason)
            event = self._pulse_event(record) if record.extra["api"] == "pulse" else self._im_event(record)
        headers = {"content-type": "application/json"}
        if self.webhook_key:
            headers["X-API-KEY"] = self.webhook_key
        return {"body": json.dumps(event).encode(), "headers": headers}


def _cascade_blocks(data: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any]] | None:
    """The request id, channel, content block and subscriber filter of a Pulse send; ``None`` when the
    request id is missing, the cascade unknown or the content blocks not the cascade's channel's."""
    rid, cascade, content = data.get("requestId"), data.get("cascadeId"), data.get("content")
    channel = CHANNEL_OF.get(cascade) if isinstance(cascade, int) else None
    if channel is None or not isinstance(rid, str) or not rid or not isinstance(content, dict):
        return None
    block, target = content.get(PULSE_BLOCKS[channel]), data.get("subscriberFilter")
    if set(content) != {PULSE_BLOCKS[channel]} or not isinstance(block, dict) or not isinstance(target, dict):
        return None
    return rid, channel, block, target


@dataclass(frozen=True)
class _HistoryFilter:
    """The documented filters of ``messages/history``; one not given lets every message through."""

    outgoing: bool
    address: object
    message_id: object
    channels: frozenset[str]
    start: datetime | None
    end: datetime | None

    @classmethod
    def of(cls, data: dict[str, Any], start: datetime | None, end: datetime | None) -> _HistoryFilter:
        given = data.get("subscriberFilter")
        target: dict[str, Any] = given if isinstance(given, dict) else {}
        channels = frozenset(str(c).lower() for c in data.get("channelTypes") or [])
        return cls(
            data.get("direction", "OUT") == "OUT", target.get("address"), data.get("messageId"), channels, start, end
        )

    def matches(self, record: Record) -> bool:
        sent_at = record.extra["sent_at"]
        return (
            self.outgoing
            and (not self.address or record.to == f"+{self.address}")
            and (self.message_id is None or str(self.message_id) == str(record.extra["edna_id"]))
            and (not self.channels or record.extra["channel"] in self.channels)
            and (not self.start or sent_at >= self.start)
            and (not self.end or sent_at <= self.end)
        )


def _is_count(value: object) -> bool:
    """An ``offset`` or ``limit``: a whole number, not negative."""
    return isinstance(value, int) and value >= 0


def _first_status(data: dict[str, Any]) -> str:
    """``delayed`` for a ``startTime`` in the future, else ``enqueued``."""
    start = _parse_time(data.get("startTime"))
    return "delayed" if start and start > datetime.now(timezone.utc) else "enqueued"


def _digits(numbers: tuple[str, ...]) -> set[str]:
    return {n.lstrip("+") for n in numbers}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{\{[^{}]+\}\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


def _content_problem(fields: dict[str, Any], allowed: tuple[str, ...]) -> str | None:
    """The seed code for a malformed content, ``None`` when it is well formed."""
    kind = fields.get("contentType")
    if not kind:
        return "error-content-type-not-specified"
    if kind not in allowed:
        return "error-content-type-format"
    if kind == "text" and not (isinstance(fields.get("text"), str) and fields["text"].strip()):
        return "error-content-format"
    if kind in ("image", "document", "video", "audio") and not fields.get("attachmentUrl"):
        return "error-attachment-url-not-specified"
    if kind == "location" and fields.get("latitude") is None:
        return "error-latitude-not-specified"
    if kind == "location" and fields.get("longitude") is None:
        return "error-longtitude-not-specified"
    return None


def _parse_time(value: object) -> datetime | Literal[False] | None:
    """``None`` when absent, the time when valid, ``False`` when malformed."""
    if value is None:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(str(value), fmt)
        except ValueError:
            continue
    return False


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
