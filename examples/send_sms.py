"""Send one SMS through SMSAPI — here against the embedded emulator, so it runs anywhere.

With a real token: Client(Smsapi(token="...")) and drop the emulator lines.
"""

from omnisend import Client, DeliveryStatus, Message
from omnisend.testing import SmsapiEmulator

emulator = SmsapiEmulator()
with emulator.serve() as server:  # a real HTTP server on 127.0.0.1
    provider = emulator.make_provider(server.base_url)  # Smsapi(token="test-token", base_url=...)
    with Client(provider) as client:
        result = client.send(Message(to="+48 500 100 200", text="Your code is 1234", sender="Shop"))
        print(f"sent: id={result.message_id} status={result.status} attempts={result.attempts}")
        print(f"idempotency key (keep it to re-send safely): {result.idempotency_key}")

        assert result.message_id is not None
        callback = emulator.deliver(result.message_id)  # what SMSAPI would call your webhook with
        for report in provider.parse_webhook(**callback):
            print(f"delivery report: {report.message_id} -> {report.status} (final: {report.status.is_final})")
        assert client.get_status(result.message_id).status is DeliveryStatus.DELIVERED
        print("status lookup agrees: delivered")
