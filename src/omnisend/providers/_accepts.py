"""What a vendor's send request can carry, declared once per adapter and checked by the base.

An adapter states, per message field, what its API takes — an :class:`Accepts` of rules — and
:meth:`Provider.check_message <omnisend.providers.base.Provider.check_message>` refuses everything
else before any request, so ``build_request`` only builds::

    accepts = Accepts(
        media=Refused("media on SMS (use MMS in the panel)"),
        sender=Matches(r"[A-Za-z0-9 ]{1,11}", "up to 11 letters, digits and spaces"),
        scheduled_at=(NOT_PAST, Within(most=timedelta(days=90), why="scheduled_at more than 90 days ahead")),
        validity=Within(timedelta(hours=1), timedelta(hours=72), why="a validity outside 1 to 72 hours"),
        recipients=PerRequest(),
        on={"whatsapp": Accepts(template=Required("free-form WhatsApp text (send a template)", invalid=False))},
    )

A field with no rule is accepted as it is. Each rule refuses in one of two ways, as the rest of
omnisend does: what this vendor cannot do is :class:`~omnisend.Unsupported` (``provider.unsupported``:
"<Vendor> does not support <why>"; a router tries its next route), a value no request could carry
is :class:`~omnisend.ValidationError` (``provider.invalid``). Either names the field (``error.field``,
``"media.url"`` for a part of one). The words (``why``) are the vendor's reason, and may name
``{value}``, ``{channel}``, ``{length}``, ``{most}``, ``{count}``, ``{seconds}`` and ``{name}`` (the
provider id) where the rule says so.

Rules of one field are checked in order, those of the message's channel (``on``) first. Where an
API varies by a setting (edna's Pulse and IM APIs), the adapter picks its declaration in
:meth:`Provider.accepts_for <omnisend.providers.base.Provider.accepts_for>`; a rule may also name a
setting that lifts it (``unless=``, ``default=``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit

from .._text import normalize_e164
from ..models import Message

if TYPE_CHECKING:
    from .base import Provider

__all__ = [
    "NOT_PAST",
    "Accepts",
    "E164",
    "Longest",
    "Matches",
    "OneOf",
    "PerRequest",
    "Refused",
    "Required",
    "Rule",
    "Url",
    "Within",
    "Without",
]


class Rule(Protocol):
    """One check of one field: returns when ``value`` is acceptable, raises the typed error otherwise.

    A rule sees a field the message leaves out (``None``) only when it says so (``absent = True``:
    :class:`Required`); the others are not called for it.
    """

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None: ...

    def describe(self, name: str) -> str:
        """What the rule takes for field ``name``, and the error otherwise: a line of the provider's docs page."""
        ...


Rules = Rule | tuple[Rule, ...]
#: The fields an :class:`Accepts` declares, in the order they are checked.
FIELDS = (
    "channel",
    "recipients",
    "media",
    "template",
    "text",
    "sender",
    "scheduled_at",
    "validity",
    "idempotency_key",
)


def _refuse(provider: Provider, invalid: bool, why: str, name: str) -> None:
    if invalid:
        provider.invalid(why, field=name)
    provider.unsupported(why, field=name)


def _error(invalid: bool) -> str:
    return "`ValidationError`" if invalid else "`Unsupported`"


class _Names(dict[str, str]):
    """Placeholders of a reason shown by name in the docs (``{length}`` → ``<length>``)."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def _words(why: str) -> str:
    return why.format_map(_Names())


def _duration(span: timedelta) -> str:
    """``90 days``, ``72 hours``, ``60 minutes``, ``1 second``: the largest unit that divides it."""
    seconds = int(abs(span).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and not seconds % size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _part(value: Any, name: str, part: str | None) -> tuple[Any, str]:
    """``value``'s attribute ``part`` and its field name (``media.url``), or ``value`` itself."""
    if part is None or value is None:
        return value, name
    return getattr(value, part, None), f"{name}.{part}"


@dataclass(frozen=True, slots=True)
class Refused:
    """The vendor's request has no such field: a message giving it is refused (``Unsupported``;
    ``invalid=True``: ``ValidationError``). ``unless``: a provider setting that, when set, lifts it
    (Twilio schedules through a Messaging Service). ``part``: refuse only that part of the value
    (``Template.language``)."""

    why: str
    unless: str | None = None
    invalid: bool = False
    part: str | None = None

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        value, name = _part(value, name, self.part)
        if value is not None and not (self.unless and getattr(provider, self.unless, None)):
            _refuse(provider, self.invalid, self.why, name)

    def describe(self, name: str) -> str:
        lifted = f" (taken when `{self.unless}` is set)" if self.unless else ""
        part = f"`{self.part}` " if self.part else ""
        return f"{part}refused{lifted}, {_error(self.invalid)}: {_words(self.why)}"


@dataclass(frozen=True, slots=True)
class Required:
    """The vendor needs the field: a message without it is refused (``ValidationError``;
    ``invalid=False``: ``Unsupported``), unless the message gives ``instead`` (another field that
    stands in: a template for text) or the provider's setting ``default`` is set (a configured sender)."""

    why: str
    instead: str | None = None
    default: str | None = None
    invalid: bool = True
    absent: ClassVar[bool] = True

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        if value is not None or (self.instead and getattr(message, self.instead) is not None):
            return
        if not (self.default and getattr(provider, self.default, None)):
            _refuse(provider, self.invalid, self.why, name)

    def describe(self, name: str) -> str:
        stand_in = [f"`{self.instead}` given" for _ in [self.instead] if self.instead]
        stand_in += [f"`{self.default}` set" for _ in [self.default] if self.default]
        unless = f" (unless {' or '.join(stand_in)})" if stand_in else ""
        return f"required{unless}, {_error(self.invalid)}: {_words(self.why)}"


@dataclass(frozen=True, slots=True)
class Without:
    """The field may not come with ``other`` (text with a template): ``ValidationError``."""

    other: str
    why: str

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        if value is not None and getattr(message, self.other) is not None:
            provider.invalid(self.why, field=name)

    def describe(self, name: str) -> str:
        return f"not with `{self.other}`, `ValidationError`: {_words(self.why)}"


@dataclass(frozen=True, slots=True)
class Within:
    """A duration within ``least``..``most`` (either open): ``validity`` itself, or for a moment
    (``scheduled_at``) how far ahead of now it is. Outside: ``Unsupported`` (``invalid=True``:
    ``ValidationError``); ``why`` may name ``{seconds}``, the duration in whole seconds."""

    least: timedelta | None = None
    most: timedelta | None = None
    why: str = ""
    invalid: bool = False

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        if value is None:
            return
        span: timedelta = value - datetime.now(timezone.utc) if isinstance(value, datetime) else value
        if (self.least is not None and span < self.least) or (self.most is not None and span > self.most):
            _refuse(provider, self.invalid, self.why.format(seconds=int(span.total_seconds())), name)

    def describe(self, name: str) -> str:
        low, high, ahead = self.least, self.most, " ahead" if name == "scheduled_at" else ""
        if low is not None and low < timedelta(0) and high is None:
            span = f"not more than {_duration(low)} in the past"
        elif low is not None and high is not None:
            span = f"{_duration(low)} to {_duration(high)}{ahead}"
        else:
            span = f"at least {_duration(low)}" if low is not None else f"at most {_duration(high or timedelta(0))}"
            span += ahead
        return f"{span}, else {_error(self.invalid)}: {_words(self.why)}"


#: ``scheduled_at`` more than 5 minutes in the past (clock skew allowed): ``ValidationError``.
NOT_PAST = Within(least=-timedelta(minutes=5), why="scheduled_at is in the past", invalid=True)


@dataclass(frozen=True, slots=True)
class Matches:
    """Text that fully matches the vendor's ``pattern`` (a sender id). Otherwise ``ValidationError``
    "sender 'X' is not allowed: <rule>"; ``invalid=False``: ``Unsupported`` with ``rule`` as the reason
    (a kind of sender the vendor does not take at all)."""

    pattern: str
    rule: str
    invalid: bool = True

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        if value is not None and not re.fullmatch(self.pattern, value):
            _refuse(
                provider,
                self.invalid,
                f"{name} {value!r} is not allowed: {self.rule}" if self.invalid else self.rule,
                name,
            )

    def describe(self, name: str) -> str:
        return f"matches `{self.pattern}`, else {_error(self.invalid)}: {self.rule}"


@dataclass(frozen=True, slots=True)
class Longest:
    """Text of at most ``most`` characters (``in_bytes``: UTF-8 bytes): ``ValidationError``. ``why``
    may name ``{length}``, ``{most}``, ``{unit}`` and ``{name}``."""

    most: int
    why: str = "{field} has {length} {unit}; {name} allows at most {most}"
    in_bytes: bool = False

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        if value is None:
            return
        length = len(value.encode("utf-8")) if self.in_bytes else len(value)
        if length > self.most:
            unit = "bytes" if self.in_bytes else "characters"
            why = self.why.format(field=name, length=length, unit=unit, most=self.most, name=provider.name)
            provider.invalid(why, field=name)

    def describe(self, name: str) -> str:
        return f"at most {self.most} {'UTF-8 bytes' if self.in_bytes else 'characters'}, else `ValidationError`"


@dataclass(frozen=True, slots=True)
class OneOf:
    """A value (or its ``part``: ``Media.type``) among ``values``; otherwise ``Unsupported`` with
    ``why``, which may name ``{value}`` and ``{channel}`` (a channel of one API only, a media type)."""

    values: Collection[str]
    why: str
    part: str | None = None

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        value, _ = _part(value, name, self.part)
        if value is not None and value not in self.values:
            reason = self.why.format(value=value, channel=message.channel)
            provider.unsupported(reason, field=None if name == "channel" else name)

    def describe(self, name: str) -> str:
        listed = ", ".join(f"`{value}`" for value in self.values) or "none"
        return f"{f'`{self.part}` ' if self.part else ''}one of {listed}, else `Unsupported`: {_words(self.why)}"


@dataclass(frozen=True, slots=True)
class Url:
    """An absolute URL (the value's ``part``: ``Media.url``) of one of ``schemes``: ``ValidationError``."""

    schemes: tuple[str, ...]
    why: str
    part: str | None = "url"

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        value, name = _part(value, name, self.part)
        if value is not None:
            url = urlsplit(value)
            if url.scheme not in self.schemes or not url.netloc:
                provider.invalid(self.why, field=name)

    def describe(self, name: str) -> str:
        return f"`{self.part}` an absolute {' or '.join(self.schemes)} URL, else `ValidationError`: {_words(self.why)}"


@dataclass(frozen=True, slots=True)
class E164:
    """Every recipient an E.164 number, even in a message built without validation
    (``Message.model_construct``): :class:`~omnisend.InvalidRecipient` on ``to``."""

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        for number in value:
            normalize_e164(number)

    def describe(self, name: str) -> str:
        return "E.164 numbers, even in a message built without validation, else `InvalidRecipient`"


@dataclass(frozen=True, slots=True)
class PerRequest:
    """At most :attr:`Provider.max_recipients` recipients in one request (``send_flow`` splits a
    larger send; a request built directly is refused): ``ValidationError`` on ``to``. ``why`` may
    name ``{count}`` and ``{most}``."""

    why: str = "{count} recipients: at most {most} recipients per request"

    def check(self, provider: Provider, message: Message, name: str, value: Any) -> None:
        if len(value) > provider.max_recipients:
            provider.invalid(self.why.format(count=len(value), most=provider.max_recipients), field="to")

    def describe(self, name: str) -> str:
        return "at most `max_recipients` in one request (`send` splits a larger send), else `ValidationError`"


@dataclass(frozen=True, slots=True)
class Accepts:
    """What one vendor's send request can carry: per field, its rules (one, or a tuple checked in
    order); a field without rules is taken as it is. ``on``: further rules for one channel."""

    channel: Rules = ()
    recipients: Rules = ()
    media: Rules = ()
    template: Rules = ()
    text: Rules = ()
    sender: Rules = ()
    scheduled_at: Rules = ()
    validity: Rules = ()
    idempotency_key: Rules = ()
    on: Mapping[str, Accepts] = field(default_factory=dict)
    _plan: dict[str | None, tuple[tuple[str, tuple[Rule, ...], bool], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Per channel: each field that has rules, its rules, and whether one of them checks its absence.
        for channel in (None, *self.on):
            self._plan[channel] = tuple(
                (name, rules, any(getattr(rule, "absent", False) for rule in rules))
                for name in FIELDS
                if (rules := self.rules(name, channel))
            )

    def rules(self, name: str, channel: str | None = None) -> tuple[Rule, ...]:
        """The rules of field ``name``: those of ``channel`` (from :attr:`on`) first, then the general ones."""
        general = getattr(self, name)
        extra = getattr(self.on[channel], name) if channel is not None and channel in self.on else ()
        return (*_tuple(extra), *_tuple(general))

    def check(self, provider: Provider, message: Message, idempotency_key: object = None) -> None:
        """Refuse what ``message`` (and the request's key) carry that this declaration does not take."""
        plan = self._plan.get(message.channel) or self._plan[None]
        for name, rules, absent in plan:
            if name == "idempotency_key":
                value: Any = idempotency_key
            elif name == "recipients":
                value = message.recipients
            else:
                value = getattr(message, name)
            if value is None and not absent:
                continue
            for rule in rules:
                rule.check(provider, message, name, value)


def describe(accepts: Accepts) -> list[str]:
    """The declaration as the lines of a Markdown list (the provider's docs page): each rule of each
    field, then those of each channel."""
    lines = [f"- `{name}`: {rule.describe(name)}" for name in FIELDS for rule in _tuple(getattr(accepts, name))]
    for channel, extra in accepts.on.items():
        lines += [
            f"- `{name}` on {channel}: {rule.describe(name)}"
            for name in FIELDS
            for rule in _tuple(getattr(extra, name))
        ]
    return lines or ["- every field, as the message gives it"]


def _tuple(rules: Rules) -> tuple[Rule, ...]:
    return rules if isinstance(rules, tuple) else (rules,)
