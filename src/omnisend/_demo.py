"""``omnisend demo``: the main job, every provider against its embedded emulator.

It sends through every provider against the embedded emulators, over real HTTP on 127.0.0.1,
with no credentials: a message sent, a rate limit retried into success, an invalid recipient and
an empty balance caught as typed errors, and the delivery report read. With a vendor credential
in its environment variable (``OMNISEND_SMSAPI_TOKEN``, ...) and ``OMNISEND_DEMO_TO`` set, that
provider talks to the real vendor instead.

Each part of the demo is a function taking the emulator (or provider name) and a printer, so a
new part (routing, say) is one more function called from :func:`run_demo`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from . import __version__
from .client import Client
from .errors import DeliveryUnknown, InsufficientBalance, InvalidRecipient, OmnisendError
from .models import Message
from .providers import Provider, get_provider
from .retry import RetryPolicy
from .testing import EMULATORS, Emulator, Fault, get_emulator

__all__ = ["DEMO_TO", "NEXT_STEP", "run_demo"]

NEXT_STEP = (
    "Next step: send one for real with `omnisend send --url smsapi://TOKEN@default --to +48... --text Hi` "
    "(`omnisend providers` lists every URL), or point your app at `omnisend emulator smsapi` "
    "and test it with the pytest fixture `omnisend_emulator` (README.md, docs/testing.md)."
)

DEMO_TO = "+48500100200"


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)


class _RetryLog(logging.Handler):
    """Shows omnisend's own retry log lines in the demo output."""

    def __init__(self, say: _Printer) -> None:
        super().__init__(logging.INFO)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.INFO:  # the retry lines; each step prints its own outcome
            self.say(f"     log: {record.getMessage()}")


def _available_emulators() -> list[type[Emulator]]:
    found = []
    for name in EMULATORS:
        try:
            found.append(get_emulator(name))
        except ModuleNotFoundError:
            continue
    return found


def demo_emulated(emulator: Emulator, say: _Printer) -> None:
    """Run the demo scenarios of one provider against its emulator over TCP."""
    policy = RetryPolicy(initial_wait=0.2, max_wait=1.0)
    with emulator.serve() as server:
        provider = emulator.make_provider(server.base_url)
        say(f"== {provider.display_name} ({provider.name}) — emulator at {server.base_url}")
        with Client(provider, retry=policy, timeout=5.0) as client:
            message = emulator.demo_message(DEMO_TO, "Your code is 1234")
            result = client.send(message)
            say(
                f"  1. sent to {DEMO_TO}: message_id={result.message_id} status={result.status} "
                f"attempts={result.attempts}"
            )

            if emulator.rate_limit_code is not None:
                emulator.script(Fault.vendor_error(emulator.rate_limit_code))
                retried = client.send(emulator.demo_message("+48500100201", "Rate limit demo"))
                say(
                    f"  2. vendor answered rate limit (code {emulator.rate_limit_code}), omnisend waited and "
                    f"retried: status={retried.status} attempts={retried.attempts} "
                    f"(same idempotency key {retried.idempotency_key[:8] if retried.idempotency_key else None}…)"
                )

            try:
                taken = client.send(emulator.demo_message(emulator.invalid_number, "Hello"))
            except InvalidRecipient as exc:
                say(f"  3. caught {type(exc).__name__}: {exc}  [retryable={exc.retryable}]")
            else:  # the vendor takes it and reports the failure later (Webex Connect)
                for failed in provider.parse_webhook(**emulator.deliver(str(taken.message_id))):
                    error = failed.error
                    say(
                        f"  3. the invalid number was taken, then reported: status={failed.status} "
                        f"error={error.error_class if error else None} (code {error.code if error else None})"
                    )

            saved = emulator.balance
            emulator.balance = 0
            try:
                client.send(emulator.demo_message("+48500100202", "Hello"))
                say("  4. (unexpected) sent with an empty balance")
            except InsufficientBalance as exc:
                say(f"  4. caught {type(exc).__name__}: {exc}  [retryable={exc.retryable}]")
            finally:
                emulator.balance = saved

            if result.message_id is not None:
                callback = emulator.deliver(result.message_id)
                for report in provider.parse_webhook(**callback):
                    say(
                        f"  5. delivery report (webhook): message_id={report.message_id} status={report.status} "
                        f"final={report.status.is_final} ({vendor_status(provider, report.vendor_status)})"
                    )
                if not provider.status_lookup:
                    say(
                        f"     status lookup: not offered by {provider.display_name}; delivery reports come by webhook only"
                    )
                else:
                    try:
                        status = client.get_status(result.message_id)
                        say(f"     status lookup: {status.status} ({vendor_status(provider, status.vendor_status)})")
                    except OmnisendError as exc:
                        say(f"     status lookup failed: {type(exc).__name__}: {exc}")
        say(f"     emulator holds {emulator.accepted_count} messages, duplicates: {emulator.duplicates()}")
        say()


def vendor_status(provider: Provider, value: object) -> str:
    """A vendor status named, with the vendor's meaning: ``SMSAPI status 404: Message is delivered``."""
    entry = provider.statuses.lookup(value) if value is not None else None
    meaning = f": {entry.meaning.rstrip('.')}" if entry is not None else ""
    return f"{provider.display_name} status {value!r}{meaning}"


def demo_live(name: str, say: _Printer) -> None:
    """Send one message through the real vendor (credential and OMNISEND_DEMO_TO from the environment)."""
    cls = get_provider(name)
    say(f"== {cls.display_name} ({name}) — LIVE")
    try:
        provider = cls()  # reads the credential from its environment variable
        message = Message(to=os.environ["OMNISEND_DEMO_TO"], text="omnisend demo")
        say(f"  host: {provider.base_url}")
        with Client(provider) as client:
            result = client.send(message)
        say(f"  sent: message_id={result.message_id} status={result.status} attempts={result.attempts}")
    except OmnisendError as exc:
        say(f"  {type(exc).__name__}: {exc}")
    say()


def demo_routing(say: _Printer) -> None:
    """Two vendors behind one ``Failover``: a failover, and a failover refused because the message may be out."""
    from .routing import Failover, Route
    from .testing import ClickatellEmulator, SmsapiEmulator

    clickatell, smsapi = ClickatellEmulator(), SmsapiEmulator()
    with clickatell.serve() as first, smsapi.serve() as second:
        say(f"== Routing: Failover(Clickatell, SMSAPI) — emulators at {first.base_url} and {second.base_url}")

        def router() -> Failover:  # per-route senders: Clickatell sends from a number, SMSAPI from a name
            return Failover(
                Route(clickatell.make_provider(first.base_url), sender="15551234567"),
                Route(smsapi.make_provider(second.base_url), sender="Shop"),
            )

        def requests(before: tuple[int, int] = (0, 0)) -> str:
            return f"requests: Clickatell {len(clickatell.requests) - before[0]}, SMSAPI {len(smsapi.requests) - before[1]}"

        message = Message(to=DEMO_TO, text="Your code is 1234")
        clickatell.balance = 0
        with Client(router(), retry=RetryPolicy(initial_wait=0.2, max_wait=1.0), timeout=5.0) as client:
            result = client.send(message)
        errors = ", ".join(f"{type(e).__name__} from {e.provider}" for e in result.route_errors)
        say(f"  1. Clickatell is out of credit ({errors}, accepted=False): nothing went out, so the next route")
        say(f"     took it: provider={result.provider} message_id={result.message_id}  [{requests()}]")

        clickatell.balance = 1000.0
        clickatell.script(Fault.drop_after_accept())
        before = (len(clickatell.requests), len(smsapi.requests))
        with Client(router(), retry=RetryPolicy(initial_wait=0.2, max_wait=1.0), timeout=5.0) as client:
            try:
                client.send(message)
                say("  2. (unexpected) the dropped answer was not reported")
            except DeliveryUnknown as exc:
                say(f"  2. Clickatell took the message and the answer was lost: {type(exc).__name__}, accepted=None.")
                say(f"     No failover (it would send a second copy); SMSAPI untouched  [{requests(before)}]")
        say(
            f"     Clickatell holds {clickatell.accepted_count}, SMSAPI {smsapi.accepted_count}: one message each, none twice"
        )
    say()


def run_demo(names: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    say = _Printer(out)
    handler = _RetryLog(say)
    logger = logging.getLogger("omnisend")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        say(f"omnisend {__version__} demo: every provider against its embedded emulator (no credentials).")
        say()
        for emulator_cls in _available_emulators():
            name = emulator_cls.provider
            if names and name not in names:
                continue
            cls = get_provider(name)
            if cls.credential_env and os.environ.get(cls.credential_env) and os.environ.get("OMNISEND_DEMO_TO"):
                demo_live(name, say)
            else:
                demo_emulated(emulator_cls(), say)
        if not names:
            demo_routing(say)
        say(f"done in {time.perf_counter() - started:.1f}s")
        say()
        say(NEXT_STEP)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return 0
