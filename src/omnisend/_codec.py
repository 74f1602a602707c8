"""Typed errors and results as plain JSON data, and back.

Outcomes stored in Redis (``omnisend.celery``) must come back as the same typed objects a
``send()`` returns or raises, without unpickling anything another process wrote: a store anyone
on the network can write to must not be able to run code in the reader. So errors and results
are written as JSON and rebuilt from known classes only: an error's class is looked up by name
among omnisend's own exception classes (the nearest known ancestor when the exact one is not
there), never imported from a name found in the data.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from . import errors
from .errors import OmnisendError, PartialFailure
from .models import DeliveryStatus, RecipientResult, SendResult

__all__ = ["dumps", "error_from_data", "error_to_data", "loads", "result_from_data", "result_to_data"]

#: The attributes an error carries besides its class (``result`` and the cause are handled apart).
_ERROR_FIELDS = (
    "message",
    "provider",
    "code",
    "vendor_message",
    "http_status",
    "raw",
    "retryable",
    "accepted",
    "idempotency_key",
    "attempts",
    "request_id",
    "retry_after",
    "field",
)
#: How deep causes are followed (a cause's cause ...), to keep stored outcomes bounded.
_MAX_CAUSES = 3


def _json_safe(value: object) -> object:
    """``value`` if it survives a JSON round trip as itself, else its ``repr``."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def error_to_data(error: BaseException, *, _depth: int = 0) -> dict[str, Any]:
    """A JSON-ready description of ``error``: class (with its omnisend ancestors), fields, cause."""
    classes = [cls.__name__ for cls in type(error).__mro__ if getattr(errors, cls.__name__, None) is cls]
    data: dict[str, Any] = {"class": type(error).__name__, "classes": classes}
    if isinstance(error, OmnisendError):
        for name in _ERROR_FIELDS:
            if name in error.__dict__:
                data[name] = _json_safe(error.__dict__[name])
        if isinstance(error, PartialFailure) and error.result is not None:
            data["result"] = result_to_data(error.result)
    else:
        data["message"] = str(error)
    cause = error.__cause__
    if cause is not None and _depth < _MAX_CAUSES:
        data["cause"] = error_to_data(cause, _depth=_depth + 1)
    return data


class ForeignError(Exception):
    """Stands for an exception that is not omnisend's (a cause such as ``httpx.ReadTimeout``), rebuilt from data.

    ``type_name`` keeps the original class name; ``str()`` is the original text.
    """

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        super().__init__(message)

    def __repr__(self) -> str:
        return f"ForeignError({self.type_name!r}, {str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ForeignError, (self.type_name, str(self)))


def _error_class(data: Mapping[str, Any]) -> type[OmnisendError] | None:
    for name in data.get("classes") or [data.get("class")]:
        cls = getattr(errors, str(name), None)
        if isinstance(cls, type) and issubclass(cls, OmnisendError):
            return cls
    return None


def error_from_data(data: Mapping[str, Any]) -> BaseException:
    """The error :func:`error_to_data` described: an omnisend error of the same (or nearest) class."""
    cls = _error_class(data)
    error: BaseException
    if cls is None:
        error = ForeignError(str(data.get("class")), str(data.get("message", "")))
    else:
        error = cls.__new__(cls)
        OmnisendError.__init__(error)  # the class's defaults, so data from an older writer still builds
        if issubclass(cls, errors.ProviderError):
            error.__dict__["retry_after"] = None
        if issubclass(cls, errors.ValidationError):
            error.__dict__["field"] = None
        error.__dict__.update({name: data[name] for name in _ERROR_FIELDS if name in data})
        if issubclass(cls, PartialFailure):
            raw_result = data.get("result")
            error.__dict__["result"] = result_from_data(raw_result) if isinstance(raw_result, Mapping) else None
        error.args = (error.__dict__.get("message") or cls.summary,)
    cause = data.get("cause")
    if isinstance(cause, Mapping):
        error.__cause__ = error_from_data(cause)
    return error


def result_to_data(result: SendResult) -> dict[str, Any]:
    """A JSON-ready description of a :class:`SendResult` (recipients' and routes' errors included)."""
    data: dict[str, Any] = {}
    for item in dataclasses.fields(result):
        value = getattr(result, item.name)
        if item.name == "status":
            value = DeliveryStatus(value).value
        elif item.name == "recipients":
            value = [
                {
                    "to": r.to,
                    "message_id": r.message_id,
                    "status": DeliveryStatus(r.status).value,
                    "error": None if r.error is None else error_to_data(r.error),
                }
                for r in value
            ]
        elif item.name == "route_errors":
            value = [error_to_data(e) for e in value]
        elif isinstance(value, Mapping):
            value = _json_safe(dict(value))
        else:
            value = _json_safe(value)
        data[item.name] = value
    return data


def result_from_data(data: Mapping[str, Any]) -> SendResult:
    """The :class:`SendResult` :func:`result_to_data` described (unknown keys from newer data are ignored)."""
    known = {item.name for item in dataclasses.fields(SendResult)}
    values: dict[str, Any] = {name: value for name, value in data.items() if name in known}
    values["status"] = _status(values.get("status"))
    values["recipients"] = tuple(
        RecipientResult(
            to=r["to"],
            message_id=r.get("message_id"),
            status=_status(r.get("status")),
            error=None if r.get("error") is None else _omnisend_error(error_from_data(r["error"])),
        )
        for r in values.get("recipients") or ()
    )
    if "route_errors" in values:
        values["route_errors"] = tuple(_omnisend_error(error_from_data(e)) for e in values["route_errors"] or ())
    if "metadata" in values:
        values["metadata"] = dict(values["metadata"] or {})
    return SendResult(**values)


def _status(value: object) -> DeliveryStatus:
    try:
        return DeliveryStatus(value)
    except ValueError:
        return DeliveryStatus.UNKNOWN


def _omnisend_error(error: BaseException) -> OmnisendError:
    if isinstance(error, OmnisendError):
        return error
    wrapped = OmnisendError(str(error))
    wrapped.__cause__ = error
    return wrapped


def dumps(data: object) -> str:
    """Compact JSON (non-ASCII kept)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    return json.loads(text)
