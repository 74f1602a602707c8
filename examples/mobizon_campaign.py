"""Mobizon against the embedded emulator: one SMS, a campaign with a partial failure, a signed
delivery webhook, a status lookup, and the code-13 "wrong domain" redirect.

With a real key: Client(Mobizon(api_key="...", base_url="api.mobizon.kz")) and drop the emulator lines.
"""

import logging

import httpx

from omnisend import Client, DeliveryStatus, Message, PartialFailure
from omnisend.testing import MobizonEmulator

logging.basicConfig(level=logging.WARNING, format="  log %(levelname)s %(name)s: %(message)s")

emulator = MobizonEmulator(blacklist=("+77001112233",))
with emulator.serve() as server:  # a real HTTP server on 127.0.0.1
    provider = emulator.make_provider(server.base_url)  # Mobizon(api_key=..., base_url=..., webhook_secret=...)
    with Client(provider) as client:
        one = client.send(Message(to="+7 700 123 45 67", text="Your code is 1234 (+1 bonus)", sender="Shop"))
        print(f"single SMS: id={one.message_id} status={one.status} key={one.idempotency_key}")

        numbers = ["+77001234568", "+77001234569", "+77001112233", emulator.invalid_number]
        campaign = client.send(Message(to=numbers, text="Sale today only", sender="Shop"))
        print(f"campaign to {len(numbers)}: {len(campaign.succeeded)} queued, {len(campaign.failed)} rejected")
        for failed in campaign.failed:
            print(f"  rejected {failed.to}: {type(failed.error).__name__} (item code {failed.error.code})")
        try:
            campaign.raise_for_failures()
        except PartialFailure as exc:
            print(f"  raise_for_failures -> PartialFailure: {exc}")

        assert one.message_id is not None
        callback = emulator.deliver(one.message_id)  # the JSON event Mobizon posts, signed with the secret
        for report in provider.parse_webhook(**callback):
            print(f"webhook: {report.message_id} -> {report.status} (event {report.event_id}, final {report.status.is_final})")
        status = client.get_status(one.message_id)
        assert status.status is DeliveryStatus.DELIVERED
        print(f"status lookup agrees: {status.status} ({status.vendor_status})")

# Code 13: the key belongs to another Mobizon domain. The call is re-sent once to the domain the
# answer names (only api.mobizon.* hosts), remembered, and a warning says to fix base_url.
elsewhere = MobizonEmulator(home_domain="api.mobizon.ua")
provider = elsewhere.make_provider("https://api.mobizon.kz")
with Client(provider, http_client=httpx.Client(transport=elsewhere.transport())) as client:
    moved = client.send(Message(to="+380501234567", text="Привіт!"))
    print(f"after code 13: sent via {provider.base_url} in {moved.attempts} attempts; next sends go there directly")
