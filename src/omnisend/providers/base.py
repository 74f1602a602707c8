"""The provider contract: sans-I/O adapters made mostly of tables.

An adapter never sends, sleeps or retries. It turns a :class:`~omnisend.Message` into one or
more :class:`Step` objects (an ``httpx.Request`` plus the pure function that reads its answer)
and turns answers into results or typed errors. :class:`~omnisend.Client` and
:class:`~omnisend.AsyncClient` drive the same steps, so one adapter serves both.

Vendor knowledge lives in two tables per vendor:

* :class:`ErrorTable` — vendor code → :class:`ErrorCode` (exception class + the vendor's words);
  retryability follows from the class unless the vendor says otherwise for that code.
* :class:`StatusTable` — vendor delivery status → :class:`~omnisend.DeliveryStatus`.

What every vendor shares is written once, one concern per module, all importable from here:

* ``_tables`` — :class:`ErrorTable`, :class:`StatusTable` and the HTTP-status fallbacks (401/403,
  402, 404, 408, 429 + ``Retry-After``, 5xx) for answers that carry no vendor code;
* ``_steps`` — :class:`Step` and :data:`Flow`, the contract with the client;
* ``_answers`` — the send-answer pipeline: an adapter declares an :class:`Answer` (where its answer
  keeps the error code, the per-recipient items, their ids and statuses) and the shared
  :meth:`Provider.parse_response` matches recipients, builds partial results and raises the first
  error when none was accepted; split sends (:meth:`Provider.send_flow`) too;
* ``_guard`` — the guard around every ``parse_*``/``_parse_*`` method and flow that turns any
  unexpected answer shape into a typed error instead of ``KeyError``/``TypeError`` and masks a
  credential the answer echoes; :func:`strict_adapters` for tests;
* ``omnisend._wire`` — every hot-path shortcut, request building (cached URLs, one-pass forms)
  included, each with its equivalence test;
* ``_webhook`` — delivery callbacks: the authentication strategies an adapter declares
  (``webhook_check``), the callback's decoding, and :class:`ReportFields`, the declarative reading
  of one event that :meth:`Provider.parse_webhook` (a template) applies;
* ``_settings`` — declared constructor settings: an adapter lists its keyword-only arguments as
  annotated class attributes (``region: str = setting(default="pl", choices=HOSTS)``); the base
  generates ``__init__`` (a signature type checkers, ``inspect`` and the URL configuration see),
  runs the declared checks, reads credentials from the environment, masks the secret ones, calls
  ``__post_init__`` for derived values and picks the host (``hosts``);
* this module — :class:`Provider`: request building, reading answers (bodies that
  are empty, HTML or truncated), typed errors and reports.
"""

from __future__ import annotations

import abc
import functools
import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn, TypeVar, cast

import httpx
from typing_extensions import dataclass_transform

from .. import _redact
from .._inputs import owned_option, recipient_ids
from .._text import check_sms_length
from .._version import __version__
from .._wire import _FORM, _FORM_ARGS, _STR_ONLY, _encode_form, _form_request, _plain_form, _query_url, _url
from ..errors import (
    ConfigurationError,
    DeliveryFailed,
    DuplicateMessage,
    NotFound,
    OmnisendError,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    Unsupported,
    ValidationError,
)
from ..models import DeliveryReport, DeliveryStatus, Message, RecipientResult, ReportError, SendResult
from ..retry import parse_retry_after
from . import _settings
from ._accepts import Accepts
from ._answers import Answer, read_answer, read_send_answer, split_send
from ._guard import WebhookHeaders, _guard, _guard_build, _guard_flow, strict, strict_adapters
from ._json import as_text
from ._settings import BaseURL, Converted, Credential, Hosts, setting
from ._steps import Flow, Repeat, Step
from ._tables import HTTP_FALLBACKS, Code, ErrorCode, ErrorTable, StatusEntry, StatusTable, _kept
from ._webhook import UNNAMED_EVENT, Callback, CallbackAuth, ReportFields, Shapes, WebhookFormat

logger = logging.getLogger("omnisend")
__all__ = [
    "Accepts",
    "Answer",
    "BaseURL",
    "Converted",
    "Credential",
    "Hosts",
    "Code",
    "ErrorCode",
    "ErrorTable",
    "Flow",
    "HTTP_FALLBACKS",
    "Provider",
    "Repeat",
    "StatusEntry",
    "StatusTable",
    "Step",
    "WebhookHeaders",
    "setting",
    "strict",
    "strict_adapters",
]

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

USER_AGENT: Final = f"omnisend/{__version__} (+python; httpx)"


# -- the provider base class ---------------------------------------------------------------

#: The reason of a report for an id a batched status lookup's answer leaves out.
LEFT_OUT: Final = ReportError(NotFound.__name__, None, "left out of the answer: unknown id, or another account's")
_GUARDED: Final = ("parse_response", "parse_status", "parse_webhook")


def _guarded(method: F) -> F:
    """The guard of a ``parse_*`` method the base class itself defines (subclasses' are guarded
    when the class is made, see ``Provider.__init_subclass__``)."""
    wrapped = _guard(method.__name__, method)
    wrapped.__omnisend_guarded__ = True  # type: ignore[attr-defined]
    return cast(F, wrapped)


@dataclass_transform(kw_only_default=True, eq_default=False, field_specifiers=(setting,))
class Provider(abc.ABC):
    """Base class of every vendor adapter.

    Subclasses set the class attributes, implement :meth:`build_request` and
    :meth:`parse_response` (and, where the vendor offers them, the status and webhook
    methods), and keep vendor facts in their ``ERRORS`` / ``STATUSES`` tables.
    """

    name: ClassVar[str]
    """Provider id: module name, docs slug, ``error.provider``."""
    display_name: ClassVar[str]
    default_base_url: ClassVar[str]
    channels: ClassVar[frozenset[str]] = frozenset({"sms"})
    errors: ClassVar[ErrorTable]
    statuses: ClassVar[StatusTable]
    deduplicates: ClassVar[bool] = False
    """Whether the vendor recognises a repeated send by our idempotency key."""
    credential_env: ClassVar[str] = ""
    """Environment variable read when the credential argument is not given."""
    max_recipients: int = 1
    """The most recipients one request may carry (a class default; an instance may set its own)."""
    status_lookup: ClassVar[bool] = False
    """Whether the vendor offers a status lookup (``Client.get_status``)."""
    request_id_header: ClassVar[str | None] = None
    """The header in which the vendor names each request (kept as ``error.request_id``), if it has one."""
    webhook_auth: ClassVar[str] = "none"
    """How the vendor's delivery callbacks are authenticated (shown in the docs' feature matrix)."""
    owned_options: ClassVar[frozenset[str]] = frozenset()
    """Request fields omnisend sets itself — idempotency and de-duplication, recipients,
    authentication, the answer's format — as dotted paths (``"params.name"``). ``Message.options``
    may not set or replace them: :meth:`check_message` refuses such a message before any request."""
    max_sms_parts: ClassVar[int | None] = None
    """The most SMS parts an SMS text may need (:meth:`check_message` refuses a longer one); ``None``:
    the vendor's limit is not checked here."""
    secret_attributes: ClassVar[tuple[str, ...]] = ()
    """The instance attributes holding credentials and callback secrets (``_secrets()`` keeps them
    out of every error, repr and log; unset ones are skipped): the settings declared secret."""
    answer: ClassVar[Answer] = Answer()
    """Where the vendor's send answer keeps its error code, its per-recipient items, their ids and
    statuses: what the shared :meth:`parse_response` reads (see :mod:`omnisend.providers._answers`)."""
    split_batches: bool = True
    """Whether :meth:`send_flow` splits a message above :attr:`max_recipients` into several requests
    (otherwise ``build_request`` refuses it)."""
    accepts: ClassVar[Accepts] = Accepts()
    """What a send request can carry, per message field (see :mod:`omnisend.providers._accepts`):
    :meth:`check_message` refuses everything else before any request, so ``build_request`` only builds."""
    keyed_recipients: ClassVar[bool] = False
    """Whether the vendor takes an id per recipient in one request (SMSAPI ``idx``): ``send_many``
    then batches messages that carry their own keys, each recipient keeping the id it would get
    if its message were sent alone (:meth:`recipient_ids`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _settings.declare(cls)
        # The public parse methods, any private ``_parse_*`` a vendor's flow steps use, and the
        # vendor's flows (a result a flow assembles from its steps' answers is checked too).
        for name, method in list(cls.__dict__.items()):
            if not inspect.isfunction(method) or getattr(method, "__omnisend_guarded__", False):
                continue
            if name in _GUARDED or name.startswith(("_parse_", "parse_")):
                wrapped = _guard(name, method)
            elif name == "build_request":
                wrapped = _guard_build(method)
            elif name.endswith("_flow") and inspect.isgeneratorfunction(method):
                wrapped = _guard_flow(method)
            else:
                continue
            wrapped.__omnisend_guarded__ = True  # type: ignore[attr-defined]
            setattr(cls, name, wrapped)

    # -- settings (declared: see ``_settings``) ------------------------------------------------

    base_url: str
    """Where requests go: the ``base_url`` argument, else :attr:`hosts` or :attr:`default_base_url`."""
    __settings__: ClassVar[dict[str, _settings.Setting]]
    """Constructor argument → its declared :func:`setting` (the inherited ones first)."""
    hosts: ClassVar[Hosts | None] = None
    """The vendor's host chosen by settings (``Hosts(TABLE, "region")``), when ``base_url`` is not
    given; ``None``: :attr:`default_base_url`."""

    if TYPE_CHECKING:  # a class without declared settings takes only base_url; the others, theirs

        def __init__(self, *, base_url: str | None = None) -> None: ...

    else:

        def __init__(self, **values: Any) -> None:
            _settings.apply(self, values)
            self.__post_init__()
            url = self.base_url or (self.hosts.url(type(self), vars(self)) if self.hosts else self.default_base_url)
            self.base_url = _settings.checked_url(type(self), url.rstrip("/"), argument="base_url")
            self._masked = _redact.spellings(self._secrets(), self._basic_pairs())
            _redact.register(self, self._masked)

    def __post_init__(self) -> None:  # noqa: B027 - a hook: most adapters derive nothing
        """Derived values, once the declared settings are checked and set (before the base URL is chosen)."""

    def __repr__(self) -> str:
        return _settings.shown(self)

    def _secrets(self) -> tuple[str, ...]:
        """Credential values to keep out of errors, reprs and logs: the set :attr:`secret_attributes`."""
        return tuple(value for value in (getattr(self, name, None) for name in self.secret_attributes) if value)

    def _basic_pairs(self) -> tuple[tuple[str, str], ...]:
        """``(user, password)`` pairs this adapter sends as HTTP Basic (their base64 is masked too)."""
        return ()

    def _masks(self) -> tuple[str, ...]:
        """Every spelling of this provider's credentials (see :func:`omnisend._redact.spellings`)."""
        masked: tuple[str, ...] | None = getattr(self, "_masked", None)
        if masked is None:
            masked = self._masked = _redact.spellings(self._secrets(), self._basic_pairs())
        return masked

    # -- checking input ----------------------------------------------------------------------

    def check_message(self, message: object, idempotency_key: object = None) -> None:
        """Refuse, before any request, what no request may carry.

        ``Message`` itself refuses NUL characters, lone surrogates and values JSON cannot carry.
        Here: a key that is not printable text, options that set a field omnisend owns
        (:attr:`owned_options`), an SMS text longer than :attr:`max_sms_parts`, a channel not in
        :attr:`channels`, and whatever the vendor's declaration (:meth:`accepts_for`) does not take.
        """
        if not isinstance(message, Message):
            raise ValidationError(f"expected an omnisend.Message, got {type(message).__name__}", provider=self.name)
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key or not idempotency_key.isprintable()
        ):
            self.invalid("idempotency_key must be non-empty printable text", field="idempotency_key")
        if message.options and self.owned_options:
            owned = owned_option(message.options, self.owned_options)
            if owned is not None:
                self.invalid(
                    f"options may not set {owned!r}: {self.display_name} reads it from what omnisend "
                    "owns (the idempotency key, the recipients, the credentials, the answer format)",
                    field=f"options.{owned}",
                )
        if self.max_sms_parts is not None and message.channel == "sms" and message.text is not None:
            check_sms_length(message.text, max_parts=self.max_sms_parts, provider=self.name)
        self.check_channel(message)
        self.accepts_for(message).check(self, message, idempotency_key)

    def accepts_for(self, message: Message) -> Accepts:
        """The declaration ``message`` is checked against: :attr:`accepts`, unless the vendor's API
        varies by a setting (edna's ``api``) and the adapter picks one here."""
        return self.accepts

    def form_options(self, options: Mapping[str, Any]) -> dict[str, str]:
        """``Message.options`` as flat form fields: text as is, numbers as written, booleans as
        ``1``/``0``, ``None`` left out; a list or mapping is refused (a flat form cannot carry it)."""
        fields: dict[str, str] = {}
        for key, value in options.items():
            if isinstance(value, (dict, list)):
                self.invalid(
                    f"options[{key!r}] is a {type(value).__name__}; {self.display_name} takes flat form fields",
                    field=f"options.{key}",
                )
            if value is not None:
                fields[key] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return fields

    def recipient_ids(self, message: Message, idempotency_key: str) -> tuple[str, ...]:
        """The id the vendor keeps for each recipient of ``message`` (``<key>--<n>`` for several).

        A ``send_many`` batch or a chunk of a split send carries the ids of its recipients as they
        would be if each message were sent alone.
        """
        given = message._recipient_ids
        if given is not None and len(given) == len(message.recipients):
            return given
        return recipient_ids(idempotency_key, len(message.recipients))

    # -- building requests -------------------------------------------------------------------

    def build_http_request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        base_url: str | None = None,
        **kwargs: Any,
    ) -> httpx.Request:
        """An ``httpx.Request`` to ``base_url + path`` (the provider's, unless given) with omnisend's User-Agent."""
        root = base_url or self.base_url
        merged = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if headers:
            merged.update(headers)
        data = kwargs.get("data")
        if data and isinstance(data, dict) and kwargs.keys() <= _FORM_ARGS and _plain_form(data, merged):
            # The request httpx would build for ``data=`` (and ``params=``), built here in one
            # pass: its general path (form encoding, merging the query into the URL, normalising
            # the headers twice) costs more than the rest of a send.
            params = kwargs.get("params")
            if params is None:
                return _form_request(method, root + path, merged, _encode_form(data))
            if isinstance(params, dict) and {*map(type, params), *map(type, params.values())} <= _STR_ONLY:
                # A query that repeats on every call (Mobizon's key and format): the URL text is
                # built once per (URL, query) and parsed once (``_url``), not merged per request.
                return _form_request(method, _query_url(root + path, params), merged, _encode_form(data))
            merged["Content-Type"] = _FORM
            kwargs["content"] = _encode_form(kwargs.pop("data"))
        return httpx.Request(method, _url(root + path), headers=merged, **kwargs)

    def unsupported(self, feature: str, *, field: str | None = None) -> NoReturn:
        """Refuse a feature the vendor cannot do, before any request: :class:`Unsupported`.

        For what is about the provider's capabilities, not the message (a router tries its next
        route on it); a message that no provider could send is refused with :meth:`invalid`.
        """
        raise Unsupported(f"{self.display_name} does not support {feature}", provider=self.name, field=field)

    def resolve(self, name: str) -> Provider:
        """The provider called ``name`` behind this one: itself, or (for a router) one of its routes.

        ``Client.get_status(..., provider=NAME)`` uses it; a name that is not here is a
        :class:`ConfigurationError`.
        """
        if name == self.name:
            return self
        raise ConfigurationError(f"no provider {name!r} here: this client sends through {self.name!r}", provider=name)

    def invalid(
        self, message: str, *, field: str | None = None, error: type[ValidationError] = ValidationError
    ) -> NoReturn:
        """Refuse a bad value before any request (as ``error``: a :class:`ValidationError` or a subclass)."""
        raise error(message, provider=self.name, field=field)

    def check_channel(self, message: Message) -> None:
        if message.channel not in self.channels:
            self.unsupported(f"the {message.channel!r} channel")

    @abc.abstractmethod
    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        """The send request for ``message`` (pure; raises ``ValidationError`` on bad input)."""

    def parse_response(
        self, response: httpx.Response, *, message: Message | None = None, idempotency_key: str | None = None
    ) -> SendResult:
        """A send answer → :class:`SendResult`, or the typed error raised.

        The shared pipeline (:func:`._answers.read_send_answer`) reads what :attr:`answer` declares
        and asks the hooks :meth:`answer_error`, :meth:`answer_items` and :meth:`item_error`.
        """
        return read_send_answer(self, response, message, idempotency_key)

    def answer_error(self, body: Mapping[str, Any], response: httpx.Response) -> tuple[object, object] | None:
        """``(code, words)`` of an error of the whole request in ``body``; ``None`` when it holds none."""
        return self.answer.error(body, response)

    def answer_items(self, body: Mapping[str, Any], response: httpx.Response) -> list[object]:
        """The per-recipient items of a send answer (objects; anything else reads as a missing item)."""
        return self.answer.list_items(self, body, response)

    def item_error(self, item: Mapping[str, Any]) -> tuple[object, object] | None:
        """``(code, words)`` of an item the vendor refused; ``None`` for one it accepted."""
        return self.answer.item_error(item)

    def read_answer(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of a 2xx answer; an error the body names (:meth:`answer_error`) or a
        non-2xx status raised as its class. For status lookups and a vendor's other calls."""
        return read_answer(self, response)

    def read_list(self, response: httpx.Response, *fields: str) -> list[dict[str, Any]]:
        """The objects a 2xx answer lists: the body itself when it is a JSON list, else the first of
        ``fields`` holding a value in its object (``[]`` when none does). Errors as :meth:`read_answer`
        raises them; a list of anything but objects is the :meth:`shape_error`."""
        body = self.read_json(response)
        if not (isinstance(body, list) and response.is_success):
            answer = self.read_answer(response)
            body = next((answer[name] for name in fields if answer.get(name)), None)
        return self.objects(body, response, " or ".join(fields) or "the answer")

    def duplicate_result(self, error: DuplicateMessage, *, message: Message, idempotency_key: str) -> SendResult:
        """The result when the vendor says an earlier attempt with this key already landed (named by
        the key where the vendor keeps it as the message id: ``Answer.id_is_key``)."""
        message_id = idempotency_key if self.answer.id_is_key else None
        return SendResult(
            provider=self.name,
            message_id=message_id,
            status=DeliveryStatus.QUEUED,
            recipients=tuple(RecipientResult(to, message_id, DeliveryStatus.QUEUED) for to in message.recipients),
            idempotency_key=idempotency_key,
            raw=error.raw,
            deduplicated=True,
        )

    def send_step(self, message: Message, *, idempotency_key: str) -> Step[SendResult]:
        """The one request that sends ``message`` (at most ``max_recipients`` recipients)."""
        request = self.build_request(message, idempotency_key=idempotency_key)
        return Step(
            request,
            functools.partial(self.parse_response, message=message, idempotency_key=idempotency_key),
            repeat=Repeat.DEDUPLICATED if self.deduplicates else Repeat.ONCE,
            on_duplicate=functools.partial(self.duplicate_result, message=message, idempotency_key=idempotency_key)
            if self.deduplicates
            else None,
        )

    def send_flow(self, message: Message, *, idempotency_key: str) -> Flow[SendResult]:
        """The steps of one logical send: one request, or one per ``max_recipients`` recipients.

        Every chunk is built (and so validated) before the first request goes out. Each chunk is
        retried on its own; where the vendor de-duplicates, chunk ``n`` (starting at recipient
        ``i``) carries the key ``<key>--<i>``, and each recipient keeps the id it has in the whole
        send (:meth:`recipient_ids`), so no two chunks share a vendor id and none equals a key a
        caller can choose. While no recipient was accepted, an error is raised (it would hit every
        chunk: auth, balance) unless it only rejects recipients; after that a chunk's error becomes
        the error of each of its recipients (``REJECTED``, ``FAILED`` or ``UNKNOWN`` as the error says:
        :func:`._answers.refused_status`), and the send goes on. When no recipient at all was
        accepted, the first error is raised. Splitting is :func:`._answers.split_send`; with
        :attr:`split_batches` off, the one request carries them all (``build_request`` may refuse).
        """
        numbers, size = message.recipients, self.max_recipients
        if len(numbers) <= size or not self.split_batches:
            return (yield from self.exchange(self.send_step(message, idempotency_key=idempotency_key)))
        return (yield from split_send(self, message, idempotency_key))

    def exchange(self, step: Step[R]) -> Flow[R]:
        """Run one step of the base's flows (sends, splits, status lookups): by default, yield it.

        An adapter overrides it to wrap every step the same way, such as a vendor that answers
        "this account lives on another host" (Mobizon's code 13: re-sent once to the host named).
        """
        value: R = yield step
        return value

    # -- status and webhooks -----------------------------------------------------------------

    status_batch: ClassVar[int] = 1
    """How many ids one status lookup may ask for. Above one, the adapter writes
    :meth:`build_statuses_request` and :meth:`parse_statuses`, and :meth:`statuses_flow` (and so
    ``Client.get_statuses``) asks in batches of that size; else it writes
    :meth:`build_status_request` and :meth:`parse_status`, and ids are looked up one by one."""

    def build_status_request(self, message_id: str) -> httpx.Request:
        """The status-lookup request for ``message_id``; with :attr:`status_batch` above one, the
        lookup of that one id (:meth:`build_statuses_request`)."""
        if self.status_batch == 1:
            self.unsupported("status lookups")
        return self.build_statuses_request([message_id])

    def parse_status(self, response: httpx.Response, *, message_id: str | None = None) -> DeliveryReport:
        """A status-lookup answer → :class:`DeliveryReport`; with :attr:`status_batch` above one, the
        report :meth:`parse_statuses` gives for ``message_id`` (without it: the answer's first)."""
        if self.status_batch == 1:
            self.unsupported("status lookups")
        reports = self.parse_statuses(response, message_ids=[message_id] if message_id else [])
        if message_id:
            return self._by_id(reports, [message_id])[0]
        if not reports:
            raise NotFound("no status in the answer", provider=self.name, http_status=response.status_code)
        return reports[0]

    def build_statuses_request(self, message_ids: Sequence[str]) -> httpx.Request:
        """The lookup of up to :attr:`status_batch` ids at once (vendors that take several)."""
        self.unsupported("status lookups of several ids")

    def parse_statuses(self, response: httpx.Response, *, message_ids: Sequence[str]) -> list[DeliveryReport]:
        """The reports the answer to a lookup of ``message_ids`` holds, in any order: the base
        matches them to the ids and reads an id none of them names as ``UNKNOWN`` (:meth:`_by_id`)."""
        self.unsupported("status lookups of several ids")

    def _by_id(self, reports: Sequence[DeliveryReport], message_ids: Sequence[str]) -> list[DeliveryReport]:
        """One report per id, in order; an id the answer leaves out reads ``UNKNOWN`` with a ``NotFound`` reason."""
        found = {report.message_id: report for report in reports}
        return [
            found.get(i) or DeliveryReport(self.name, i, DeliveryStatus.UNKNOWN, None, error=LEFT_OUT)
            for i in message_ids
        ]

    def status_flow(self, message_id: str) -> Flow[DeliveryReport]:
        """The status of ``message_id`` (read-only: retried freely)."""
        if self.status_batch > 1:
            return (yield from self.statuses_flow([message_id]))[0]
        self._check_ids([message_id])
        request = self.build_status_request(message_id)
        parse = functools.partial(self.parse_status, message_id=message_id)
        return (yield from self.exchange(Step(request, parse, repeat=Repeat.READ)))

    def statuses_flow(self, message_ids: Sequence[str]) -> Flow[list[DeliveryReport]]:
        """The statuses of ``message_ids``, in order: :attr:`status_batch` ids a lookup, or one by one.

        Every id is checked before the first request (no ids: no request, no reports); each lookup
        is read-only (retried freely).
        """
        if isinstance(message_ids, str):
            self.invalid("message_ids is one string: pass a list of ids (or use get_status)", field="message_ids")
        ids, size = list(message_ids), self.status_batch
        self._check_ids(ids)
        reports: list[DeliveryReport] = []
        for batch in (ids[start : start + size] for start in range(0, len(ids), size)):
            if size == 1:
                reports.append((yield from self.status_flow(batch[0])))
                continue
            parse = functools.partial(self.parse_statuses, message_ids=batch)
            step = Step(self.build_statuses_request(batch), parse, repeat=Repeat.READ)
            reports += self._by_id((yield from self.exchange(step)), batch)
        return reports

    def _check_ids(self, ids: Sequence[object]) -> None:
        if not all(isinstance(i, str) and i.strip() for i in ids):
            self.invalid("message_id is empty", field="message_id")

    # -- delivery-report callbacks (the template; see ``_webhook``) -------------------------------

    webhook_check: CallbackAuth | None = None
    """How the vendor proves it sent a callback (a strategy of ``_webhook``); ``None``: no webhooks."""
    webhook_format: ClassVar[WebhookFormat] = "json"
    """How a callback's body is decoded: ``"json"``, ``"form"``, or ``"query"`` (the query's fields and a form body)."""
    webhook_fields: ReportFields | Shapes | None = None
    """Where each part of a report is in one event (read by :meth:`webhook_report`)."""
    webhook_secret: str | None = None
    """The secret callbacks are checked with (shared secret, key, HMAC key); ``None`` checks nothing."""
    webhook_url: str | None = None
    """The URL the vendor posts callbacks to, when configured (signed-URL vendors check against it)."""

    @_guarded
    def parse_webhook(
        self,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> list[DeliveryReport]:
        """A delivery-report callback → its reports (one request may carry several).

        Authenticated by :attr:`webhook_check` (``WebhookAuthError`` when the proof is missing or
        wrong), decoded as :attr:`webhook_format`, then each of :meth:`webhook_events` read by
        :meth:`webhook_report`. A payload that cannot be read raises ``ValidationError``.

        Args:
            body: the request body, as received.
            headers: the request headers (names matched case-insensitively).
            query: the query items of the URL the vendor called.
            url: the full URL the vendor called, for vendors that sign it (Twilio); defaults to
                ``webhook_url`` with ``query`` appended.
        """
        if self.webhook_check is None:
            self.unsupported("delivery-report webhooks")
        callback = Callback(self, body, headers, query, url)
        self.webhook_check.verify(self, callback)
        reports: list[DeliveryReport] = []
        unnamed: ValidationError | None = None  # an event naming no message id: skipped beside others
        for event in self.webhook_events(callback.payload, callback):
            try:
                reports.append(self.webhook_report(event, callback))
            except ValidationError as exc:
                if exc.field != UNNAMED_EVENT:
                    raise
                unnamed = exc
        if unnamed is not None and not reports:
            raise unnamed
        if unnamed is not None:
            logger.warning("%s: a callback event names no message id; its other events were read", self.name)
        return reports

    webhook_event_type: ClassVar[tuple[str, str] | None] = None
    """``(field, value)`` of a vendor that sends several kinds of event to one webhook: only events
    whose ``field`` holds ``value`` carry a delivery report (Mobizon's ``eventType``
    ``sms-delivery-report``); the others are skipped. ``None``: every event does."""

    def webhook_events(self, payload: Any, callback: Callback) -> list[Mapping[str, Any]]:
        """The events a decoded callback holds: by default the payload's object, or each of its list,
        keeping those of :attr:`webhook_event_type`."""
        events = payload if isinstance(payload, list) else [payload]
        if not events or not all(isinstance(event, Mapping) for event in events):
            raise ValidationError(
                f"the {self.display_name} callback holds no status event", provider=self.name, field="webhook"
            )
        kind = self.webhook_event_type
        return events if kind is None else [event for event in events if event.get(kind[0]) == kind[1]]

    def webhook_report(self, event: Mapping[str, Any], callback: Callback) -> DeliveryReport:
        """One event as a report: by default through :attr:`webhook_fields`."""
        if self.webhook_fields is None:
            self.unsupported("delivery-report webhooks")
        return self.webhook_fields.report(self, event)

    # -- reading answers (shared by every adapter) --------------------------------------------

    def read_json(self, response: httpx.Response, *, allow_empty: bool = False) -> Any:
        """The decoded JSON body; a typed error for empty, HTML or truncated bodies.

        A non-2xx answer whose body is not JSON raises the HTTP-status fallback; a 2xx answer
        that cannot be read (or is empty, unless ``allow_empty``) raises :class:`TransportError`
        with ``accepted=None`` (the vendor may have taken the message). An empty body decodes
        to an empty mapping.
        """
        try:
            content = response.content
        except httpx.HTTPError as exc:  # pragma: no cover - streamed bodies only
            raise TransportError("could not read the answer", provider=self.name, accepted=None) from exc
        if not content or content.isspace():
            if response.is_success and not allow_empty:
                raise TransportError(
                    f"the answer is empty (HTTP {response.status_code})",
                    provider=self.name,
                    http_status=response.status_code,
                    accepted=None,
                    retryable=False,
                    request_id=self.request_id(response),
                )
            return _EMPTY
        try:
            return json.loads(content)
        except (ValueError, UnicodeDecodeError) as exc:
            if not response.is_success:
                raise self.http_error(response, raw=_snippet(content)) from exc
            raise TransportError(
                f"the answer is not valid JSON ({response.headers.get('content-type', 'no content type')}, "
                f"{len(content)} bytes)",
                provider=self.name,
                http_status=response.status_code,
                raw=_snippet(content),
                accepted=None,
                retryable=False,
                request_id=self.request_id(response),
            ) from exc

    def objects(self, value: object, response: httpx.Response | None, what: str) -> list[dict[str, Any]]:
        """``value`` as a list of JSON objects (``[]`` for a missing or empty one); any other shape
        is the typed :meth:`shape_error`, not a ``KeyError`` or ``AttributeError`` further on."""
        if value is None or value == "" or value == [] or value == {}:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.shape_error(response, f"expected {what} to be a list of objects, got {type(value).__name__}")
        return value

    def shape_error(self, response: httpx.Response | None, detail: str, *, raw: object = None) -> TransportError:
        """The typed error for an answer whose shape the adapter cannot read (what the parse guard
        raises for an unexpected exception): the vendor may have taken a message it answered 2xx to.
        ``raw``, the decoded body, is kept (secrets removed) for the vendor's support."""
        status = response.status_code if response is not None else None
        return TransportError(
            f"unexpected answer shape ({_redact.scrub(detail, self._masks())})",
            provider=self.name,
            http_status=status,
            raw=_redact.scrub(raw, self._secrets()),
            accepted=None if status is not None and 200 <= status < 300 else False,
            retryable=False,
            request_id=None if response is None else self.request_id(response),
        )

    def request_id(self, response: httpx.Response) -> str | None:
        """The vendor's id of this request (``request_id_header``), for its support; ``None`` when absent."""
        value = response.headers.get(self.request_id_header) if self.request_id_header else None
        return value[:200] if value else None

    def http_error(
        self, response: httpx.Response, *, raw: object | None = None, message: str | None = None
    ) -> OmnisendError:
        """The typed error for a non-2xx answer that carries no vendor code."""
        status = response.status_code
        cls, accepted = http_fallback(status)
        kwargs: dict[str, Any] = {
            "provider": self.name,
            "http_status": status,
            "raw": _redact.scrub(raw, self._secrets()),
            "accepted": accepted,
        }
        if issubclass(cls, ProviderError):
            kwargs["retry_after"] = retry_after(response)
        kwargs["request_id"] = self.request_id(response)
        text = message or f"HTTP {status} {response.reason_phrase}".strip()
        return cls(text, **kwargs)

    def vendor_error(
        self,
        code: object,
        *,
        response: httpx.Response | None = None,
        vendor_message: object = None,
        raw: object = None,
        table: ErrorTable | None = None,
        **extra: Any,
    ) -> ProviderError:
        """The typed error for a vendor code, with the vendor's words and body kept (secrets removed)."""
        secrets = self._secrets()
        text = _redact.scrub(str(vendor_message), secrets) if vendor_message not in (None, "") else None
        table = table or self.errors
        fallback: type[ProviderError] | None = None
        at_least: type[ProviderError] | None = None
        if response is not None:
            status = response.status_code
            extra.setdefault("http_status", status)
            extra.setdefault("request_id", self.request_id(response))
            if status == 429 or "retry-after" in response.headers:
                hint = retry_after(response)
                if hint is not None:
                    extra.setdefault("retry_after", hint)
            if status >= 400 and table.lookup(code) is None:
                # A code the table does not know: the HTTP status says at least this much.
                cls, accepted = http_fallback(status)
                if issubclass(cls, ProviderError):
                    fallback = cls
                    extra.setdefault("accepted", accepted)
            if status == 429:
                at_least = RateLimited  # any HTTP 429 is throttling, whatever code the body holds
        return table.error(
            code,
            fallback=fallback,
            at_least=at_least,
            provider=self.name,
            vendor_message=text,
            raw=_redact.scrub(raw, secrets),
            **extra,
        )

    def build_report(
        self,
        *,
        message_id: object,
        vendor_status: object,
        recipient: object = None,
        idempotency_key: object = None,
        timestamp: datetime | None = None,
        error_code: Code | None = None,
        error_message: str | None = None,
        error_table: ErrorTable | None = None,
        event_id: object = None,
        raw: object = None,
    ) -> DeliveryReport:
        """A :class:`DeliveryReport` built through the status table (and, for a reason code, the error table)."""
        status = self.statuses.normalize(vendor_status)
        error = self.statuses.report_error(vendor_status, code=error_code, message=error_message)
        if error_code is not None and error_table is not None:
            row = error_table.lookup(error_code)
            if row is not None:
                error = ReportError(row.exc.__name__, error_code, error_message or row.meaning)
        elif error is None and error_code is not None and status in _FAILURES:
            cls = DeliveryFailed if status in _NOT_DELIVERED else ProviderError
            error = ReportError(cls.__name__, error_code, error_message)
        return DeliveryReport(
            provider=self.name,
            message_id=as_text(message_id),
            status=status,
            vendor_status=_kept(vendor_status),
            recipient=as_text(recipient),
            idempotency_key=as_text(idempotency_key),
            error=error,
            timestamp=timestamp,
            event_id=as_text(event_id),
            raw=_redact.scrub(raw, self._secrets()),
        )


# A provider declaring no settings takes base_url only (the signature ``inspect`` shows).
_settings.describe(Provider.__init__, {"base_url": _settings.IMPLICIT_BASE_URL})
# The shared parse_response is guarded as an adapter's own one is (``__init_subclass__`` sees only subclasses).
setattr(Provider, "parse_response", _guard("parse_response", Provider.parse_response))  # noqa: B010
Provider.parse_response.__omnisend_guarded__ = True  # type: ignore[attr-defined]

_FAILURES: Final = frozenset(
    {DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.REJECTED, DeliveryStatus.EXPIRED}
)
#: Failures after the vendor took the message: a reason code no table knows is a ``DeliveryFailed``.
_NOT_DELIVERED: Final = frozenset({DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.EXPIRED})


class _Empty(dict[str, Any]):
    """The decoded form of an empty body: an empty mapping that is falsy and says what it is."""

    def __repr__(self) -> str:
        return "<empty body>"


_EMPTY: Final = _Empty()


def _snippet(content: bytes, limit: int = 2048) -> str:
    """The start of a non-JSON body, for ``error.raw`` (HTML pages, truncated JSON)."""
    text = content[:limit].decode("utf-8", "replace")
    return text + ("…" if len(content) > limit else "")


def http_fallback(status: int) -> tuple[type[OmnisendError], bool | None]:
    """The class of an HTTP error status that carries no code the tables know, and whether the
    vendor may have taken the message: ``HTTP_FALLBACKS``, else any 5xx is ``ServiceUnavailable``
    (may have landed), any 4xx a ``ProviderError`` (refused), anything else a ``TransportError``."""
    if status in HTTP_FALLBACKS:
        return HTTP_FALLBACKS[status]
    if status >= 500:
        return ServiceUnavailable, None
    return (ProviderError, False) if status >= 400 else (TransportError, None)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from ``Retry-After-Ms`` or ``Retry-After`` (seconds or HTTP date)."""
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        seconds = parse_retry_after(millis)
        if seconds is not None:
            return seconds / 1000
    return parse_retry_after(response.headers.get("retry-after"))


def utc_from_timestamp(value: object, *, millis: bool = False) -> datetime | None:
    """A UTC datetime from a unix timestamp (seconds or milliseconds); ``None`` when unusable."""
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    if millis:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def utc_reader(*formats: str, zone: tzinfo = timezone.utc) -> Callable[[object], datetime | None]:
    """:func:`utc_from_text` with its formats and zone bound: one function of the value, as
    ``ReportFields(time=...)`` takes (``utc_reader("%Y-%m-%dT%H:%M:%S%z")``); a ``partial``, so a
    provider holding one pickles."""
    return functools.partial(_utc_read, formats, zone)


def _utc_read(formats: tuple[str, ...], zone: tzinfo, value: object) -> datetime | None:
    return utc_from_text(value, *formats, zone=zone)


def utc_from_text(value: object, *formats: str, zone: tzinfo = timezone.utc) -> datetime | None:
    """A UTC datetime from text in the first of ``formats`` that reads it, a zoneless one taken in
    ``zone`` (the account's time zone, for vendors that send local times); ``None`` when none does."""
    for fmt in formats:
        try:
            moment = datetime.strptime(str(value), fmt)
        except ValueError:
            continue
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(timezone.utc)
    return None
