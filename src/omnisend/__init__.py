"""omnisend: send SMS, WhatsApp and Viber messages through many vendors behind one client.

Every vendor answer becomes one typed exception tree; retries are safe and never send twice.

The exceptions are imported with the package; the clients, models and retry policy on first
use (``from omnisend import Client`` or ``omnisend.Message``), so ``import omnisend`` stays
light — a program that only catches omnisend's errors never loads pydantic or asyncio.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._version import __version__
from .errors import (
    AuthError,
    ClientClosed,
    ConfigurationError,
    DeliveryFailed,
    DeliveryUnknown,
    DuplicateMessage,
    InsufficientBalance,
    InvalidRecipient,
    NotFound,
    OmnisendError,
    PartialFailure,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    TemplateError,
    TransportError,
    Unsupported,
    ValidationError,
    WebhookAuthError,
)

if _typing.TYPE_CHECKING:
    from ._bulk import SendOutcome
    from ._text import Segments, sms_segments
    from ._url import from_env, from_url
    from .client import NOT_GIVEN, AsyncClient, Client, NotGiven
    from .models import (
        DeliveryReport,
        DeliveryStatus,
        Media,
        Message,
        RecipientResult,
        ReportError,
        SendResult,
        Template,
    )
    from .retry import RetryPolicy
    from .routing import Breaker, BreakerStore, ByCountry, Failover, RoundRobin, Route

__all__ = [
    "AsyncClient",
    "AuthError",
    "Breaker",
    "BreakerStore",
    "ByCountry",
    "Client",
    "ClientClosed",
    "ConfigurationError",
    "DeliveryFailed",
    "DeliveryReport",
    "DeliveryStatus",
    "DeliveryUnknown",
    "DuplicateMessage",
    "Failover",
    "InsufficientBalance",
    "InvalidRecipient",
    "Media",
    "Message",
    "NOT_GIVEN",
    "NotFound",
    "NotGiven",
    "OmnisendError",
    "PartialFailure",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "RecipientResult",
    "ReportError",
    "RetryPolicy",
    "RoundRobin",
    "Route",
    "Segments",
    "SendOutcome",
    "SendResult",
    "ServiceUnavailable",
    "Template",
    "TemplateError",
    "TransportError",
    "Unsupported",
    "ValidationError",
    "WebhookAuthError",
    "__version__",
    "from_env",
    "from_url",
    "sms_segments",
]

#: Public names loaded on first use → the module that defines them.
_LAZY: _typing.Final = {
    "AsyncClient": ".client",
    "Client": ".client",
    "NOT_GIVEN": ".client",
    "NotGiven": ".client",
    "DeliveryReport": ".models",
    "DeliveryStatus": ".models",
    "Media": ".models",
    "Message": ".models",
    "RecipientResult": ".models",
    "ReportError": ".models",
    "SendResult": ".models",
    "Template": ".models",
    "RetryPolicy": ".retry",
    "SendOutcome": "._bulk",
    "Segments": "._text",
    "sms_segments": "._text",
    "Breaker": ".routing",
    "BreakerStore": ".routing",
    "ByCountry": ".routing",
    "Failover": ".routing",
    "RoundRobin": ".routing",
    "Route": ".routing",
    "from_url": "._url",
    "from_env": "._url",
}


def _public(obj: _typing.Any) -> None:
    """Show ``omnisend.AuthError``, not ``omnisend.errors.AuthError``, in tracebacks and reprs."""
    if getattr(obj, "__module__", "").startswith("omnisend."):
        try:
            obj.__module__ = "omnisend"
        except (AttributeError, TypeError):  # pragma: no cover
            pass


def __getattr__(name: str) -> _typing.Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _importlib.import_module(module_name, __name__)
    for public, where in _LAZY.items():  # everything the module provides, at once
        if where == module_name:
            value = getattr(module, public)
            _public(value)
            globals()[public] = value
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


for _name in __all__:
    if _name not in _LAZY and not _name.startswith("__"):
        _public(globals()[_name])
del _name
