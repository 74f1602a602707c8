"""Issue 12, the input side: what callers hand omnisend can never make it send twice, lose a message,
leak a key or raise a raw exception.

Each test names the guarantee it pins (docs/reliability.md lists them). The owned option fields below
are written from the vendors' own documentation (tests/fixtures and docs/providers), not read back
from the adapters' ``owned_options``.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import math
import pickle
from collections import Counter
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from omnisend import (
    Client,
    ConfigurationError,
    DeliveryUnknown,
    Message,
    OmnisendError,
    RetryPolicy,
    SendResult,
    TransportError,
    ValidationError,
    _redact,
)
from omnisend._docs import available
from omnisend.providers import Edna, Mobizon, Provider, Smsapi
from omnisend.providers.base import Flow, Step
from omnisend.testing import (
    EdnaEmulator,
    Emulator,
    Fault,
    SmsapiEmulator,
    get_emulator,
)
from tests.conftest import inprocess_client

PROVIDERS = available()
IDS = [cls.name for cls in PROVIDERS]
TO = "+48500100200"


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+4850{n:07d}" for n in range(start, start + count)]


def posts(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.method == "POST"]


# -- 1. derived vendor ids never collide with caller keys ----------------------------------------------


@pytest.mark.parametrize(
    ("emulator_cls", "count", "later"),
    [
        (SmsapiEmulator, 2, "order-1"),  # main derived key-1, key-2 per recipient
        (SmsapiEmulator, 1001, "order.2"),  # main derived key.1, key.2 per chunk
        (SmsapiEmulator, 1001, "order.1-7"),  # ... and key.1-1 ... inside a chunk
        (EdnaEmulator, 2, "order-2"),  # one request per recipient: key-1, key-2
    ],
    ids=["smsapi-recipients", "smsapi-chunks", "smsapi-chunk-recipients", "edna-recipients"],
)
def test_a_caller_key_never_equals_an_id_omnisend_derived(
    policy: RetryPolicy, emulator_cls: type[Emulator], count: int, later: str
) -> None:
    """A later, different message whose caller key looks like a derived id is really sent, not
    answered "duplicate" and reported as a success."""
    emu = emulator_cls(balance=10_000)
    with inprocess_client(emu, policy) as client:
        client.send(Message(to=numbers(count), text="sale", idempotency_key="order"))
        result = client.send(Message(to="+48600100200", text="your code 1234", idempotency_key=later))
    assert not result.deduplicated and result.failed == ()
    assert [r.to for r in emu.iter_messages()].count("+48600100200") == 1
    assert emu.accepted_count == count + 1


@pytest.mark.parametrize("key", ["order--1", "x--0", "a-b--123"])
def test_keys_of_the_derived_form_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="ends in '--<digits>'") as info:
        Message(to=TO, text="hi", idempotency_key=key)
    assert info.value.field == "idempotency_key"


def test_derived_ids_respect_the_vendor_id_limits() -> None:
    """SMSAPI idx ≤ 255 characters and edna IM id ≤ 36, counted on the derived ids, before any request."""
    two = Message(to=numbers(2), text="hi", idempotency_key="k" * 254)
    with pytest.raises(ValidationError, match="255") as info:
        Smsapi(token="t0ken-value").build_request(two, idempotency_key="k" * 254)
    assert info.value.field == "idempotency_key"
    flow = Edna(api_key="edna-key-1", api="im", subject="Shop").send_flow(
        Message(to=numbers(2), text="hi", channel="whatsapp"), idempotency_key="k" * 34
    )
    with pytest.raises(ValidationError, match="36 characters"):
        next(flow)
    for key in ("a|b", "a,b"):
        with pytest.raises(ValidationError, match="'\\|' or ','"):
            Smsapi(token="t0ken-value").build_request(Message(to=TO, text="hi"), idempotency_key=key)


# -- 2. Message.options cannot override what omnisend owns -------------------------------------------

#: Per vendor, option spellings of the fields omnisend sets: idempotency and de-duplication, recipients,
#: authentication (from the vendors' API references in docs/providers and ../shared/providers).
OWNED = {
    "smsapi": [{"idx": ""}, {"check_idx": "0"}, {"IDX": "x"}, {"to": "48600100200"}, {"group": "all"}],
    "clickatell": [{"clientMessageId": "other"}, {"to": "48600100200"}],
    "edna": [{"requestId": "other"}, {"id": "other"}, {"subscriberFilter": {"address": "48600100200"}}],
    "mobizon": [
        {"recipient": "48600100200"},
        {"params[name]": "other"},
        {"params": {"name": "other"}},
        {"params": "replaced"},
        {"apiKey": "other"},
    ],
    "webex_connect": [{"correlationid": "other"}, {"destination": [{"msisdn": ["+48600100200"]}]}],
}


@pytest.mark.parametrize(
    ("name", "options"), [(name, o) for name, spellings in OWNED.items() for o in spellings], ids=repr
)
def test_options_cannot_set_a_field_omnisend_owns(policy: RetryPolicy, name: str, options: dict[str, Any]) -> None:
    emu = get_emulator(name)()
    message = emu.demo_message(TO, "hi").model_copy(update={"options": options})
    with inprocess_client(emu, policy) as client, pytest.raises(ValidationError, match="options may not set") as info:
        client.send(message)
    assert info.value.field is not None and info.value.field.startswith("options.")
    assert emu.requests == []


def test_options_that_switch_off_deduplication_cannot_cause_a_second_message(policy: RetryPolicy) -> None:
    """The issue's case: check_idx=0 and one dropped answer gave two messages."""
    emu = SmsapiEmulator()
    emu.script(Fault.drop_after_accept())
    with inprocess_client(emu, policy) as client, pytest.raises(ValidationError):
        client.send(Message(to=TO, text="hi", options={"check_idx": "0"}))
    assert emu.accepted_count == 0


def test_other_options_still_reach_the_vendor(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    with inprocess_client(emu, policy) as client:
        client.send(Message(to=TO, text="hi", options={"normalize": True, "max_parts": 3, "skip": None}))
    form = posts(emu)[0].form
    assert form["normalize"] == "1" and form["max_parts"] == "3" and "skip" not in form


# -- 3. a batched member can be re-sent safely with the key its outcome reports ------------------------


def test_a_batch_member_resent_with_its_outcome_key_is_not_sent_twice(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    emu.script(*[Fault.slow(5.0)] * 3)  # the batch lands, but every answer is too late: DeliveryUnknown
    members = [Message(to=number, text="sale") for number in numbers(3)]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(members, timeout=httpx.Timeout(10, read=0.05)))
        assert len(posts(emu)) == 3 and all(isinstance(o.error, DeliveryUnknown) for o in outcomes)
        assert all(o.error is not None and o.error.retryable for o in outcomes)
        again = [
            client.send(o.message.model_copy(update={"idempotency_key": o.error.idempotency_key}))
            for o in outcomes
            if o.error is not None
        ]
    assert all(r.deduplicated for r in again)
    assert Counter(r.to for r in emu.iter_messages()) == dict.fromkeys(numbers(3), 1)


def test_each_batch_member_outcome_and_its_errors_carry_its_own_key(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    members = [
        Message(to=numbers(2), text="x", idempotency_key="m-a"),
        Message(to=emu.invalid_number, text="x", idempotency_key="m-b"),
        Message(to=numbers(1, 5), text="x"),
    ]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(members))
    form = posts(emu)[0].form
    assert len(posts(emu)) == 1
    generated = outcomes[2].result.idempotency_key if outcomes[2].result else None
    assert form["idx"] == f"m-a--1|m-a--2|m-b|{generated}"
    assert outcomes[0].result is not None and outcomes[0].result.idempotency_key == "m-a"
    assert outcomes[1].error is not None and outcomes[1].error.idempotency_key == "m-b"


# -- 6. every bad input is a typed error before any request --------------------------------------------

BAD_MESSAGES = {
    "text-nul": {"text": "a\x00b"},
    "text-surrogate": {"text": "caf\ud83d"},
    "sender-surrogate": {"text": "hi", "sender": "Sh\udc00p"},
    "sender-nul": {"text": "hi", "sender": "Sh\x00p"},
    "key-surrogate": {"text": "hi", "idempotency_key": "k\ud800"},
    "key-nul": {"text": "hi", "idempotency_key": "k\x00"},
    "key-newline": {"text": "hi", "idempotency_key": "k\n1"},
    "option-nan": {"text": "hi", "options": {"x": math.nan}},
    "option-inf": {"text": "hi", "options": {"x": [math.inf]}},
    "option-set": {"text": "hi", "options": {"x": {1, 2}}},
    "option-bytes": {"text": "hi", "options": {"x": b"raw"}},
    "option-decimal": {"text": "hi", "options": {"x": Decimal("1.5")}},
    "option-object": {"text": "hi", "options": {"x": object()}},
    "option-naive-datetime": {"text": "hi", "options": {"x": datetime(2030, 1, 1)}},
    "option-surrogate": {"text": "hi", "options": {"x": {"y": "\udfff"}}},
    "option-key-surrogate": {"text": "hi", "options": {"\ud800": 1}},
    "option-nul": {"text": "hi", "options": {"x": "a\x00"}},
    "option-int-key": {"text": "hi", "options": {"x": {1: "a"}}},
    "template-surrogate": {"template": {"name": "t", "params": ["\ud800"]}},
    "caption-nul": {"media": {"url": "https://x.test/a.png", "caption": "\x00"}},
    "metadata-surrogate": {"text": "hi", "metadata": {"k": "\ud800"}},
}


@pytest.mark.parametrize("fields", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_bad_message_input_is_a_validation_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Message(to=TO, **fields)


@pytest.mark.parametrize("cls", PROVIDERS, ids=IDS)
def test_datetimes_in_options_are_sent_as_iso_8601_by_every_vendor(policy: RetryPolicy, cls: type[Provider]) -> None:
    emu = get_emulator(cls.name)()
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    demo = emu.demo_message(TO, "hi").model_dump(exclude_defaults=True)
    message = Message(**{**demo, "options": {"note": when, "day": date(2030, 1, 2)}})
    assert message.options == {"note": "2030-01-02T03:04:05+00:00", "day": "2030-01-02"}
    request = emu.make_provider("http://emulator.test").build_request(message, idempotency_key="k1")
    body = request.content.decode()
    assert "2030-01-02T03%3A04%3A05%2B00%3A00" in body or "2030-01-02T03:04:05+00:00" in body


CREDENTIAL = {"smsapi": "token", "clickatell": "api_key", "edna": "api_key", "mobizon": "api_key", "twilio": "auth_token"}
#: What a provider needs besides its credential (not a secret).
IDENTITY: dict[str, dict[str, str]] = {"twilio": {"account_sid": "AC" + "0" * 31 + "1"}}
BAD_CREDENTIALS = ["tok\u00e9n-value", "tok\nen-value", "token\x00value", "token\u00a0value", "tok\u200ben"]


@pytest.mark.parametrize("cls", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("credential", BAD_CREDENTIALS, ids=["accent", "newline", "nul", "nbsp", "zero-width"])
def test_a_credential_with_non_ascii_or_control_characters_is_refused_when_built(
    cls: type[Provider], credential: str
) -> None:
    argument = CREDENTIAL.get(cls.name, "service_key")
    with pytest.raises(ConfigurationError, match="non-ASCII or control") as info:
        cls(**{argument: credential}, **IDENTITY.get(cls.name, {}))
    assert credential not in str(info.value)


# -- 10. webhook secrets fail closed ---------------------------------------------------------------------

SECRET_ARGUMENT = {"edna": "webhook_key", "twilio": "auth_token"}  # Twilio signs callbacks with the Auth Token


@pytest.mark.parametrize("cls", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("secret", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
def test_an_empty_or_blank_webhook_secret_is_a_configuration_error(cls: type[Provider], secret: str) -> None:
    emu = get_emulator(cls.name)()
    with pytest.raises(ConfigurationError, match="empty"):
        emu.make_provider("http://emulator.test", **{SECRET_ARGUMENT.get(cls.name, "webhook_secret"): secret})


# -- 11. secrets in every spelling are masked --------------------------------------------------------------

ODD_KEY = "k3y+with/slash=and more&\u00e9"


def spellings_of(secret: str) -> list[str]:
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        quote(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    ]


def test_a_key_with_url_special_characters_is_masked_in_httpx_log_lines(
    policy: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    """Mobizon's key travels in the URL: httpx's INFO "HTTP Request:" line prints it percent-encoded."""
    key = "Mz+k3y/with=signs"
    provider = Mobizon(api_key=key, base_url="http://emulator.test")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"code": 2, "data": "", "message": "x"}))
    with (
        caplog.at_level(logging.DEBUG),
        Client(provider, retry=None, http_client=httpx.Client(transport=transport)) as c,
    ):
        with pytest.raises(OmnisendError):
            c.send(Message(to=TO, text="hi"))
    lines = [record.getMessage() for record in caplog.records]
    assert any("HTTP Request" in line for line in lines)
    for line in lines:
        for form in spellings_of(key):
            assert form not in line, line


@pytest.mark.parametrize("cls", PROVIDERS, ids=IDS)
def test_every_spelling_of_a_credential_echoed_by_the_vendor_is_masked(cls: type[Provider]) -> None:
    secret = "Sec+ret/with=odd&chars"
    argument = CREDENTIAL.get(cls.name, "service_key")
    provider = cls(**{argument: secret, "base_url": "http://vendor.test"}, **IDENTITY.get(cls.name, {}))
    echoed = {"message": " ".join(spellings_of(secret)), "error": 999, "code": 999, "list": [], "response": {}}
    answer = httpx.Response(500, json=echoed, request=httpx.Request("POST", "http://vendor.test"))
    with pytest.raises(OmnisendError) as info:
        provider.parse_response(answer)
    error = info.value
    shown = (str(error), repr(error), repr(error.raw), repr(error.vendor_message), repr(pickle.dumps(error)))
    for form in spellings_of(secret):
        assert not any(form in text for text in shown), form


class _BasicVendor(Provider):
    """A vendor that authenticates with HTTP Basic (as Twilio does)."""

    name = "basic_test"
    display_name = "Basic"
    default_base_url = "http://basic.test"
    errors = Smsapi.errors
    statuses = Smsapi.statuses

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        super().__init__()

    def _secrets(self) -> tuple[str, ...]:
        return (self.password,)

    def _basic_pairs(self) -> tuple[tuple[str, str], ...]:
        return ((self.user, self.password),)

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        return self.build_http_request("POST", "/send", auth=None)

    def parse_response(
        self, response: httpx.Response, *, message: Message | None = None, idempotency_key: str | None = None
    ) -> SendResult:
        raise self.http_error(response, raw=response.text)


def test_the_basic_auth_form_of_a_credential_is_masked_in_raw_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    provider = _BasicVendor("AC0123", "p4ssw0rd-secret")
    header = base64.b64encode(b"AC0123:p4ssw0rd-secret").decode()
    answer = httpx.Response(401, text=f"bad Authorization: Basic {header}", request=httpx.Request("GET", "http://x"))
    with pytest.raises(OmnisendError) as info:
        provider.parse_response(answer)
    assert header not in repr(info.value.raw) and "***" in repr(info.value.raw)
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info("HTTP Request: %s", f"Authorization: Basic {header}")
    assert all(header not in r.getMessage() for r in caplog.records)


def test_the_secret_registry_is_scoped_to_live_providers() -> None:
    provider = Smsapi(token="scoped-secret-0042")
    assert "scoped-secret-0042" in _redact.registered()
    assert provider._masks() and all(form in _redact.registered() for form in provider._masks())
    del provider
    gc.collect()
    assert "scoped-secret-0042" not in _redact.registered()


# -- 12. adapter bugs are visible to the test suite ------------------------------------------------------


class _Buggy(Smsapi):
    def parse_response(
        self, response: httpx.Response, *, message: Message | None = None, idempotency_key: str | None = None
    ) -> SendResult:
        return {}["missing"]  # type: ignore[no-any-return]

    def send_flow(self, message: Message, *, idempotency_key: str) -> Flow[SendResult]:
        yield Step(httpx.Request("GET", "http://x"), lambda r: r)
        raise KeyError("bug after a step")


def test_strict_mode_reraises_adapter_bugs_that_users_get_as_typed_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNISEND_STRICT_ADAPTERS", raising=False)
    provider = _Buggy(token="t0ken-value")
    answer = httpx.Response(200, json={}, request=httpx.Request("POST", "http://x"))
    with pytest.raises(TransportError, match="KeyError"):
        provider.parse_response(answer)
    flow = provider.send_flow(Message(to=TO, text="hi"), idempotency_key="k")
    next(flow)
    with pytest.raises(TransportError, match="internal error") as info:
        flow.send(None)
    assert info.value.accepted is None  # a step went out before the bug
    from omnisend.testing import strict_adapters

    with strict_adapters():
        with pytest.raises(KeyError):
            provider.parse_response(answer)
        flow = provider.send_flow(Message(to=TO, text="hi"), idempotency_key="k")
        next(flow)
        with pytest.raises(KeyError, match="bug after a step"):
            flow.send(None)


def test_the_strict_environment_variable_turns_strict_mode_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_STRICT_ADAPTERS", "1")
    answer = httpx.Response(200, json={}, request=httpx.Request("POST", "http://x"))
    with pytest.raises(KeyError):
        _Buggy(token="t0ken-value").parse_response(answer)
