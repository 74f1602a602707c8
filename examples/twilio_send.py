"""Twilio Programmable Messaging against the embedded emulator, over real HTTP on 127.0.0.1.

Shows an SMS from an Alphanumeric Sender ID, a WhatsApp Content Template through a Messaging
Service, Twilio's own error codes as typed errors (21211 invalid number, 21610 unsubscribed), a
throttled request (20429) retried, a timeout that is *not* retried (Twilio cannot de-duplicate), a
signed status callback checked with ``X-Twilio-Signature``, and a status lookup by message SID.

With a real account, drop the emulator: ``Twilio(account_sid="AC…", auth_token="…",
webhook_url="https://you.example/twilio/status")``. Run: ``.venv/bin/python examples/twilio_send.py``.
"""

from __future__ import annotations

import omnisend
from omnisend import Client, Message, RetryPolicy
from omnisend.models import Template
from omnisend.testing import Fault, TwilioEmulator

SERVICE = "MG" + "5" * 32  # a Messaging Service SID: needed for scheduled sends, optional otherwise


def main() -> None:
    emulator = TwilioEmulator(opted_out=("+15005550010",))
    with emulator.serve() as server:
        # The emulator fills in its account SID and auth token; webhook_url is where callbacks go.
        twilio = emulator.make_provider(server.base_url, messaging_service_sid=SERVICE)
        with Client(twilio, retry=RetryPolicy(initial_wait=0.05), timeout=2.0) as client:
            sms = client.send(Message(to="+48500100200", text="Your code is 1234", sender="Shop"))
            print(f"SMS sent: sid={sms.message_id} status={sms.status} segments={sms.segments}")

            template = Template(name="HX" + "a" * 32, params=["Ann", "12:30"])
            whatsapp = client.send(Message(to="+48500100201", channel="whatsapp", template=template))
            print(f"WhatsApp Content Template sent through the Messaging Service: status={whatsapp.status}")

            for number in ("+15005550001", "+15005550010"):
                try:
                    client.send(Message(to=number, text="Hi", sender="Shop"))
                except omnisend.InvalidRecipient as exc:
                    print(f"caught {type(exc).__name__}: {exc}")

            emulator.script(Fault.vendor_error(20429))
            retried = client.send(Message(to="+48500100202", text="Throttled once", sender="Shop"))
            print(f"throttled (20429), retried: attempts={retried.attempts}")

            emulator.script(Fault.slow(1.0))
            try:
                client.send(Message(to="+48500100203", text="Slow", sender="Shop"), timeout=0.2)
            except omnisend.DeliveryUnknown as exc:
                print(f"timeout, not retried: {type(exc).__name__} key={exc.idempotency_key} attempts={exc.attempts}")

            # What your web framework hands over: the body, the headers and the URL Twilio called.
            callback = emulator.deliver(str(sms.message_id), delivered=False)
            for report in twilio.parse_webhook(body=callback["body"], headers=callback["headers"], url=callback["url"]):
                print(f"callback: {report.vendor_status} -> {report.status}, error {report.error}, key {report.idempotency_key}")
            try:
                twilio.parse_webhook(body=callback["body"] + b"&x=1", headers=callback["headers"], url=callback["url"])
            except omnisend.WebhookAuthError as exc:
                print(f"tampered callback refused: {exc}")

            status = client.get_status(str(sms.message_id))
            print(f"status lookup: {status.status} (vendor {status.vendor_status!r})")
        print(f"emulator holds {emulator.accepted_count} messages, duplicates={emulator.duplicates()}")


if __name__ == "__main__":
    main()
