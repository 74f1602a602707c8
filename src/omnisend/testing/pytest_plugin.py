"""omnisend's pytest plugin: the ``omnisend_emulator`` fixture.

Installed with omnisend and registered through the ``pytest11`` entry point ``omnisend``, so any
project that has omnisend installed gets the fixture without a conftest::

    def test_checkout_sends_a_code(omnisend_emulator):
        emu = omnisend_emulator("smsapi", balance=5.0)        # served on 127.0.0.1 for this test
        client = Client(emu.provider())                         # credentials and webhook secret filled in
        checkout(client)
        (record,) = emu.messages.values()
        assert record.text.startswith("Your code")

``omnisend_emulator(name, **emulator_options)`` builds the emulator (``get_emulator(name)``, the
options are its constructor's), serves it over HTTP on a free port and returns it; every emulator
started by the fixture is stopped after the test. ``emu.provider(**options)`` builds a provider
pointed at it, ``emu.url()`` its ``omnisend.from_url`` URL (for code that reads ``OMNISEND_URL``).

The plugin imports nothing from omnisend until a test asks for the fixture, so it costs nothing
in a run that does not use it; ``pytest -p no:omnisend`` turns it off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from . import ServedEmulator

__all__ = ["omnisend_emulator"]


@pytest.fixture
def omnisend_emulator() -> Iterator[Callable[..., ServedEmulator]]:
    """A factory: ``omnisend_emulator("smsapi", **emulator_options)`` → an emulator served on 127.0.0.1."""
    from . import EMULATORS, ServedEmulator, get_emulator

    started: list[ServedEmulator] = []

    def start(name: str, **options: Any) -> ServedEmulator:
        key = name.replace("-", "_")
        if key not in EMULATORS:
            pytest.fail(f"omnisend_emulator: no emulator {name!r}; known: {', '.join(EMULATORS)}", pytrace=False)
        cls = get_emulator(key)
        emulator = cls(**options)
        served = ServedEmulator(emulator, emulator.serve())
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        served.stop()
