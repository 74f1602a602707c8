"""Vendor adapters, one module each, and the registry of them.

``PROVIDERS`` maps a provider id to ``"module:Class"``; classes are imported on first use so
``import omnisend`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from .base import Answer, ErrorCode, ErrorTable, Provider, StatusEntry, StatusTable, Step

if TYPE_CHECKING:
    from .clickatell import Clickatell
    from .edna import Edna
    from .mobizon import Mobizon
    from .smsapi import Smsapi
    from .twilio import Twilio
    from .webex_connect import WebexConnect

__all__ = [
    "PROVIDERS",
    "Answer",
    "Clickatell",
    "Edna",
    "ErrorCode",
    "ErrorTable",
    "Mobizon",
    "Provider",
    "Smsapi",
    "StatusEntry",
    "StatusTable",
    "Step",
    "Twilio",
    "WebexConnect",
    "get_provider",
]

#: provider id → "module:Class" (relative to this package).
PROVIDERS: Final = {
    "smsapi": "smsapi:Smsapi",
    "clickatell": "clickatell:Clickatell",
    "edna": "edna:Edna",
    "mobizon": "mobizon:Mobizon",
    "webex_connect": "webex_connect:WebexConnect",
    "twilio": "twilio:Twilio",
}
_BY_CLASS: Final = {spec.split(":")[1]: spec for spec in PROVIDERS.values()}


def get_provider(name: str) -> type[Provider]:
    """The provider class for a provider id (``"smsapi"``)."""
    try:
        module, cls = PROVIDERS[name].split(":")
    except KeyError:
        raise KeyError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}") from None
    provider: type[Provider] = getattr(importlib.import_module(f".{module}", __name__), cls)
    return provider


def __getattr__(attr: str) -> Any:
    spec = _BY_CLASS.get(attr)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    module, cls = spec.split(":")
    value = getattr(importlib.import_module(f".{module}", __name__), cls)
    globals()[attr] = value
    return value
