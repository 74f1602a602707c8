"""The send-answer pipeline every adapter shares (the template method of django-anymail).

An adapter does not write ``parse_response``: it **declares** where its send answer keeps things,
as an :class:`Answer` in the class attribute ``answer``, and :meth:`Provider.parse_response
<omnisend.providers.base.Provider.parse_response>` runs :func:`read_send_answer` over it:

1. the body is read (:meth:`~omnisend.providers.base.Provider.read_json`: an empty, HTML or cut-short
   body is a typed error); a body that is not a JSON object is the HTTP-status error (non-2xx) or a
   shape error (2xx, ``accepted=None``);
2. an error of the whole request — the hook ``answer_error(body, response)``, by default the
   declared ``code``/``text`` fields (``failure_code`` too in a non-2xx answer; a code in
   ``ok_codes`` is none) — is raised as the class its code has in ``errors`` (with no code, as the
   HTTP-status error carrying the vendor's words);
3. the per-recipient items — the hook ``answer_items(body, response)``, by default the declared
   ``items`` list (a single object counts as a list of one; ``items=None``: the body is the one item).
   An answer listing none is a shape error; a non-2xx answer is the HTTP-status error unless it
   lists items (Clickatell answers 400/207 with one error per message);
4. each recipient of the message finds its item by the number the item names (the declared
   ``recipient`` fields, channel prefix and ``+`` ignored), else by position: always when the
   vendor names no recipient, otherwise when the answer lists as many items as recipients;
5. each item is accepted or refused — the hook ``item_error(item)``, by default the declared
   ``item_code``/``item_text``: an item with no code is accepted, unless ``accepted`` (a
   :class:`StatusTable` of success codes) is declared, when only those codes are. An accepted item
   keeps its id (``message_id``; with ``id_is_key`` the idempotency key) and its status (the declared ``status`` field read through
   ``statuses``, else the ``accepted`` row's status, else ``QUEUED``; ``QUEUED`` of a message
   scheduled more than a minute ahead reads ``SCHEDULED``). A refused one gets the typed error of
   its code and the status that error implies (:func:`refused_status`). A recipient the answer does
   not list is ``UNKNOWN``, with a :class:`DeliveryUnknown` error unless ``missing_is_error=False``;
6. none accepted: the first recipient's error is raised; otherwise the :class:`SendResult` carries
   every recipient (``result.failed`` the refused ones), the first accepted id and status.

How an adapter uses it — declare, and override a hook only where a shape cannot be declared::

    class Acme(Provider):
        answer = Answer(
            code="error.code", text=("error.message",),    # an error of the whole request
            failure_code="title", ok_codes=("ok",),         # (problem details; a code meaning success)
            items="messages", recipient=("to",),            # one item per recipient, naming it
            message_id=("id",), status="status",            # what an accepted item carries
            item_code=("error",),                           # what a refused item carries
        )

        def answer_error(self, body, response):           # only for an odd error envelope
            ...                                             # -> (code, words) or None

Hooks are overridden on the adapter class (found once per class; one not overridden is read from
the :class:`Answer` without the extra call). A bespoke ``parse_response`` may wrap the shared one
(``super().parse_response(...)``).

Status lookups and other calls read their answers with :func:`read_answer`
(``Provider.read_answer``): steps 1-2, and a non-2xx answer raised as its HTTP status.
Splitting a send above ``max_recipients`` into requests (derived keys where the vendor
de-duplicates) is :meth:`Provider.send_flow <omnisend.providers.base.Provider.send_flow>`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

import httpx

from .._inputs import derive_id
from ..errors import DeliveryFailed, DeliveryUnknown, InvalidRecipient, OmnisendError, TransportError
from ..models import DeliveryStatus, Message, RecipientResult, SendResult
from ._json import as_text, value_at
from ._steps import Flow
from ._tables import StatusEntry, StatusTable

if TYPE_CHECKING:
    from .base import Provider

__all__ = ["Answer", "match_items", "read_answer", "read_send_answer", "refused_status", "split_send"]

Path = tuple[str, ...]
#: Values of a code field that say "no error".
_NO_CODE: Final = (None, "", 0, "0")
_QUEUED: Final = DeliveryStatus.QUEUED
_SCHEDULED: Final = DeliveryStatus.SCHEDULED


def _paths(names: str | Sequence[str]) -> tuple[Path, ...]:
    return tuple(tuple(name.split(".")) for name in ((names,) if isinstance(names, str) else names))


def first(obj: object, paths: tuple[Path, ...]) -> Any:
    """The first of ``paths`` present in ``obj`` (not ``None``, not empty text); ``None`` if none."""
    for path in paths:
        if len(path) == 1:  # the common case, without the walk
            value = obj.get(path[0]) if isinstance(obj, dict) else None
        else:
            value = value_at(obj, path)
        if value is not None and value != "":
            return value
    return None


@dataclass(frozen=True)
class Answer:
    """Where a vendor's send answer keeps what the shared pipeline reads.

    Field names are dotted for nesting (``"error.code"``); a tuple lists alternatives, the first
    present wins. Everything is optional: an adapter declares what its vendor has.
    """

    code: str | Sequence[str] = ()
    """An error of the whole request: its code."""
    text: str | Sequence[str] = ()
    """... and its words."""
    errors_on_success: bool = True
    """Whether a 2xx answer may carry such an error (SMSAPI and Webex answer errors with HTTP 200)."""
    failure_code: str | Sequence[str] = ()
    """Fields holding the code only in a non-2xx answer, read when ``code`` holds none: a problem
    details ``title`` (RFC 9457), which names a success too (edna Pulse)."""
    ok_codes: Collection[str] = ()
    """Codes that say "no error" besides an absent, empty or zero one (edna IM ``ok``), in lower case:
    matched case-insensitively, surrounding spaces ignored."""
    items: str | None = None
    """The list of per-recipient items; ``None``: the body itself is the one item."""
    recipient: str | Sequence[str] = ()
    """Item fields naming its recipient; none: items follow the recipients' order."""
    message_id: str | Sequence[str] = ()
    """Item fields holding the vendor's message id."""
    status: str | None = None
    """Item field holding the vendor's status of an accepted item (read through ``statuses``)."""
    item_code: str | Sequence[str] = ()
    """Item fields holding a refused item's code ..."""
    item_text: str | Sequence[str] = ()
    """... and its words."""
    accepted: StatusTable | None = None
    """Success codes (with the status each means): when given, only an item with one is accepted."""
    id_required: bool = False
    """An accepted item without a message id is unreadable (``TransportError``, ``accepted=None``)."""
    missing_is_error: bool = True
    """A recipient the answer does not list gets a ``DeliveryUnknown`` error (else only ``UNKNOWN``)."""
    id_is_key: bool = False
    """The vendor names the message by the id we send, the idempotency key (edna ``requestId``/``id``):
    an accepted recipient's id is the key (the ``message_id`` fields are read only when no key is
    given), and so is the id of a repeat the vendor answers as a duplicate (``Provider.duplicate_result``)."""
    _read: dict[str, tuple[Path, ...]] = field(init=False, repr=False, compare=False)

    _keys: dict[str, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = ("code", "failure_code", "text", "items", "recipient", "message_id", "item_code", "item_text")
        read = {name: _paths(getattr(self, name) or ()) for name in names}
        object.__setattr__(self, "_read", read)
        # A field read from one top-level key (most are) is read with one ``dict.get`` on the hot path.
        keys = {name: paths[0][0] if len(paths) == 1 and len(paths[0]) == 1 else None for name, paths in read.items()}
        object.__setattr__(self, "_keys", keys)

    def pick(self, obj: Mapping[str, Any], name: str) -> Any:
        """The declared field ``name`` of ``obj`` (the first of its alternatives present), or ``None``."""
        key = self._keys[name]
        if key is not None:
            value = obj.get(key)
            return None if value == "" else value
        return first(obj, self._read[name])

    def error(self, body: Mapping[str, Any], response: httpx.Response) -> tuple[object, object] | None:
        """``(code, words)`` of an error of the whole request, ``None`` when ``body`` holds none.

        With no code, a non-2xx answer's words still come back (``(None, words)``): the HTTP
        status then gives the class and the vendor's words the message.
        """
        success = 200 <= response.status_code < 300
        if success and not self.errors_on_success:
            return None
        code = self.pick(body, "code")
        if not success and self.failure_code and (code in _NO_CODE or self._no_error(code)):
            code = self.pick(body, "failure_code")
        if code in _NO_CODE or self._no_error(code):  # the common case without the call
            text = None if success else self.pick(body, "text")
            return None if text is None else (None, text)
        return code.strip() if isinstance(code, str) else code, self.pick(body, "text")

    def _no_error(self, code: object) -> bool:
        """Whether a request's ``code`` (not one of ``_NO_CODE``) says "no error" all the same: a
        success code (``accepted``), blank text, or one of ``ok_codes``."""
        if self.accepted is not None and self.accepted.lookup(code) is not None:
            return True
        return isinstance(code, str) and (not code.strip() or code.strip().lower() in self.ok_codes)

    def item_error(self, item: Mapping[str, Any]) -> tuple[object, object] | None:
        """``(code, words)`` of a refused item; ``None`` for an accepted one."""
        code = self.pick(item, "item_code")
        taken, _ = self._taken(code)
        return None if taken else (code, self.pick(item, "item_text"))

    def item_status(self, provider: Provider, item: Mapping[str, Any]) -> DeliveryStatus:
        """The status of an accepted item: its ``status`` field, else its success code's, else ``QUEUED``."""
        if self.status is not None:
            return provider.statuses.normalize(item.get(self.status))
        row = self.accepted.lookup(self.pick(item, "item_code")) if self.accepted is not None else None
        return row.status if row is not None else DeliveryStatus.QUEUED

    def read_item(self, provider: Provider, item: Mapping[str, Any]) -> DeliveryStatus | tuple[object, object]:
        """:meth:`item_status` of an accepted item, :meth:`item_error` of a refused one, in one reading."""
        code = self.pick(item, "item_code")
        taken, row = self._taken(code)
        if not taken:
            return code, self.pick(item, "item_text")
        if self.status is not None:
            return provider.statuses.normalize(item.get(self.status))
        return row.status if row is not None else DeliveryStatus.QUEUED

    def _taken(self, code: object) -> tuple[bool, StatusEntry | None]:
        """Whether an item's ``code`` says the vendor took it, and the success code's row if declared."""
        if self.accepted is None:
            return code in _NO_CODE, None
        row = self.accepted.lookup(code)
        return row is not None, row

    def list_items(self, provider: Provider, body: Mapping[str, Any], response: httpx.Response) -> list[object]:
        """The items of ``body``: a list, a single object as a list of one, nothing as ``[]``."""
        if self.items is None:
            return [body]
        value = self.pick(body, "items")
        if value is None:
            return []
        if isinstance(value, dict):
            return [value]
        if not isinstance(value, list):
            raise provider.shape_error(response, f"expected {self.items} to be a list, got {type(value).__name__}")
        return value


#: The hooks an adapter may override; one it does not is read from its :class:`Answer` directly.
_HOOKS: Final = ("answer_error", "answer_items", "item_error")
_OWN_HOOKS: dict[type, tuple[bool, ...]] = {}


def _own_hooks(cls: type[Provider]) -> tuple[bool, ...]:
    """Which of :data:`_HOOKS` ``cls`` overrides (found once per class)."""
    own = _OWN_HOOKS.get(cls)
    if own is None:
        from .base import Provider

        own = _OWN_HOOKS[cls] = tuple(getattr(cls, name) is not getattr(Provider, name) for name in _HOOKS)
    return own


def refused_status(error: OmnisendError) -> DeliveryStatus:
    """A refused recipient's status: ``REJECTED`` (not taken), ``FAILED`` (taken, not deliverable:
    ``DeliveryFailed``) or ``UNKNOWN`` (the vendor may have taken it)."""
    if error.accepted is False:
        return DeliveryStatus.REJECTED
    return DeliveryStatus.FAILED if isinstance(error, DeliveryFailed) else DeliveryStatus.UNKNOWN


def _request_object(provider: Provider, response: httpx.Response, own_error: bool) -> dict[str, Any]:
    """The JSON object of an answer, with an error of the whole request raised as its class."""
    body = provider.read_json(response)
    if not isinstance(body, dict):
        if not response.is_success:
            raise provider.http_error(response, raw=body)
        raise provider.shape_error(response, f"expected a JSON object, got {type(body).__name__}", raw=body)
    found = provider.answer_error(body, response) if own_error else provider.answer.error(body, response)
    if found is not None:
        code, text = found
        if code in _NO_CODE:
            raise provider.http_error(response, raw=body, message=as_text(text))
        raise provider.vendor_error(code, response=response, vendor_message=text, raw=body)
    return body


def read_answer(provider: Provider, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer; a vendor error (``answer_error``) or a non-2xx answer raised
    as its class. For status lookups and the other calls of a vendor."""
    body = _request_object(provider, response, _own_hooks(type(provider))[0])
    if not response.is_success:
        raise provider.http_error(response, raw=body)
    return body


def _scheduled(message: Message | None) -> bool:
    when = message.scheduled_at if message is not None else None
    return when is not None and when > datetime.now(timezone.utc) + timedelta(minutes=1)


def _number(value: object) -> str:
    """The digits a recipient field names: without a channel prefix (``whatsapp:``) or ``+``."""
    return str(value).rpartition(":")[2].lstrip("+")


def read_send_answer(
    provider: Provider, response: httpx.Response, message: Message | None, idempotency_key: str | None
) -> SendResult:
    """A send answer → :class:`SendResult` (one result per recipient), or the typed error raised."""
    shape, (own_error, own_items, own_item) = provider.answer, _own_hooks(type(provider))
    body = _request_object(provider, response, own_error)
    items = provider.answer_items(body, response) if own_items else shape.list_items(provider, body, response)
    if not 200 <= response.status_code < 300 and (shape.items is None or not items):
        raise provider.http_error(response, raw=body)
    if not items:
        raise provider.shape_error(response, f"the answer lists no {shape.items or 'message'}", raw=body)
    if message is not None and len(items) == len(message.recipients) == 1:  # by number or position: the same
        pairs: list[tuple[str, object]] = [(message.recipients[0], items[0])]
    else:
        pairs = match_items(getattr(message, "recipients", None), items, shape._read["recipient"])
    key = idempotency_key if shape.id_is_key else None
    recipients = _results(provider, shape, pairs, response, body, _scheduled(message), own_item, key)
    return _result(provider.name, recipients, idempotency_key, body)


def _result(name: str, recipients: list[RecipientResult], key: str | None, body: object) -> SendResult:
    """The result of a send: the first accepted recipient's status and the first id of an accepted
    one; none accepted, the first recipient's error raised."""
    accepted = None
    for recipient in recipients:
        if recipient.error is None:
            accepted = accepted or recipient
            if recipient.message_id:
                break
    if accepted is None:
        raise next(r.error for r in recipients if r.error is not None)
    message_id = recipient.message_id if recipient.error is None else None
    return SendResult(name, message_id, accepted.status, tuple(recipients), key, raw=body)


def match_items(
    numbers: Sequence[str] | None, items: Sequence[object], fields: tuple[Path, ...]
) -> list[tuple[str, object]]:
    """Each recipient number with its item (``None`` when the answer lists none for it): by the number
    the item names in ``fields`` (paths of keys), else by position (see the module docstring).
    Without ``numbers``, the recipients are the numbers the items name."""
    if numbers is None:
        named = (first(item, fields) for item in items)
        return [(f"+{_number(n)}" if n is not None else "", item) for n, item in zip(named, items, strict=True)]
    if not fields:
        return [(n, items[i] if i < len(items) else None) for i, n in enumerate(numbers)]
    by_number = {}
    for item in items:
        name = first(item, fields)
        if name is not None:
            by_number[_number(name)] = item
    same = len(items) == len(numbers)
    return [(n, by_number.get(n.lstrip("+")) or (items[i] if same else None)) for i, n in enumerate(numbers)]


def _results(
    provider: Provider,
    shape: Answer,
    pairs: list[tuple[str, object]],
    response: httpx.Response,
    body: object,
    scheduled: bool,
    own_item: bool,
    key: str | None,
) -> list[RecipientResult]:
    """Each recipient's result from its item: accepted (named ``key`` when given), refused
    (``item_error``) or missing."""
    pick, results = shape.pick, []
    for number, item in pairs:
        if not isinstance(item, dict):
            results.append(_missing(provider, shape, number, body))
            continue
        message_id = pick(item, "message_id")
        message_id = None if message_id is None else str(message_id)
        read = _hooked_item(provider, item) if own_item else shape.read_item(provider, item)
        if isinstance(read, tuple):
            error = provider.vendor_error(read[0], response=response, vendor_message=read[1], raw=body)
            results.append(RecipientResult(number, message_id, refused_status(error), error))
            continue
        message_id = key or message_id
        if message_id is None and shape.id_required:
            what = "/".join(".".join(path) for path in shape._read["message_id"])
            raise TransportError(f"the answer names no message {what}", provider=provider.name, raw=body, accepted=None)
        results.append(RecipientResult(number, message_id, _SCHEDULED if scheduled and read is _QUEUED else read))
    return results


def _hooked_item(provider: Provider, item: Mapping[str, Any]) -> DeliveryStatus | tuple[object, object]:
    """:meth:`Answer.read_item` through an adapter's own ``item_error``."""
    found = provider.item_error(item)
    return found if found is not None else provider.answer.item_status(provider, item)


def _missing(provider: Provider, shape: Answer, number: str, body: object) -> RecipientResult:
    """A recipient the answer does not list: ``UNKNOWN`` (with ``DeliveryUnknown`` unless declared otherwise)."""
    if not shape.missing_is_error:
        return RecipientResult(number, None, DeliveryStatus.UNKNOWN)
    missing = DeliveryUnknown("recipient missing from the answer", provider=provider.name, raw=body)
    return RecipientResult(number, None, DeliveryStatus.UNKNOWN, missing)


def split_send(provider: Provider, message: Message, idempotency_key: str) -> Flow[SendResult]:
    """The requests of a send above ``max_recipients``, one per chunk, merged into one result.

    Every chunk is built (and so validated) before the first request goes out. Where the vendor
    de-duplicates, the chunk starting at recipient ``i`` carries the key ``<key>--<i>`` and each
    recipient keeps the id it has in the whole send (``recipient_ids``). While no recipient was
    accepted, an error that does not only reject recipients is raised (an account or transport
    error: it would hit every chunk, and a re-send with the same key is safe); after that a chunk's
    error becomes each of its recipients' error (status by :func:`refused_status`). None accepted:
    the first error is raised. ``raw`` lists each request's answer (a refused one's error body);
    the send is ``deduplicated`` when every accepted chunk was.
    """
    numbers, size = message.recipients, provider.max_recipients
    ids = provider.recipient_ids(message, idempotency_key)
    starts = range(0, len(numbers), size)
    chunks = [message._part(list(numbers[i : i + size]), ids[i : i + size]) for i in starts]
    keys = [derive_id(idempotency_key, i + 1) if provider.deduplicates else idempotency_key for i in starts]
    steps = [provider.send_step(chunk, idempotency_key=key) for chunk, key in zip(chunks, keys, strict=True)]
    recipients: list[RecipientResult] = []
    raws: list[object] = []
    errors: list[OmnisendError] = []
    parts: list[SendResult] = []
    for chunk, step in zip(chunks, steps, strict=True):
        try:
            part: SendResult = yield from provider.exchange(step)
        except OmnisendError as exc:
            if not isinstance(exc, InvalidRecipient) and all(r.error is not None for r in recipients):
                raise
            errors.append(exc)
            recipients += [RecipientResult(to, None, refused_status(exc), exc) for to in chunk.recipients]
            raws.append(exc.raw)
            continue
        parts.append(part)
        recipients += part.recipients
        raws.append(part.raw)
    accepted = next((r for r in recipients if r.error is None), None)
    if accepted is None:
        raise errors[0]
    deduplicated = all(p.deduplicated for p in parts)
    return SendResult(
        provider.name,
        accepted.message_id,
        accepted.status,
        tuple(recipients),
        idempotency_key,
        raw=raws,
        deduplicated=deduplicated,
    )
