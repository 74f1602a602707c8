"""Catch omnisend's typed errors: what to do with each (against the SMSAPI emulator)."""

import logging

from omnisend import (
    AuthError,
    Client,
    DeliveryUnknown,
    InsufficientBalance,
    InvalidRecipient,
    Message,
    OmnisendError,
    RateLimited,
    RetryPolicy,
    ValidationError,
)
from omnisend.providers import Smsapi
from omnisend.testing import Fault, SmsapiEmulator

logging.basicConfig(level=logging.INFO, format="  log %(name)s: %(message)s")
logging.getLogger("httpx").setLevel(logging.WARNING)

emulator = SmsapiEmulator(rate_limit=(3, 60.0))


def send(client: Client, message: Message) -> None:
    try:
        result = client.send(message)
        print(f"ok: {result.message_id} after {result.attempts} attempt(s)")
    except InvalidRecipient as exc:  # before ValidationError: it is a subclass
        print(f"drop this number: {exc}")
    except ValidationError as exc:
        print(f"fix the message (field {exc.field!r}): {exc}")
    except InsufficientBalance as exc:
        print(f"top up the account: {exc}")
    except AuthError as exc:
        print(f"check the token: {exc}")
    except RateLimited as exc:
        print(f"still throttled after retries; try again in {exc.retry_after}s: {exc}")
    except DeliveryUnknown as exc:
        print(f"may have been sent; reconcile with key {exc.idempotency_key}: {exc}")
    except OmnisendError as exc:
        print(f"other error ({type(exc).__name__}, retryable={exc.retryable}): {exc}")


with emulator.serve() as server:
    with Client(emulator.make_provider(server.base_url), retry=RetryPolicy(initial_wait=0.1, max_retry_after=5)) as client:
        emulator.script(Fault.vendor_error(203))  # throttled once, then fine: retried for you
        send(client, Message(to="+48500100200", text="hello"))
        send(client, Message(to=emulator.invalid_number, text="hello"))
        send(client, Message(to="+48500100201", text="hello", sender="Way-too-long-sender"))
        emulator.balance = 0
        send(client, Message(to="+48500100202", text="hello"))
        emulator.balance = 100
        for _ in range(3):
            send(client, Message(to="+48500100203", text="again"))  # 4th send to one number in 60 s: code 52
        send(client, Message(to="+48500100203", text="once more"))

    with Client(Smsapi(token="wrong-token", base_url=server.base_url)) as client:
        send(client, Message(to="+48500100200", text="hello"))

try:
    Message(to="not a number", text="hi")
except ValidationError as exc:
    print(f"refused before sending: {exc}")
