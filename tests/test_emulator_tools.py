"""The emulators as a test tool: shared test numbers, Fault.rate_limited, callbacks that pass the
provider's webhook checks, refused connections over TCP."""

from __future__ import annotations

import httpx
import pytest

from omnisend import Client, InvalidRecipient, Message, RateLimited, RetryPolicy, TransportError
from omnisend.testing import (
    BLOCKED_NUMBER,
    EMULATORS,
    INVALID_NUMBER,
    NOT_ON_VIBER,
    NOT_ON_WHATSAPP,
    Emulator,
    Fault,
    ServedEmulator,
    closed_port_url,
    get_emulator,
)


def client_for(emulator: Emulator, sleeps: list[float] | None = None, **options: object) -> Client:
    retry = RetryPolicy(sleep=sleeps.append) if sleeps is not None else None
    provider = emulator.make_provider("http://emulator.test", **options)
    return Client(provider, retry=retry, http_client=httpx.Client(transport=emulator.transport()))


# -- the shared test numbers (the table of docs/testing.md) ------------------------------------

REFUSED = [
    ("smsapi", INVALID_NUMBER, "sms", 13),
    ("smsapi", BLOCKED_NUMBER, "sms", 57),
    ("clickatell", INVALID_NUMBER, "sms", 25),
    ("clickatell", BLOCKED_NUMBER, "sms", 26),
    ("clickatell", NOT_ON_WHATSAPP, "whatsapp", 27),
    ("edna", INVALID_NUMBER, "sms", "error-address-format"),
    ("mobizon", INVALID_NUMBER, "sms", 1),
    ("mobizon", BLOCKED_NUMBER, "sms", 1),
    ("webex_connect", BLOCKED_NUMBER, "sms", "7109"),
    ("twilio", INVALID_NUMBER, "sms", 21211),
    ("twilio", BLOCKED_NUMBER, "sms", 21610),
    ("twilio", NOT_ON_WHATSAPP, "whatsapp", 63003),
]


@pytest.mark.parametrize(("name", "number", "channel", "code"), REFUSED)
def test_every_emulator_refuses_the_shared_numbers(name: str, number: str, channel: str, code: object) -> None:
    emulator = get_emulator(name)()
    message = emulator.demo_message(number, "hi").model_copy(update={"channel": channel})
    if name == "twilio" and channel == "whatsapp":
        message = message.model_copy(update={"sender": "+15005550006"})  # a WhatsApp sender is a number
    with client_for(emulator) as client, pytest.raises(InvalidRecipient) as caught:
        client.send(message)
    assert caught.value.code == code
    assert emulator.accepted_count == 0


@pytest.mark.parametrize(("number", "channel"), [(BLOCKED_NUMBER, "sms"), (NOT_ON_WHATSAPP, "whatsapp"), (NOT_ON_VIBER, "viber")])
def test_edna_takes_refused_numbers_then_fails_them(number: str, channel: str) -> None:
    emulator = get_emulator("edna")()
    with client_for(emulator) as client:
        result = client.send(Message(to=number, text="hi", channel=channel))
        assert result.message_id is not None
        report = client.get_status(result.message_id)
    assert report.status in ("failed", "undelivered") and report.status.is_final


def test_webex_connect_takes_the_invalid_number_then_fails_it() -> None:
    emulator = get_emulator("webex_connect")()
    with client_for(emulator) as client:
        result = client.send(Message(to=INVALID_NUMBER, text="hi"))
    assert result.message_id is not None
    (report,) = emulator.make_provider("http://emulator.test").parse_webhook(**emulator.deliver(result.message_id))
    assert report.status == "failed" and report.error is not None and str(report.error.code) == "7102"
    strict = get_emulator("webex_connect")(sync_refusals=True)
    with client_for(strict) as client, pytest.raises(InvalidRecipient) as caught:
        client.send(Message(to=INVALID_NUMBER, text="hi"))
    assert caught.value.code == "7102"


@pytest.mark.parametrize("name", list(EMULATORS))
def test_the_shared_numbers_are_otherwise_ordinary(name: str) -> None:
    emulator = get_emulator(name)()
    with client_for(emulator) as client:
        for number in (NOT_ON_WHATSAPP, NOT_ON_VIBER):  # by SMS, every vendor sends to them
            assert client.send(emulator.demo_message(number, "hi")).message_id is not None


# -- Fault.rate_limited ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EMULATORS))
def test_rate_limited_with_retry_after_is_honoured(name: str) -> None:
    emulator = get_emulator(name)()
    sleeps: list[float] = []
    emulator.script(Fault.rate_limited(retry_after=4))
    with client_for(emulator, sleeps) as client:
        result = client.send(emulator.demo_message("+48500100200", "hi"))
    assert result.attempts == 2 and sleeps == [4.0]
    assert emulator.accepted_count == 1


@pytest.mark.parametrize("name", list(EMULATORS))
def test_rate_limited_is_the_vendors_own_answer(name: str) -> None:
    emulator = get_emulator(name)()
    emulator.script(Fault.rate_limited())
    with client_for(emulator) as client, pytest.raises(RateLimited) as caught:
        client.send(emulator.demo_message("+48500100200", "hi"))
    assert caught.value.accepted is False and emulator.accepted_count == 0
    if caught.value.code is not None:  # edna throttles with a bare HTTP 429
        assert str(caught.value.code) == str(emulator.rate_limit_code)
    else:
        assert caught.value.http_status == 429


def test_rate_limited_refuses_a_negative_wait() -> None:
    with pytest.raises(ValueError, match="retry_after must be a number of seconds >= 0"):
        Fault.rate_limited(retry_after=-1)


# -- deliver() passes the provider's webhook checks ---------------------------------------------

SECRET_OPTIONS = {
    "smsapi": "webhook_secret",
    "clickatell": "webhook_secret",
    "edna": "webhook_key",
    "mobizon": "webhook_secret",
    "webex_connect": "webhook_secret",
}
#: Twilio signs callbacks with the Auth Token itself: no separate secret to give.
SIGNED_BY_CREDENTIAL = {"twilio"}


@pytest.mark.parametrize("name", [n for n in EMULATORS if n not in SIGNED_BY_CREDENTIAL])
def test_deliver_authenticates_as_the_provider_expects(name: str) -> None:
    from omnisend import WebhookAuthError

    option = SECRET_OPTIONS[name]
    emulator = get_emulator(name)(**{option: "callback-secret-1"})
    with client_for(emulator) as client:
        result = client.send(emulator.demo_message("+48500100200", "hi"))
    assert result.message_id is not None
    provider = emulator.make_provider("http://emulator.test")
    (report,) = provider.parse_webhook(**emulator.deliver(result.message_id))
    assert report.message_id == result.message_id and report.status == "delivered"
    other = emulator.make_provider("http://emulator.test", **{option: "another-secret"})
    with pytest.raises(WebhookAuthError):
        other.parse_webhook(**emulator.deliver(result.message_id))


@pytest.mark.tcp
@pytest.mark.parametrize("name", [n for n in EMULATORS if n not in SIGNED_BY_CREDENTIAL])
def test_served_provider_with_a_secret_signs_deliveries_with_it(name: str) -> None:
    emulator = get_emulator(name)()
    with emulator.serve() as server:
        served = ServedEmulator(emulator, server)
        provider = served.provider(**{SECRET_OPTIONS[name]: "given-to-the-provider"})
        with Client(provider, retry=None) as client:
            result = client.send(emulator.demo_message("+48500100200", "hi"))
        assert result.message_id is not None
        (report,) = provider.parse_webhook(**served.deliver(result.message_id))
        assert report.status == "delivered"


# -- refused connections over TCP -----------------------------------------------------------------


@pytest.mark.tcp
def test_closed_port_url_refuses_the_connection() -> None:
    emulator = get_emulator("clickatell")()  # Clickatell does not de-duplicate: only a refusal is retried
    sleeps: list[float] = []
    with Client(emulator.make_provider(closed_port_url()), retry=RetryPolicy(sleep=sleeps.append, max_attempts=2)) as client, pytest.raises(TransportError) as caught:
        client.send(Message(to="+48500100200", text="hi"))
    assert caught.value.accepted is False and caught.value.retryable and len(sleeps) == 1
    assert "could not connect" in str(caught.value)


@pytest.mark.tcp
def test_refuse_over_tcp_is_documented_as_a_dropped_connection() -> None:
    emulator = get_emulator("clickatell")()
    with emulator.serve() as server, Client(emulator.make_provider(server.base_url), retry=None) as client:
        emulator.script(Fault.refuse())
        with pytest.raises(TransportError) as caught:
            client.send(Message(to="+48500100200", text="hi"))
    assert emulator.accepted_count == 0  # nothing was processed
    assert "dropped connection" in (Fault.refuse.__doc__ or "") and "closed_port_url" in (Fault.refuse.__doc__ or "")
    assert type(caught.value).__name__ in ("TransportError", "DeliveryUnknown")


def test_served_emulator_forwards_attributes() -> None:
    emulator = get_emulator("smsapi")()
    with emulator.serve() as server:
        served = ServedEmulator(emulator, server)
        served.balance = 3.0
        assert emulator.balance == 3.0 and served.messages is emulator.messages
        assert served.name == "smsapi" and served.base_url == server.base_url == emulator.base_url
        assert served.url() == emulator.url() == emulator.url(server.base_url)
        assert repr(served).startswith("<SmsapiEmulator served at http://127.0.0.1:")
    with pytest.raises(RuntimeError, match="not being served"):
        _ = emulator.base_url
