"""Clickatell One API against the embedded emulator, over real HTTP on 127.0.0.1.

Shows an SMS and a WhatsApp template sent, a rate limit (error 43 on HTTP 400) retried, a partly
rejected batch, a timeout that is *not* retried (Clickatell cannot de-duplicate), a delivery
callback and a status lookup. Run: ``.venv/bin/python examples/clickatell_send.py``.
"""

from __future__ import annotations

import omnisend
from omnisend import Client, Message, RetryPolicy
from omnisend.models import Template
from omnisend.testing import ClickatellEmulator, Fault


def main() -> None:
    emulator = ClickatellEmulator(opted_out=("+27999000002",))
    with (
        emulator.serve() as server,
        Client(emulator.make_provider(server.base_url), retry=RetryPolicy(initial_wait=0.05), timeout=2.0) as client,
    ):
        sms = client.send(Message(to="+27999000001", text="Your code is 1234", idempotency_key="order-1"))
        print(f"SMS sent: id={sms.message_id} status={sms.status} attempts={sms.attempts}")

        template = Template(name="welcome_demo", params=["John", "Clickatell"])
        whatsapp = client.send(Message(to="+27999000001", channel="whatsapp", template=template))
        print(f"WhatsApp template sent: id={whatsapp.message_id}")

        emulator.script(Fault.vendor_error(43))
        retried = client.send(Message(to="+27999000003", text="Rate limit demo"))
        print(f"rate limited once (code 43), retried: attempts={retried.attempts}")

        batch = client.send(Message(to=["+27999000001", "+27999000002"], text="Batch"))
        for failed in batch.failed:
            print(f"rejected in batch: {failed.error}")
        try:
            batch.raise_for_failures()
        except omnisend.PartialFailure as exc:
            print(f"raise_for_failures(): {type(exc).__name__}: {exc}")

        try:
            client.send(Message(to="+27999000001", text="Hi", sender="Shop"))
        except omnisend.ValidationError as exc:
            print(f"refused before sending: {exc}")

        emulator.script(Fault.slow(1.0))
        try:
            client.send(Message(to="+27999000004", text="Slow", idempotency_key="order-2"), timeout=0.2)
        except omnisend.DeliveryUnknown as exc:
            print(f"timeout, not retried: {type(exc).__name__} key={exc.idempotency_key} attempts={exc.attempts}")

        provider = client.provider
        for report in provider.parse_webhook(**emulator.deliver(str(sms.message_id))):
            print(f"callback: {report.message_id} {report.vendor_status} -> {report.status} at {report.timestamp}")
        status = client.get_status(str(sms.message_id))
        print(f"status lookup: {status.status} (vendor {status.vendor_status!r})")
        print(f"emulator holds {emulator.accepted_count} messages, duplicates={emulator.duplicates()}")


if __name__ == "__main__":
    main()
