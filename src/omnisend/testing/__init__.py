"""Test tooling for omnisend users: stateful emulators of each vendor API.

Use an emulator in-process::

    emu = SmsapiEmulator()
    client = Client(emu.make_provider("https://api.smsapi.pl"), http_client=httpx.Client(transport=emu.transport()))

or over real HTTP on 127.0.0.1 (``with emu.serve() as server: ... server.base_url``), or from the
shell with ``omnisend emulator smsapi --port 8080``. Script faults with ``emu.script(Fault.slow(5))``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ..providers.base import strict_adapters
    from ._emulator import (
        BLOCKED_NUMBER,
        INVALID_NUMBER,
        NOT_ON_VIBER,
        NOT_ON_WHATSAPP,
        Emulator,
        EmulatorServer,
        EmulatorTransport,
        Fault,
        Record,
        Reply,
        Request,
        ServedEmulator,
        closed_port_url,
    )
    from .clickatell import ClickatellEmulator
    from .edna import EdnaEmulator
    from .mobizon import MobizonEmulator
    from .smsapi import SmsapiEmulator
    from .twilio import TwilioEmulator
    from .webex_connect import WebexConnectEmulator

__all__ = [
    "BLOCKED_NUMBER",
    "EMULATORS",
    "INVALID_NUMBER",
    "NOT_ON_VIBER",
    "NOT_ON_WHATSAPP",
    "ClickatellEmulator",
    "EdnaEmulator",
    "Emulator",
    "EmulatorServer",
    "EmulatorTransport",
    "Fault",
    "MobizonEmulator",
    "Record",
    "Reply",
    "Request",
    "ServedEmulator",
    "SmsapiEmulator",
    "TwilioEmulator",
    "WebexConnectEmulator",
    "closed_port_url",
    "get_emulator",
    "strict_adapters",
]

#: provider id → "module:Class" of its emulator.
EMULATORS: Final = {
    "smsapi": "smsapi:SmsapiEmulator",
    "clickatell": "clickatell:ClickatellEmulator",
    "edna": "edna:EdnaEmulator",
    "mobizon": "mobizon:MobizonEmulator",
    "webex_connect": "webex_connect:WebexConnectEmulator",
    "twilio": "twilio:TwilioEmulator",
}
_BY_CLASS: Final = {spec.split(":")[1]: spec for spec in EMULATORS.values()}
#: The emulator engine's public names, loaded on first use: the pytest plugin imports this
#: package in every test run of a project that has omnisend installed, so it must stay light.
_ENGINE: Final = frozenset(
    {
        "BLOCKED_NUMBER",
        "INVALID_NUMBER",
        "NOT_ON_VIBER",
        "NOT_ON_WHATSAPP",
        "Emulator",
        "EmulatorServer",
        "EmulatorTransport",
        "Fault",
        "Record",
        "Reply",
        "Request",
        "ServedEmulator",
        "closed_port_url",
    }
)


def get_emulator(name: str) -> type[Emulator]:
    """The emulator class for a provider id."""
    try:
        module, cls = EMULATORS[name].split(":")
    except KeyError:
        raise KeyError(f"no emulator for {name!r}; known: {', '.join(EMULATORS)}") from None
    emulator: type[Emulator] = getattr(importlib.import_module(f".{module}", __name__), cls)
    return emulator


def __getattr__(attr: str) -> Any:
    if attr == "strict_adapters":
        from ..providers.base import strict_adapters

        globals()[attr] = strict_adapters
        return strict_adapters
    if attr in _ENGINE:
        value = getattr(importlib.import_module("._emulator", __name__), attr)
        globals()[attr] = value
        return value
    spec = _BY_CLASS.get(attr)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    module, cls = spec.split(":")
    value = getattr(importlib.import_module(f".{module}", __name__), cls)
    globals()[attr] = value
    return value
