"""Send concurrently with AsyncClient (against the SMSAPI emulator served on 127.0.0.1)."""

import asyncio

from omnisend import AsyncClient, Message, OmnisendError
from omnisend.testing import Fault, SmsapiEmulator


async def main() -> None:
    emulator = SmsapiEmulator()
    emulator.script(Fault.drop_after_accept())  # one answer lost after the vendor took the message
    with emulator.serve() as server:
        async with AsyncClient(emulator.make_provider(server.base_url)) as client:
            numbers = [f"+4850010{n:04d}" for n in range(20)]
            outcomes = await asyncio.gather(
                *(client.send(Message(to=n, text="Sale starts now")) for n in numbers), return_exceptions=True
            )
    sent = [o for o in outcomes if not isinstance(o, BaseException)]
    failed = [o for o in outcomes if isinstance(o, OmnisendError)]
    print(f"sent {len(sent)} of {len(numbers)}; failed {len(failed)}")
    print(f"emulator accepted {emulator.accepted_count} messages, duplicates: {emulator.duplicates()}")
    print(f"retried sends: {sum(1 for o in sent if o.attempts > 1)}")


asyncio.run(main())
