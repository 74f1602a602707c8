"""A stateful Mobizon emulator: ``/service/<module>/<method>`` with the ``{code, data, message}`` envelope.

Behaviour kept from the real API: every answer is HTTP 200 with the envelope; the key in the
``apiKey`` query parameter (8 when wrong); ``output=json`` (6), unknown module (4) or method (5);
form bodies with PHP brackets; single sends (``message/sendSmsMessage``) and campaigns
(``campaign/create`` → ``addRecipients`` with per-recipient codes, 98/99, at most 500 numbers →
``send``); ``taskqueue/getStatus`` for background adds (``background_adds=True`` answers 100);
``message/getSMSStatus`` (≤100 ids, unknown ids left out); ``user/getOwnBalance``; a home domain
(``home_domain=``: other hosts answer 13 naming it); a per-number rate limit (30); the balance
charged per SMS part (15 with an "insufficient funds" message when it runs out — the real code
is undocumented); JSON delivery webhooks signed with ``webhook_secret``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from .._text import sms_segments
from ..providers.mobizon import ERRORS, Mobizon
from ._emulator import BLOCKED_NUMBER, INVALID_NUMBER, Emulator, Record, Reply, Request

__all__ = ["MobizonEmulator"]

_TIME = "%Y-%m-%d %H:%M:%S"
_INDEXED = re.compile(r"^(?P<name>\w+)\[(?P<index>\d*)\]$")
_ROW = re.compile(r"^(?P<name>\w+)\[(?P<index>\d+)\]\[(?P<field>\w+)\]$")


@dataclass(slots=True)
class _Campaign:
    id: int
    text: str
    sender: str | None
    name: str | None
    deferred: str | None
    recipients: dict[str, str] = field(default_factory=dict)
    """Number (digits) → the message id it will be sent with."""
    sent: bool = False


@dataclass(slots=True)
class _Task:
    campaign: _Campaign
    numbers: list[str]
    polls: int = 0


class MobizonEmulator(Emulator):
    """Mobizon API v1 in memory.

    Args:
        home_domain: the host that serves this account; requests to any other host answer 13.
        webhook_secret: the secret webhooks are signed with (``None``: unsigned).
        background_adds: ``campaign/addRecipients`` answers 100 and runs as a task.
        task_polls: ``taskqueue/getStatus`` calls before a task is done.
        blacklist: numbers on the stop list (item code 5, or code 1 on a single send).
    """

    provider = "mobizon"
    default_credential = "kz5c0ffee0d15ea5e0b57ac1e0dd5e110f0a7c1e"
    invalid_number: ClassVar[str] = "+77000000000"
    rate_limit_code: ClassVar[object] = 30

    def __init__(
        self,
        *,
        home_domain: str | None = None,
        webhook_secret: str | None = "emulator-webhook-secret",
        background_adds: bool = False,
        task_polls: int = 2,
        blacklist: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.home_domain = home_domain
        self.webhook_secret = webhook_secret
        self.background_adds = background_adds
        self.task_polls = task_polls
        self.blacklist = {n.lstrip("+") for n in (*blacklist, BLOCKED_NUMBER)}
        self.campaigns: dict[int, _Campaign] = {}
        self.tasks: dict[int, _Task] = {}
        self._numbers = itertools.count(169275418)
        self._campaign_ids = itertools.count(245455096)
        self._events = itertools.count(1)
        self._routes = {
            "message/sendsmsmessage": self._send_sms,
            "message/getsmsstatus": self._status,
            "campaign/create": self._create,
            "campaign/addrecipients": self._add,
            "campaign/send": self._send_campaign,
            "taskqueue/getstatus": self._task,
            "user/getownbalance": self._balance,
        }

    def url_options(self) -> dict[str, str]:
        return {"webhook_secret": self.webhook_secret} if self.webhook_secret else {}

    def make_provider(self, base_url: str, **options: Any) -> Mobizon:
        options.setdefault("webhook_secret", self.webhook_secret)
        return Mobizon(api_key=self.credentials[0], base_url=base_url, **options)

    def new_id(self) -> str:
        return str(next(self._numbers))

    # -- the envelope ---------------------------------------------------------------------------

    @staticmethod
    def reply(code: int, data: object = None, message: str = "") -> Reply:
        """The `{code, data, message}` envelope (HTTP 200 whatever the code, as Mobizon does)."""
        return Reply.json({"code": code, "data": data if data is not None else [], "message": message})

    def error_reply(self, code: object) -> Reply:
        row = ERRORS.lookup(code)
        data: object = {
            1: {"text": ["Text cannot be blank."]},
            13: self.home_domain,  # without one, a scripted 13 names no domain: nothing to follow
            100: "1",
        }.get(code if isinstance(code, int) else -1)
        return self.reply(int(str(code)), data, row.meaning if row else "error")

    def route(self, request: Request) -> Reply:
        path = request.path.lower().strip("/").removeprefix("service/")
        if request.query.get("output", "json") != "json":
            return self.error_reply(6)
        if request.query.get("apiKey") not in self.credentials:
            return self.reply(8, message="Authorization failed: wrong API key.")
        host = (request.header("host") or "").split(":")[0]
        if self.home_domain is not None and host != self.home_domain:
            return self.error_reply(13)
        handler = self._routes.get(path)
        if handler is None:
            modules = {p.split("/")[0] for p in self._routes}
            return self.error_reply(5 if path.split("/")[0] in modules else 4)
        pairs = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        return handler(dict(pairs), _lists(pairs))

    # -- single send ----------------------------------------------------------------------------

    def _checks(self, text: str, validity: str | None, deferred: str | None) -> dict[str, list[str]]:
        faults: dict[str, list[str]] = {}
        if not text.strip():
            faults["text"] = ["Text cannot be blank."]
        if validity is not None and not (validity.isdigit() and 60 <= int(validity) <= 1440):
            faults["validity"] = ["Validity must be from 60 to 1440 minutes."]
        if deferred is not None:
            try:
                ahead = datetime.strptime(deferred, _TIME).replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)
            except ValueError:
                ahead = timedelta(0)
            if not timedelta(minutes=59) <= ahead <= timedelta(days=14, minutes=1):
                faults["deferredToTs"] = ["Sending may be deferred from 1 hour to 14 days."]
        return faults

    def _send_sms(self, form: dict[str, str], lists: dict[str, list[str]]) -> Reply:
        number = form.get("recipient", "").strip().lstrip("+")
        text = form.get("text", "")
        if not number:
            return self.reply(11, {"recipient": ["Recipient is required."]}, "Required parameter missing.")
        faults = self._checks(text, form.get("params[validity]"), form.get("params[deferredToTs]"))
        if faults:
            return self.reply(1, faults, "Validation error.")
        if not self._valid(number):
            return self.reply(1, {"recipient": ["Incorrect recipient number."]}, "Validation error.")
        if number in self.blacklist:
            return self.reply(1, {"recipient": ["Recipient is in the stop list."]}, "Validation error.")
        if self.rate_limited(number):
            return self.error_reply(30)
        parts = sms_segments(text).parts
        with self.lock:
            if self.balance < self.price * parts:
                return self._no_funds()
            campaign = self._new_campaign(
                text, form.get("from"), form.get("params[name]"), form.get("params[deferredToTs]")
            )
            record = self._store(campaign, number, self.new_id(), parts)
            campaign.sent = True
        return self.reply(0, {"campaignId": str(campaign.id), "messageId": record.id, "status": 2})

    def _valid(self, number: str) -> bool:
        """Unroutable in the emulator: numbers under +7 700 000 0xxx (possible, but no operator)."""
        return (
            number.isdigit()
            and 8 <= len(number) <= 15
            and not number.startswith("7700000")
            and number != INVALID_NUMBER[1:]
        )

    def _no_funds(self) -> Reply:
        return self.reply(15, [], "Insufficient funds on the balance to send the messages.")

    def _new_campaign(self, text: str, sender: str | None, name: str | None, deferred: str | None) -> _Campaign:
        campaign = _Campaign(next(self._campaign_ids), text, sender, name, deferred)
        self.campaigns[campaign.id] = campaign
        return campaign

    def _store(self, campaign: _Campaign, number: str, message_id: str, parts: int) -> Record:
        status = "NEW" if campaign.deferred else "ENQUEUD"
        record = Record(
            message_id, f"+{number}", campaign.text, campaign.name, status, self.clock(), parts, campaign.sender
        )
        record.extra["campaign_id"] = campaign.id
        self.messages[record.id] = record
        self.balance -= self.price * parts
        return record

    # -- campaigns ------------------------------------------------------------------------------

    def _create(self, form: dict[str, str], lists: dict[str, list[str]]) -> Reply:
        text = form.get("data[text]", "")
        faults = self._checks(text, form.get("data[validity]"), form.get("data[deferredToTs]"))
        if faults:
            return self.reply(1, faults, "Validation error.")
        with self.lock:
            campaign = self._new_campaign(
                text, form.get("data[from]"), form.get("data[name]"), form.get("data[deferredToTs]")
            )
        return self.reply(0, campaign.id)

    def _campaign(self, form: dict[str, str]) -> _Campaign | Reply:
        campaign = self.campaigns.get(int(form["id"])) if form.get("id", "").isdigit() else None
        if campaign is None:
            return self.reply(2, message="Campaign not found.")
        if campaign.sent:
            return self.reply(10, message="The campaign status does not allow this operation.")
        return campaign

    def _add(self, form: dict[str, str], lists: dict[str, list[str]]) -> Reply:
        with self.lock:
            campaign = self._campaign(form)
            if isinstance(campaign, Reply):
                return campaign
            numbers = self._numbers_to_add(form, lists)
            if isinstance(numbers, Reply):
                return numbers
            if self.background_adds:
                task_id = len(self.tasks) + 1
                self.tasks[task_id] = _Task(campaign, numbers)
                return self.reply(100, str(task_id), "Started in the background.")
            items = [self._add_one(campaign, n) for n in numbers]
        added = sum(1 for i in items if i["code"] == 0)
        code = 0 if added == len(items) else 99 if added == 0 else 98
        return self.reply(code, items)

    def _numbers_to_add(self, form: dict[str, str], lists: dict[str, list[str]]) -> list[str] | Reply:
        """The numbers of ``addRecipients``, or the refusal of a request without them, with more than
        one source of them, or with more than 500. The documented sources (addRecipients.md): a
        comma/newline string, ``recipients[]=...``, or the two-dimensional
        ``recipients[i][recipient]=...`` (placeholders beside it); one at a time."""
        sources = [
            lists.get("recipients") or [],
            [n for n in re.split(r"[,\n]", form.get("recipients", "")) if n],
            _rows(form, "recipients", "recipient"),
        ]
        given = [source for source in sources if source]
        if len(given) > 1:
            return self.reply(12, message="Only one source of recipients per request.")
        if not given:
            return self.reply(11, {"recipients": ["Recipients are required."]}, "Required parameter missing.")
        if len(given[0]) > 500:
            return self.reply(12, message="At most 500 recipients per request.")
        return given[0]

    def _add_one(self, campaign: _Campaign, given: str) -> dict[str, Any]:
        """One item: ``number`` echoes the value as sent ("the original value of the recipient number")."""
        number = given.strip().lstrip("+")
        item: dict[str, Any] = {"recipient": number, "code": 0, "messageId": None, "number": given, "contact": None}
        if not number.isdigit():
            item["code"] = 3
        elif number in self.blacklist:
            item["code"] = 5
        elif not self._valid(number):
            item["code"] = 7
        elif number in campaign.recipients:
            item["code"] = 4
        else:
            campaign.recipients[number] = item["messageId"] = self.new_id()
        return item

    def _send_campaign(self, form: dict[str, str], lists: dict[str, list[str]]) -> Reply:
        with self.lock:
            campaign = self._campaign(form)
            if isinstance(campaign, Reply):
                return campaign
            if not campaign.recipients:
                return self.reply(12, message="The campaign has no recipients.")
            parts = sms_segments(campaign.text).parts
            if self.balance < self.price * parts * len(campaign.recipients):
                return self._no_funds()
            for number, message_id in campaign.recipients.items():
                self._store(campaign, number, message_id, parts)
            campaign.sent = True
        return self.reply(0, 2)

    def _task(self, form: dict[str, str], lists: dict[str, list[str]]) -> Reply:
        with self.lock:
            task = self.tasks.get(int(form["id"])) if form.get("id", "").isdigit() else None
            if task is None:
                return self.reply(2, message="Task not found.")
            task.polls += 1
            if task.polls < self.task_polls:
                return self.reply(0, {"progress": 50, "status": 1})
            for number in task.numbers:
                self._add_one(task.campaign, number)
        return self.reply(0, {"progress": 100, "status": 2})

    # -- reads ----------------------------------------------------------------------------------

    def _status(self, form: dict[str, str], lists: dict[str, list[str]]) -> Reply:
        ids = lists.get("ids") or [i for i in form.get("ids", "").split(",") if i]
        if not ids:
            return self.reply(2, message="No message ids given.")
        if len(ids) > 100:
            return self.reply(12, message="At most 100 ids per request.")
        with self.lock:
            found = [self.messages[i] for i in ids if i in self.messages]
        stamp = datetime.now(timezone.utc).strftime(_TIME)
        return self.reply(
            0,
            [
                {"id": r.id, "status": r.status, "segNum": str(r.parts), "startSendTs": stamp, "statusUpdateTs": stamp}
                for r in found
            ],
        )

    def _balance(self, form: dict[str, str], lists: dict[str, list[str]]) -> Reply:
        return self.reply(0, {"balance": f"{self.balance:.4f}", "currency": "KZT"})

    # -- webhooks -------------------------------------------------------------------------------

    def deliver(self, message_id: str, *, delivered: bool = True) -> dict[str, Any]:
        (record,) = self.set_status("DELIVRD" if delivered else "UNDELIV", message_id=message_id)
        return {"body": self.webhook_body(record), "headers": {"content-type": "application/json"}}

    def webhook_body(self, record: Record, *, attempt: int = 1) -> bytes:
        """The JSON ``sms-delivery-report`` event Mobizon posts for ``record``'s current status."""
        now = datetime.now(timezone.utc).strftime(_TIME)
        event: dict[str, Any] = {
            "eventId": next(self._events),
            "eventType": "sms-delivery-report",
            "eventCreateTs": now,
            "webhookId": 1,
            "attempt": attempt,
            "data": {
                "campaignId": record.extra.get("campaign_id"),
                "messageId": int(record.id),
                "segNum": record.parts,
                "statusUpdateTs": now,
                "status": record.status,
                "to": record.to.lstrip("+"),
            },
        }
        if self.webhook_secret is not None:
            signed = f"{event['eventId']}|{attempt}|{now}|{self.webhook_secret}"
            event["sign"] = hashlib.sha1(signed.encode()).hexdigest()
        return json.dumps(event).encode()


def _rows(form: dict[str, str], name: str, field: str) -> list[str]:
    """``name[0][field]=a&name[1][field]=b`` → ``["a", "b"]``, in index order."""
    found = {}
    for key, value in form.items():
        match = _ROW.match(key)
        if match and match["name"] == name and match["field"] == field:
            found[int(match["index"])] = value
    return [found[i] for i in sorted(found)]


def _lists(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """``ids[0]=1&ids[1]=2`` (or ``ids[]=``) → ``{"ids": ["1", "2"]}``."""
    found: dict[str, list[str]] = {}
    for key, value in pairs:
        match = _INDEXED.match(key)
        if match:
            found.setdefault(match["name"], []).append(value)
    return found
