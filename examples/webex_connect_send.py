"""Send SMS and WhatsApp through Webex Connect, against the bundled emulator (no account needed).

Shows: a send, a WhatsApp template, a typed error, a rate-limit retry, an ambiguous failure that is
not retried, a 2500-recipient send split into three requests, and a signed delivery receipt.
With a real service key, drop the emulator and use ``WebexConnect(service_key=..., region="eu")``.

Run: ``python examples/webex_connect_send.py``
"""

from __future__ import annotations

import httpx

from omnisend import Client, DeliveryUnknown, InvalidRecipient, Message, RetryPolicy, Template
from omnisend.testing import Fault, WebexConnectEmulator


def main() -> None:
    emulator = WebexConnectEmulator(webhook_secret="hub-secret", templates=("order_shipped",))
    provider = emulator.make_provider("https://api.eu.webexconnect.io")
    retry = RetryPolicy(initial_wait=0.01, max_wait=0.05)
    with Client(provider, retry=retry, http_client=httpx.Client(transport=emulator.transport())) as client:
        result = client.send(Message(to="+48500100200", text="Your code is 1234", sender="ACME"))
        print(f"sms: {result.status} transid={result.message_id} correlationid={result.idempotency_key}")

        whatsapp = Message(
            to="+48500100201", channel="whatsapp", template=Template(name="order_shipped", params=["Ann", "A-17"])
        )
        print(f"whatsapp: {client.send(whatsapp).status}")

        try:
            client.send(Message(to=emulator.invalid_number, text="hello"))
        except InvalidRecipient as error:
            print(f"typed error: {type(error).__name__}: {error}")

        emulator.script(Fault.vendor_error("7020"))
        retried = client.send(Message(to="+48500100202", text="hello"))
        print(f"rate limit 7020 retried: {retried.status} after {retried.attempts} attempts")

        emulator.script(Fault.drop_after_accept())
        try:
            client.send(Message(to="+48500100203", text="hello"))
        except DeliveryUnknown as error:
            print(f"ambiguous, not retried: {type(error).__name__} (idempotency_key={error.idempotency_key})")

        bulk = client.send(Message(to=[f"+4850{n:07d}" for n in range(2500)], text="Sale today"))
        print(f"bulk: {len(bulk.succeeded)} accepted in {bulk.attempts} requests")

    (report,) = provider.parse_webhook(**emulator.deliver(result.message_id or ""))
    print(f"receipt (signature checked): {report.status} for {report.recipient} at {report.timestamp}")


if __name__ == "__main__":
    main()
