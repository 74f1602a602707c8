"""The guard around every adapter's ``parse_*``/``_parse_*`` method and flow, and the secret scrubbing.

An unexpected answer shape becomes a typed error (``TransportError``, or ``ValidationError`` for a
webhook) instead of ``KeyError``/``TypeError``, and a credential an answer echoes is masked in the
error and the result's ``raw``. :func:`strict_adapters` turns the guard off for tests, so adapter
bugs fail them instead of hiding behind a typed error.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpx

from .. import _redact
from ..errors import (
    DeliveryUnknown,
    OmnisendError,
    TransportError,
    ValidationError,
)
from ..models import DeliveryReport, Message, SendResult
from ._steps import Flow

if TYPE_CHECKING:
    from .base import Provider

R = TypeVar("R")


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
            raise _scrubbed(exc, self._masks()) from exc.__cause__  # itself, or a masked copy
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
            raise _scrubbed(exc, self._masks()) from exc.__cause__  # itself, or a masked copy
        except Exception as exc:
            if strict():
                raise
            # After a request went out the message may be out: the caller must reconcile, not re-send.
            raise (DeliveryUnknown if stepped and method.__name__ == "send_flow" else TransportError)(
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


def _scrubbed(error: OmnisendError, secrets: tuple[str, ...]) -> OmnisendError:
    """``error`` with the credentials an answer echoed (an error page quoting the key) masked.

    ``error`` itself when it holds none; else a new error (a raised error is never changed).
    """
    if not any(secrets):
        return error
    fields = {
        "message": str(_redact.scrub(error.message, secrets)),
        "raw": _redact.scrub(error.raw, secrets),
        "vendor_message": None if error.vendor_message is None else str(_redact.scrub(error.vendor_message, secrets)),
        "code": str(_redact.scrub(error.code, secrets)) if isinstance(error.code, str) else error.code,
    }
    changed = {name: value for name, value in fields.items() if value != getattr(error, name)}
    return error.evolve(**changed) if changed else error


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
    if isinstance(value, SendResult):
        value = _scrub_recipients(value, secrets)  # type: ignore[assignment]
    if isinstance(value, (SendResult, DeliveryReport)):
        if value.raw is not None and _echoes(value.raw, secrets):
            return dataclasses.replace(value, raw=_redact.scrub(value.raw, secrets))
    return value


def _scrub_recipients(result: SendResult, secrets: tuple[str, ...]) -> SendResult:
    """``result`` with its recipients' errors masked (new errors, a new result), or itself when clean."""
    if all(r.error is None for r in result.recipients):
        return result
    recipients = tuple(
        r if r.error is None else dataclasses.replace(r, error=_scrubbed(r.error, secrets)) for r in result.recipients
    )
    if all(new.error is old.error for new, old in zip(recipients, result.recipients, strict=True)):
        return result
    return dataclasses.replace(result, recipients=recipients)


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
