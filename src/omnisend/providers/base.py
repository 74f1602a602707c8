"""The provider contract: sans-I/O adapters made mostly of tables.

An adapter never sends, sleeps or retries. It turns a :class:`~omnisend.Message` into one or
more :class:`Step` objects (an ``httpx.Request`` plus the pure function that reads its answer)
and turns answers into results or typed errors. :class:`~omnisend.Client` and
:class:`~omnisend.AsyncClient` drive the same steps, so one adapter serves both.

Vendor knowledge lives in two tables per vendor:

* :class:`ErrorTable` — vendor code → :class:`ErrorCode` (exception class + the vendor's words);
  retryability follows from the class unless the vendor says otherwise for that code.
* :class:`StatusTable` — vendor delivery status → :class:`~omnisend.DeliveryStatus`.

What every vendor shares is written once here: the HTTP-status fallbacks (401/403, 402, 404,
408, 429 + ``Retry-After``, 5xx), bodies that are empty, HTML or truncated, and a guard around
every ``parse_*``/``_parse_*`` method that turns any unexpected answer shape into a typed error
instead of ``KeyError``/``TypeError`` and masks a credential the answer echoes (an error page
quoting the key) in the error or the result's ``raw``.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import json
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Final, Generic, NoReturn, TypeVar
from urllib.parse import quote_plus, urlsplit

import httpx

from .. import _redact
from .._inputs import derive_id, owned_option, recipient_ids
from .._version import __version__
from ..errors import (
    AuthError,
    ConfigurationError,
    DeliveryFailed,
    DuplicateMessage,
    InsufficientBalance,
    InvalidRecipient,
    NotFound,
    OmnisendError,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    Unsupported,
    ValidationError,
)
from ..models import DeliveryReport, DeliveryStatus, Message, RecipientResult, ReportError, SendResult
from ..retry import parse_retry_after

__all__ = [
    "ErrorCode",
    "ErrorTable",
    "Flow",
    "HTTP_FALLBACKS",
    "Provider",
    "StatusEntry",
    "StatusTable",
    "Step",
]

R = TypeVar("R")
Code = str | int

USER_AGENT: Final = f"omnisend/{__version__} (+python; httpx)"


# -- tables ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of a code table: what a vendor code means and which exception it raises."""

    exc: type[ProviderError]
    """The exception class raised for this code."""
    meaning: str
    """The vendor's own description."""
    retryable: bool | None = None
    """Per-code override, only where the vendor says so; ``None`` follows the class."""
    ambiguous: bool = False
    """The vendor may have taken the message although it answered with this code."""
    retry_after: float | None = None
    """A wait the vendor documents for this code (seconds), used by ``RateLimited``."""
    hint: str | None = None
    """What to check when the fix is known; added to the error's message after the vendor's words."""

    @property
    def is_retryable(self) -> bool:
        return self.exc.default_retryable if self.retryable is None else self.retryable


def _code_key(code: object) -> Code | None:
    """Canonical lookup key: numbers that arrive as strings (``"103"``) find the row ``103``."""
    if isinstance(code, bool) or code is None:
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, float) and code.is_integer():
        return int(code)
    text = str(code).strip()
    if text.lstrip("-").isdigit() and len(text) < 19:
        return int(text)
    return text


class ErrorTable(Mapping[Code, ErrorCode]):
    """A vendor's code table: a read-only mapping with :meth:`error` to build the typed error.

    Args:
        rows: vendor code → :class:`ErrorCode`.
        fallback: the class for a code that is not in the table (forward compatibility).
        case_insensitive: match string codes regardless of case.
    """

    def __init__(
        self,
        rows: Mapping[Code, ErrorCode],
        *,
        fallback: type[ProviderError] = ProviderError,
        case_insensitive: bool = False,
    ) -> None:
        self._rows = dict(rows)
        self._case_insensitive = case_insensitive
        self._index: dict[Code, ErrorCode] = {}
        for code, row in rows.items():
            key = _code_key(code)
            if key is None:
                raise TypeError(f"bad code {code!r} in an error table")
            if case_insensitive and isinstance(key, str):
                key = key.lower()
            self._index[key] = row
        self.fallback = fallback

    def __getitem__(self, code: Code) -> ErrorCode:
        return self._rows[code]

    def __iter__(self) -> Iterator[Code]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, code: object) -> ErrorCode | None:
        """The row for ``code``, however the vendor spelled the number; ``None`` if unknown."""
        if type(code) is str:  # spelled as the row's own key (a hit implies no padding, no digits)
            row = self._index.get(code.lower() if self._case_insensitive else code)
            if row is not None:
                return row
        key = _code_key(code)
        if key is None:
            return None
        if self._case_insensitive and isinstance(key, str):
            key = key.lower()
        return self._index.get(key)

    def error(
        self,
        code: object,
        *,
        fallback: type[ProviderError] | None = None,
        at_least: type[ProviderError] | None = None,
        **kwargs: Any,
    ) -> ProviderError:
        """Build (not raise) the typed error for ``code``.

        Args:
            code: the vendor's code, however spelled.
            fallback: the class for a code not in the table (default: the table's own fallback).
            at_least: a class the error must be an instance of (e.g. ``RateLimited`` for any HTTP
                429): a row of another class keeps its code and words but takes this class.
        """
        row = self.lookup(code)
        kept: Code | None = code if isinstance(code, (str, int)) and not isinstance(code, bool) else None
        if kept is None and code is not None:
            kept = str(code)
        if row is None:
            return (fallback or self.fallback)(code=kept, **kwargs)
        if at_least is not None and not issubclass(row.exc, at_least):
            kwargs.setdefault("vendor_message", row.meaning)
            return at_least(code=kept, **kwargs)
        if row.ambiguous:
            kwargs.setdefault("accepted", None)
        if row.retryable is not None:
            kwargs.setdefault("retryable", row.retryable)
        if not kwargs.get("vendor_message"):
            kwargs["vendor_message"] = row.meaning
        if row.retry_after is not None:
            kwargs.setdefault("retry_after", row.retry_after)
        if row.hint and not kwargs.get("message"):
            kwargs["message"] = f"{str(kwargs['vendor_message']).rstrip('. ')}; {row.hint}"
        return row.exc(code=kept, **kwargs)


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One row of a status table."""

    status: DeliveryStatus
    meaning: str
    error: type[ProviderError] | None = None
    """For failure statuses: the exception class the reason corresponds to."""


class StatusTable(Mapping[Code, StatusEntry]):
    """A vendor's delivery-status table; unknown values normalise to ``UNKNOWN``, never ``KeyError``.

    Args:
        rows: vendor status → :class:`StatusEntry`.
        case_insensitive: match string statuses regardless of case.
        families: name prefix → entry, for a vendor that documents families of names and adds new
            members over time (``WHATSAPP_TEMPLATE_...``): a name no row holds takes the entry of
            the longest prefix it starts with, so a new failure still reads as a failure.
    """

    def __init__(
        self,
        rows: Mapping[Code, StatusEntry],
        *,
        case_insensitive: bool = False,
        families: Mapping[str, StatusEntry] | None = None,
    ) -> None:
        self._rows = dict(rows)
        self._case_insensitive = case_insensitive
        self.families: Mapping[str, StatusEntry] = dict(families or {})
        self._families = sorted(
            ((p.lower() if case_insensitive else p, e) for p, e in self.families.items()), key=lambda f: -len(f[0])
        )
        self._index: dict[Code, StatusEntry] = {}
        for code, row in rows.items():
            key = _code_key(code)
            if key is None:
                raise TypeError(f"bad status {code!r} in a status table")
            self._index[key.lower() if case_insensitive and isinstance(key, str) else key] = row

    def __getitem__(self, code: Code) -> StatusEntry:
        return self._rows[code]

    def __iter__(self) -> Iterator[Code]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, value: object) -> StatusEntry | None:
        if type(value) is str:  # spelled as the row's own key (a hit implies no padding, no digits)
            row = self._index.get(value.lower() if self._case_insensitive else value)
            if row is not None:
                return row
        key = _code_key(value)
        if key is None:
            return None
        if self._case_insensitive and isinstance(key, str):
            key = key.lower()
        row = self._index.get(key)
        if row is None and isinstance(key, str):
            row = next((entry for prefix, entry in self._families if key.startswith(prefix)), None)
        return row

    def normalize(self, value: object) -> DeliveryStatus:
        """The :class:`DeliveryStatus` for a vendor value; ``UNKNOWN`` when not in the table."""
        row = self.lookup(value)
        return row.status if row is not None else DeliveryStatus.UNKNOWN

    def report_error(
        self, value: object, *, code: Code | None = None, message: str | None = None
    ) -> ReportError | None:
        """The failure reason for a failure status (``None`` for non-failures)."""
        row = self.lookup(value)
        if row is None or row.error is None:
            return None
        return ReportError(row.error.__name__, code if code is not None else _kept(value), message or row.meaning)


def _kept(value: object) -> Code | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, (str, int)) else str(value)


#: HTTP status → (exception class, whether the vendor may have taken the message).
#: Used only when the body carries no vendor code of its own.
HTTP_FALLBACKS: Final[Mapping[int, tuple[type[OmnisendError], bool | None]]] = {
    400: (ValidationError, False),
    401: (AuthError, False),
    402: (InsufficientBalance, False),
    403: (PermissionDenied, False),
    404: (NotFound, False),
    405: (ValidationError, False),
    408: (ServiceUnavailable, None),
    409: (DuplicateMessage, False),
    413: (ValidationError, False),
    415: (ValidationError, False),
    422: (ValidationError, False),
    429: (RateLimited, False),
    500: (ServiceUnavailable, None),
    502: (ServiceUnavailable, None),
    503: (ServiceUnavailable, False),
    504: (ServiceUnavailable, None),
}


# -- the sans-I/O step contract -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step(Generic[R]):
    """One HTTP exchange of a flow: the request, and the pure function that reads its answer.

    The client sends ``request`` (again, unchanged, on each retry) and hands the response to
    ``parse``. ``idempotent`` says whether sending it twice is harmless (the vendor
    de-duplicates on our key, or the call only reads). ``on_duplicate`` builds the result when
    the vendor answers "already seen" to a repeated attempt: the first attempt landed.
    """

    request: httpx.Request
    parse: Callable[[httpx.Response], R]
    idempotent: bool = False
    read_only: bool = False
    on_duplicate: Callable[[DuplicateMessage], R] | None = None
    delay: float = 0.0
    """Seconds the client waits before sending this step (vendor pacing such as "poll at most
    once a second"); it uses the retry policy's ``sleep``, so tests do not really wait."""
    provider: str | None = None
    """The provider that makes this request, when it is not the client's own (a router's route):
    errors the client builds for it (a refused connection, a timeout) name that provider."""


#: A flow yields steps, receives each step's parsed value (or the step's error, thrown in),
#: and returns the final value.
Flow = Generator[Step[Any], Any, R]


# -- the provider base class ---------------------------------------------------------------

_GUARDED: Final = ("parse_response", "parse_status", "parse_webhook")


class WebhookHeaders(Mapping[str, str]):
    """Webhook request headers with case-insensitive names (any text value, unlike ``httpx.Headers``)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._items = {str(k).lower(): (str(k), str(v)) for k, v in dict(headers).items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __repr__(self) -> str:
        return f"WebhookHeaders({dict(self)!r})"


_STRICT: Final = contextvars.ContextVar("omnisend_strict_adapters", default=False)


def strict() -> bool:
    """Whether adapter bugs re-raise (tests) instead of becoming typed errors (users).

    On inside :func:`omnisend.testing.strict_adapters` or with ``OMNISEND_STRICT_ADAPTERS=1``.
    """
    return _STRICT.get() or os.environ.get("OMNISEND_STRICT_ADAPTERS", "") not in ("", "0")


@contextlib.contextmanager
def strict_adapters() -> Iterator[None]:
    """Within this block (in this thread or task), an unexpected exception inside an adapter's
    ``parse_*`` methods or flows is raised as is, so a test fails on it, instead of becoming the
    typed error users get. Set ``OMNISEND_STRICT_ADAPTERS=1`` for the same everywhere."""
    token = _STRICT.set(True)
    try:
        yield
    finally:
        _STRICT.reset(token)


def _guard(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: Provider, *args: Any, **kwargs: Any) -> Any:
        if name == "parse_webhook" and not isinstance(kwargs.get("headers"), WebhookHeaders):
            # Header names are case-insensitive whatever mapping the web framework hands over.
            kwargs["headers"] = WebhookHeaders(kwargs.get("headers") or {})
        try:
            value = method(self, *args, **kwargs)
            secrets = self._masks()
            if args and isinstance(args[0], httpx.Response) and _free_of_secrets(args[0], secrets):
                return value  # nothing read from this answer can hold a secret: no walk needed
            return _scrub_value(value, secrets)
        except OmnisendError as exc:
            _scrub_error(exc, self._masks())
            raise
        except Exception as exc:
            if strict():
                raise
            response = args[0] if args and isinstance(args[0], httpx.Response) else kwargs.get("response")
            if name == "parse_webhook":
                raise ValidationError(
                    f"the webhook payload has an unexpected shape ({type(exc).__name__})",
                    provider=self.name,
                    field="webhook",
                ) from exc
            answer = response if isinstance(response, httpx.Response) else None
            raise self.shape_error(answer, f"{type(exc).__name__}: {exc}") from exc

    return guarded


def _guard_flow(method: Callable[..., Flow[R]]) -> Callable[..., Flow[R]]:
    """A vendor flow whose final value and escaping error are masked like a parse method's.

    A send flow first checks its message (:meth:`Provider.check_message`). An unexpected exception
    inside the flow (an adapter bug) becomes a :class:`TransportError` — ``accepted=False`` when no
    step was handed out yet, ``None`` after — unless :func:`strict` is on.
    """

    @functools.wraps(method)
    def guarded(self: Provider, *args: Any, **kwargs: Any) -> Flow[R]:
        stepped = False
        try:
            if method.__name__ == "send_flow":
                self.check_message(args[0] if args else kwargs.get("message"), kwargs.get("idempotency_key"))
            inner = method(self, *args, **kwargs)
            step = next(inner)
            while True:
                stepped = True
                try:
                    sent = yield step
                except GeneratorExit:
                    inner.close()
                    raise
                except BaseException as exc:  # noqa: BLE001 - the driver throws a step's error in: the flow decides
                    step = inner.throw(exc)
                else:
                    step = inner.send(sent)
        except StopIteration as stop:
            return _scrub_value(stop.value, self._masks())  # type: ignore[no-any-return]
        except OmnisendError as exc:
            _scrub_error(exc, self._masks())
            raise
        except Exception as exc:
            if strict():
                raise
            raise TransportError(
                f"internal error in the {self.name} adapter ({type(exc).__name__}: "
                f"{_redact.scrub(str(exc), self._masks())})"
                + ("; an earlier request of this send may have reached the vendor" if stepped else ""),
                provider=self.name,
                accepted=None if stepped else False,
                retryable=False,
            ) from exc

    return guarded


def _guard_build(method: Callable[..., httpx.Request]) -> Callable[..., httpx.Request]:
    """``build_request`` after :meth:`Provider.check_message`: bad input is refused the same way by every vendor."""

    @functools.wraps(method)
    def guarded(self: Provider, message: Message, *, idempotency_key: str) -> httpx.Request:
        self.check_message(message, idempotency_key)
        return method(self, message, idempotency_key=idempotency_key)

    return guarded


def _scrub_error(error: OmnisendError, secrets: tuple[str, ...]) -> None:
    """Mask credentials an answer echoed (an error page quoting the key, a code object) in ``error``."""
    if not any(secrets):
        return
    error.message = str(_redact.scrub(error.message, secrets))
    error.args = (error.message,)
    error.raw = _redact.scrub(error.raw, secrets)
    if error.vendor_message is not None:
        error.vendor_message = str(_redact.scrub(error.vendor_message, secrets))
    if isinstance(error.code, str):
        error.code = str(_redact.scrub(error.code, secrets))


def _free_of_secrets(response: httpx.Response, secrets: tuple[str, ...]) -> bool:
    """Whether no value decoded from ``response``'s body can contain one of ``secrets``.

    A body with no backslash (no JSON escape), no ``%`` (no URL escape) and no NUL byte (so not
    UTF-16/32 JSON) holds every string it decodes to verbatim as UTF-8 bytes; one bytes search
    per secret then settles it. Anything else is "don't know" (the caller walks the result).
    """
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return False
    if b"\\" in content or b"%" in content or b"\x00" in content:
        return False
    for secret in secrets:
        if secret and secret.encode() in content:
            return False
    return True


def _scrub_value(value: R, secrets: tuple[str, ...]) -> R:
    """Mask credentials an answer echoed in the ``raw`` of a parsed result (and its recipients' errors)."""
    secrets = tuple(secret for secret in secrets if secret)
    if not secrets:
        return value
    if isinstance(value, list):
        return [_scrub_value(item, secrets) for item in value]  # type: ignore[return-value]
    if isinstance(value, (SendResult, DeliveryReport)):
        for recipient in getattr(value, "recipients", ()):
            if recipient.error is not None:
                _scrub_error(recipient.error, secrets)
        if value.raw is not None and _echoes(value.raw, secrets):
            return dataclasses.replace(value, raw=_redact.scrub(value.raw, secrets))
    return value


def _echoes(value: object, secrets: tuple[str, ...]) -> bool:
    """Whether a decoded payload holds one of ``secrets`` anywhere (a cheap walk, nothing copied)."""
    if _redact.absent(value, secrets):  # one C-speed pass settles the common case
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            for secret in secrets:
                if secret in item:
                    return True
        elif isinstance(item, dict):
            stack += item.keys()
            stack += item.values()
        elif isinstance(item, (list, tuple)):
            stack += item
    return False


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
    webhook_auth: ClassVar[str] = "none"
    """How the vendor's delivery callbacks are authenticated (shown in the docs' feature matrix)."""
    owned_options: ClassVar[frozenset[str]] = frozenset()
    """Request fields omnisend sets itself — idempotency and de-duplication, recipients,
    authentication, the answer's format — as dotted paths (``"params.name"``). ``Message.options``
    may not set or replace them: :meth:`check_message` refuses such a message before any request."""
    keyed_recipients: ClassVar[bool] = False
    """Whether the vendor takes an id per recipient in one request (SMSAPI ``idx``): ``send_many``
    then batches messages that carry their own keys, each recipient keeping the id it would get
    if its message were sent alone (:meth:`recipient_ids`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
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

    def __init__(self, *, base_url: str | None = None) -> None:
        url = (base_url or self.default_base_url).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"{self.name}: base_url must be an http(s) URL, got {url!r}")
        self.base_url = url
        self._masked = _redact.spellings(self._secrets(), self._basic_pairs())
        _redact.register(self, self._masked)

    # -- credentials -------------------------------------------------------------------------

    @classmethod
    def _credential(cls, value: str | None, *, argument: str) -> str:
        """The credential from the argument or the environment; ``ConfigurationError`` if empty.

        A credential travels in a header or a URL, so it must be printable ASCII: anything else
        (a pasted non-breaking space, a newline inside, a wrong decoding) is refused here, once,
        rather than failing every send.
        """
        if value is None:
            value = os.environ.get(cls.credential_env) if cls.credential_env else None
        hint = f" or set {cls.credential_env}" if cls.credential_env else ""
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                f"{cls.name}: no {argument}. Pass {cls.__name__}({argument}=...){hint}.",
                provider=cls.name,
            )
        value = value.strip()
        if not (value.isascii() and value.isprintable()):
            raise ConfigurationError(
                f"{cls.name}: {argument} contains a non-ASCII or control character; "
                "copy it again from the vendor's panel",
                provider=cls.name,
            )
        return value

    @classmethod
    def _callback_secret(cls, value: str | None, *, argument: str = "webhook_secret") -> str | None:
        """A webhook secret or key: ``None`` (callbacks not authenticated) or a non-blank string.

        An empty or blank secret is a ``ConfigurationError``: treating it as "no secret" would
        accept forged callbacks from a configuration that meant to refuse them.
        """
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                f"{cls.name}: {argument} is empty; pass the secret, or leave it out (None) to accept "
                "unauthenticated callbacks",
                provider=cls.name,
            )
        return value

    def _secrets(self) -> tuple[str, ...]:
        """Credential values to keep out of errors, reprs and logs."""
        return ()

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
        Here: a key that is not printable text, and options that set a field omnisend owns
        (:attr:`owned_options`).
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

    #: For vendors that do not sign callbacks: the shared secret ``parse_webhook`` requires
    #: (``?token=`` in the callback URL, or the Basic-auth password); ``None`` checks nothing.
    webhook_secret: str | None = None
    webhook_secret_param: ClassVar[str] = "token"

    def check_webhook_secret(self, headers: Mapping[str, str] | None, query: Mapping[str, str] | None) -> None:
        """Refuse a callback without the configured shared secret (constant-time; no-op when ``None``)."""
        if self.webhook_secret is not None:
            from ..webhooks import verify_shared_secret

            verify_shared_secret(
                self.webhook_secret, headers=headers, query=query, param=self.webhook_secret_param, provider=self.name
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- building requests -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Request:
        """An ``httpx.Request`` to ``base_url + path`` with omnisend's User-Agent."""
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
                return _form_request(method, self.base_url + path, merged, _encode_form(data))
            if isinstance(params, dict) and {*map(type, params), *map(type, params.values())} <= _STR_ONLY:
                # A query that repeats on every call (Mobizon's key and format): the URL text is
                # built once per (URL, query) and parsed once (``_url``), not merged per request.
                return _form_request(method, _query_url(self.base_url + path, params), merged, _encode_form(data))
            merged["Content-Type"] = _FORM
            kwargs["content"] = _encode_form(kwargs.pop("data"))
        return httpx.Request(method, _url(self.base_url + path), headers=merged, **kwargs)

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

    def invalid(self, message: str, *, field: str | None = None) -> NoReturn:
        """Refuse a bad value before any request."""
        raise ValidationError(message, provider=self.name, field=field)

    def check_channel(self, message: Message) -> None:
        if message.channel not in self.channels:
            self.unsupported(f"the {message.channel!r} channel")

    @abc.abstractmethod
    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        """The send request for ``message`` (pure; raises ``ValidationError`` on bad input)."""

    @abc.abstractmethod
    def parse_response(
        self, response: httpx.Response, *, message: Message | None = None, idempotency_key: str | None = None
    ) -> SendResult:
        """A send answer → :class:`SendResult`, or the typed error raised."""

    def duplicate_result(self, error: DuplicateMessage, *, message: Message, idempotency_key: str) -> SendResult:
        """The result when the vendor says an earlier attempt with this key already landed."""
        return SendResult(
            provider=self.name,
            message_id=None,
            status=DeliveryStatus.QUEUED,
            recipients=tuple(RecipientResult(to, None, DeliveryStatus.QUEUED) for to in message.recipients),
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
            idempotent=self.deduplicates,
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
        caller can choose. The first chunk's error is raised (it would hit every chunk: auth,
        balance), unless it only rejects recipients; a later chunk's error becomes the error of
        each of its recipients (``UNKNOWN`` status when the vendor may have taken them), and the
        send goes on. When no recipient at all was accepted, the first error is raised.
        """
        numbers, size = message.recipients, self.max_recipients
        if len(numbers) <= size:
            result: SendResult = yield self.send_step(message, idempotency_key=idempotency_key)
            return result
        ids = self.recipient_ids(message, idempotency_key)
        starts = range(0, len(numbers), size)
        chunks = [message._part(list(numbers[i : i + size]), ids[i : i + size]) for i in starts]
        keys = [derive_id(idempotency_key, i + 1) if self.deduplicates else idempotency_key for i in starts]
        steps = [self.send_step(chunk, idempotency_key=key) for chunk, key in zip(chunks, keys, strict=True)]
        recipients: list[RecipientResult] = []
        raws: list[object] = []
        errors: list[OmnisendError] = []
        for index, (chunk, step) in enumerate(zip(chunks, steps, strict=True)):
            try:
                part: SendResult = yield step
            except OmnisendError as exc:
                if index == 0 and not isinstance(exc, InvalidRecipient):
                    raise
                errors.append(exc)
                status = DeliveryStatus.REJECTED if exc.accepted is False else DeliveryStatus.UNKNOWN
                recipients += [RecipientResult(to, None, status, exc) for to in chunk.recipients]
                raws.append(exc.raw)
                continue
            recipients += part.recipients
            raws.append(part.raw)
        first = next((r for r in recipients if r.ok), None)
        if first is None:
            raise errors[0]
        return SendResult(self.name, first.message_id, first.status, tuple(recipients), idempotency_key, raw=raws)

    # -- status and webhooks -----------------------------------------------------------------

    def build_status_request(self, message_id: str) -> httpx.Request:
        """The status-lookup request for ``message_id``."""
        self.unsupported("status lookups")

    def parse_status(self, response: httpx.Response, *, message_id: str | None = None) -> DeliveryReport:
        """A status-lookup answer → :class:`DeliveryReport`."""
        self.unsupported("status lookups")

    def status_flow(self, message_id: str) -> Flow[DeliveryReport]:
        if not isinstance(message_id, str) or not message_id.strip():
            self.invalid("message_id is empty", field="message_id")
        request = self.build_status_request(message_id)
        report: DeliveryReport = yield Step(
            request, functools.partial(self.parse_status, message_id=message_id), idempotent=True, read_only=True
        )
        return report

    def parse_webhook(
        self,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> list[DeliveryReport]:
        """A delivery-report callback → its reports (one request may carry several)."""
        self.unsupported("delivery-report webhooks")

    # -- reading answers (shared by every adapter) --------------------------------------------

    def webhook_text(self, body: bytes | str) -> str:
        """A callback body as text; ``ValidationError`` (before any parsing) when it is not UTF-8."""
        if isinstance(body, str):
            return body
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("the callback body is not UTF-8", provider=self.name, field="body") from exc

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
            ) from exc

    def read_object(
        self, response: httpx.Response, *, code: str = "code", message: tuple[str, ...] = ("message",)
    ) -> dict[str, Any]:
        """The JSON object of a 2xx answer; an error answer raised as its class.

        For vendors whose errors are a JSON object with a code field (``body[code]``) and a text
        (the first of ``message`` present): the code picks the class from the error table; a
        non-2xx answer without one falls back to its HTTP status.
        """
        body = self.read_json(response)
        if response.is_success and isinstance(body, dict):
            return body
        if not isinstance(body, dict):
            if not response.is_success:
                raise self.http_error(response, raw=body)
            raise self.shape_error(response, f"expected a JSON object, got {type(body).__name__}")
        text = next((str(body[k]) for k in message if body.get(k) not in (None, "")), None)
        if body.get(code) is None:
            raise self.http_error(response, raw=body, message=text)
        raise self.vendor_error(body[code], response=response, vendor_message=text, raw=body)

    def objects(self, value: object, response: httpx.Response | None, what: str) -> list[dict[str, Any]]:
        """``value`` as a list of JSON objects (``[]`` for a missing or empty one); any other shape
        is the typed :meth:`shape_error`, not a ``KeyError`` or ``AttributeError`` further on."""
        if value is None or value == "" or value == [] or value == {}:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.shape_error(response, f"expected {what} to be a list of objects, got {type(value).__name__}")
        return value

    def shape_error(self, response: httpx.Response | None, detail: str) -> TransportError:
        """The typed error for an answer whose shape the adapter cannot read (what the parse guard
        raises for an unexpected exception): the vendor may have taken a message it answered 2xx to."""
        status = response.status_code if response is not None else None
        return TransportError(
            f"unexpected answer shape ({_redact.scrub(detail, self._masks())})",
            provider=self.name,
            http_status=status,
            accepted=None if status is not None and 200 <= status < 300 else False,
            retryable=False,
        )

    def http_error(
        self, response: httpx.Response, *, raw: object | None = None, message: str | None = None
    ) -> OmnisendError:
        """The typed error for a non-2xx answer that carries no vendor code."""
        status = response.status_code
        cls, accepted = HTTP_FALLBACKS.get(status, (None, False))
        if cls is None:
            if status >= 500:
                cls, accepted = ServiceUnavailable, None
            elif status >= 400:
                cls = ProviderError
            else:
                cls, accepted = TransportError, None
        kwargs: dict[str, Any] = {
            "provider": self.name,
            "http_status": status,
            "raw": _redact.scrub(raw, self._secrets()),
            "accepted": accepted,
        }
        if issubclass(cls, ProviderError):
            kwargs["retry_after"] = retry_after(response)
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
            if status == 429 or "retry-after" in response.headers:
                hint = retry_after(response)
                if hint is not None:
                    extra.setdefault("retry_after", hint)
            if status >= 400 and table.lookup(code) is None:
                # A code the table does not know: the HTTP status says at least this much.
                cls, accepted = HTTP_FALLBACKS.get(status, (ProviderError, False))
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

    def report(
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
            message_id=_opt_str(message_id),
            status=status,
            vendor_status=_kept(vendor_status),
            recipient=_opt_str(recipient),
            idempotency_key=_opt_str(idempotency_key),
            error=error,
            timestamp=timestamp,
            event_id=_opt_str(event_id),
            raw=_redact.scrub(raw, self._secrets()),
        )


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


_URLS: dict[str, httpx.URL] = {}
_URLS_MAX: Final = 256


def _url(text: str) -> httpx.URL:
    """``httpx.URL(text)``, parsed once per distinct URL (parsing is a good part of building a request)."""
    url = _URLS.get(text)
    if url is None:
        url = httpx.URL(text)
        if len(_URLS) < _URLS_MAX:  # bounded: URLs that carry ids are parsed each time
            _URLS[text] = url
    return url


def _query_url(url: str, params: dict[str, str]) -> str:
    """``str(httpx.URL(url, params=params))`` for a URL without a query: what httpx sends for ``params=``."""
    key = (url, *params.items())
    text = _QUERY_URLS.get(key)
    if text is None:
        text = str(httpx.URL(url, params=params))
        if len(_QUERY_URLS) < _URLS_MAX:
            _QUERY_URLS[key] = text
    return text


_QUERY_URLS: dict[tuple[object, ...], str] = {}


_FORM: Final = "application/x-www-form-urlencoded"
_SET_BY_HTTPX: Final = frozenset({"host", "content-type", "content-length", "transfer-encoding"})


def _plain_form(data: dict[Any, Any], headers: Mapping[str, str]) -> bool:
    """Whether ``data`` is a flat str → str form, and ``headers`` leave the framing to us."""
    return {*map(type, data), *map(type, data.values())} <= _STR_ONLY and _SET_BY_HTTPX.isdisjoint(
        k.lower() for k in headers
    )


_STR_ONLY: Final = frozenset({str})
_FORM_ARGS: Final = frozenset({"data", "params"})


def _form_request(method: str, url: str, headers: dict[str, str], body: bytes) -> httpx.Request:
    """``httpx.Request(method, url, headers=headers, content=body)`` for a form, headers normalised once.

    The same request httpx builds (``Host`` first, the caller's headers, then the form's
    ``Content-Length`` and ``Content-Type``; ``.content`` readable). httpx normalises every
    header of every request, twice; here the framed headers are normalised once per distinct
    (URL, body length, headers) and copied for each request.
    """
    key = (url, len(body), *headers.items())
    frame = _FRAMES.get(key)
    parsed = _url(url)
    if frame is None:
        frame = httpx.Headers(
            [
                ("Host", parsed.netloc.decode("ascii")),
                *headers.items(),
                ("Content-Length", str(len(body))),
                ("Content-Type", _FORM),
            ]
        )
        if len(_FRAMES) < _FRAMES_MAX:  # bounded: a few hundred body lengths per endpoint
            _FRAMES[key] = frame
    request = httpx.Request(method, parsed, headers=frame, stream=httpx.ByteStream(body))  # copies ``frame``
    request.headers.encoding = frame.encoding  # worked out once per frame, not per request
    request.read()  # sets .content, as httpx does for a body given as bytes
    return request


_FRAMES: dict[tuple[object, ...], httpx.Headers] = {}
_FRAMES_MAX: Final = 2048


# ``quote_plus`` for ASCII text as one ``str.translate``: a space becomes ``+``, every character
# other than the unreserved ones (letters, digits, ``_.-~``) its ``%XX``.
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_TABLE: Final = tuple(
    "+" if code == 32 else chr(code) if chr(code) in _UNRESERVED else f"%{code:02X}" for code in range(128)
)  # a sequence indexed by code point: str.translate reads it faster than a dict


def _form_quote(text: str) -> str:
    """``quote_plus(text)``, byte for byte."""
    if text.isascii():
        return text if text.isalnum() else text.translate(_FORM_TABLE)
    return quote_plus(text)


def _encode_form(data: dict[str, str]) -> bytes:
    """``urlencode(data).encode()``, byte for byte (field names, a handful per vendor, encoded once)."""
    last = _FORM_LAST
    parts = []
    for key, value in data.items():
        seen = last.get(key)
        if seen is not None and seen[0] == value:
            parts.append(seen[1])  # a constant field (format=json): encoded once
            continue
        pair = f"{_form_quote(key)}={value if value.isalnum() and value.isascii() else _form_quote(value)}"
        if seen is not None or len(last) < _FORM_LAST_MAX:
            last[key] = (value, pair)
        parts.append(pair)
    return "&".join(parts).encode()


# Per field name, the last value encoded and its ``name=value`` text (field names are a handful
# per vendor; a value that repeats, as most do, is then encoded once).
_FORM_LAST: dict[str, tuple[str, str]] = {}
_FORM_LAST_MAX: Final = 1024


def _snippet(content: bytes, limit: int = 2048) -> str:
    """The start of a non-JSON body, for ``error.raw`` (HTML pages, truncated JSON)."""
    text = content[:limit].decode("utf-8", "replace")
    return text + ("…" if len(content) > limit else "")


def _opt_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


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
