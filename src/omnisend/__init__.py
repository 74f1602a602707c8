"""omnisend: send SMS, WhatsApp and Viber messages through many vendors behind one client.

Every vendor answer becomes one typed exception tree; retries are safe and never send twice.
"""

from __future__ import annotations

from ._version import __version__
from .client import AsyncClient, Client
from .errors import (
    AuthError,
    ConfigurationError,
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
    ValidationError,
    WebhookAuthError,
)
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

__all__ = [
    "AsyncClient",
    "AuthError",
    "Client",
    "ConfigurationError",
    "DeliveryReport",
    "DeliveryStatus",
    "DeliveryUnknown",
    "DuplicateMessage",
    "InsufficientBalance",
    "InvalidRecipient",
    "Media",
    "Message",
    "NotFound",
    "OmnisendError",
    "PartialFailure",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "RecipientResult",
    "ReportError",
    "RetryPolicy",
    "SendResult",
    "ServiceUnavailable",
    "Template",
    "TemplateError",
    "TransportError",
    "ValidationError",
    "WebhookAuthError",
    "__version__",
]

# Show `omnisend.AuthError`, not `omnisend.errors.AuthError`, in tracebacks and reprs.
for _name in __all__:
    if not _name.startswith("__"):
        _obj = globals()[_name]
        if getattr(_obj, "__module__", "").startswith("omnisend."):
            try:
                _obj.__module__ = "omnisend"
            except (AttributeError, TypeError):  # pragma: no cover
                pass
del _name, _obj
