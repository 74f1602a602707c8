"""Mobizon: tables, golden requests, the envelope, code 13, campaigns, status, webhooks, secrets."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from omnisend import (
    AuthError,
    Client,
    DeliveryStatus,
    DeliveryUnknown,
    InsufficientBalance,
    InvalidRecipient,
    Message,
    PartialFailure,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    TransportError,
    ValidationError,
    WebhookAuthError,
)
from omnisend.providers import Mobizon, Step
from omnisend.providers.base import Repeat
from omnisend.providers.mobizon import (
    BALANCE,
    CAMPAIGN_STATUSES,
    ERRORS,
    RECIPIENT_ERRORS,
    RECIPIENT_FIELD,
    STATUSES,
    WrongDomain,
)
from omnisend.testing import Fault, Reply, Request
from omnisend.testing.mobizon import MobizonEmulator
from tests.conftest import inprocess_async_client, inprocess_client, load_codes

KEY = "kz0a1b2c3d4e5f60718293a4b5c6d7e8f9012345"
BASE = "https://api.mobizon.kz"
QUERY = f"output=json&api=v1&apiKey={KEY}"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "mobizon"
CODES = load_codes("mobizon")
TO = "+77001234567"


def provider(**options: Any) -> Mobizon:
    return Mobizon(api_key=KEY, **options)


def envelope(code: object, data: object = None, message: str = "", status: int = 200, **kw: Any) -> httpx.Response:
    body = {"code": code, "data": data if data is not None else [], "message": message}
    return httpx.Response(status, json=body, request=httpx.Request("POST", f"{BASE}/service/x/y"), **kw)


def fixture(name: str) -> httpx.Response:
    return httpx.Response(200, content=(FIXTURES / name).read_bytes(), request=httpx.Request("POST", BASE))


def form(request: httpx.Request | Request) -> list[tuple[str, str]]:
    body = request.content if isinstance(request, httpx.Request) else request.body
    return parse_qsl(body.decode(), keep_blank_values=True)


class Faulty(MobizonEmulator):
    """Injects ``faults`` on the next requests whose path contains ``on`` (other requests are served)."""

    def __init__(self, on: str, *faults: Fault, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on, self.pending = on.lower(), list(faults)

    def handle(self, request: Request) -> Reply:
        if self.on in request.path.lower() and self.pending:
            self.script(self.pending.pop(0))
        return super().handle(request)


def drive(client: httpx.Client, flow: Any) -> Any:
    """Run a provider flow without retries (for flows the Client has no method for yet)."""
    step = next(flow)
    while True:
        assert isinstance(step, Step)
        try:
            step = flow.send(step.parse(client.send(step.request)))
        except StopIteration as stop:
            return stop.value


# -- tables against the vendor's code list --------------------------------------------------------


def test_every_seed_code_is_in_the_error_table() -> None:
    documented = {row["code"] for row in CODES["errors"]}
    assert set(ERRORS) == documented
    assert [row["code"] for row in CODES["success"]] == [0] and 0 not in ERRORS


def test_every_seed_status_is_mapped_with_its_finality() -> None:
    for row in CODES["statuses"]:
        assert STATUSES.normalize(row["name"]).is_final is row["final"], row["name"]
    assert {row["name"] for row in CODES["statuses"]} <= set(STATUSES)


def test_every_recipient_code_is_in_the_item_table() -> None:
    assert set(RECIPIENT_ERRORS) | {0} == {row["code"] for row in CODES["recipient_codes"]}


@pytest.mark.parametrize(("code", "entry"), list(ERRORS.items()), ids=[str(c) for c in ERRORS])
def test_error_row(code: int, entry: Any) -> None:
    with pytest.raises(entry.exc, match=r"^mobizon: .+\(code \d+, HTTP 200\)") as info:
        provider().parse_response(envelope(code, message="vendor words"))
    err = info.value
    assert type(err) is entry.exc and err.code == code and err.provider == "mobizon"
    assert err.retryable is entry.is_retryable and err.vendor_message == "vendor words"
    assert err.accepted is (None if entry.ambiguous else False)
    assert err.raw == {"code": code, "data": [], "message": "vendor words"}


@pytest.mark.parametrize(("code", "entry"), list(RECIPIENT_FIELD.items()), ids=[str(c) for c in RECIPIENT_FIELD])
def test_recipient_field_refinement_row(code: int, entry: Any) -> None:
    with pytest.raises(InvalidRecipient, match="recipient: Bad number") as info:
        provider().parse_response(envelope(code, {"recipient": ["Bad number"]}, "Validation error"))
    assert info.value.code == code and info.value.field == "recipient" and info.value.retryable is False


@pytest.mark.parametrize(("code", "entry"), list(BALANCE.items()), ids=[str(c) for c in BALANCE])
def test_balance_refinement_row(code: int, entry: Any) -> None:
    with pytest.raises(InsufficientBalance, match="Not enough funds") as info:
        provider().parse_response(envelope(code, message="Not enough funds on the balance"))
    assert info.value.code == code and info.value.retryable is False and info.value.accepted is False


@pytest.mark.parametrize(("code", "entry"), list(RECIPIENT_ERRORS.items()), ids=[str(c) for c in RECIPIENT_ERRORS])
def test_recipient_code_row(code: int, entry: Any) -> None:
    item = {"recipient": "77001234567", "code": str(code), "messageId": None}
    chunk = (TO,)
    results, items = provider()._parse_added(envelope(99, [item]), chunk=chunk)
    (result,) = results
    if entry.exc.__name__ == "DuplicateMessage":  # already in the campaign: an earlier attempt added it
        assert result.ok and result.status is DeliveryStatus.QUEUED
    else:
        assert type(result.error) is entry.exc and result.error.code == str(code)
        assert result.status is DeliveryStatus.REJECTED and result.error.retryable is entry.is_retryable
    assert items == [item]


@pytest.mark.parametrize(("value", "entry"), list(STATUSES.items()), ids=list(STATUSES))
def test_status_row(value: str, entry: Any) -> None:
    body = {"code": 0, "data": [{"id": "5", "status": value, "statusUpdateTs": "2026-01-15 11:42:08"}]}
    report = provider().parse_status(httpx.Response(200, json=body), message_id="5")
    assert report.status is entry.status and report.vendor_status == value and report.message_id == "5"
    assert (report.error is not None) is (entry.error is not None)
    assert report.timestamp == datetime(2026, 1, 15, 11, 42, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize(("value", "entry"), list(CAMPAIGN_STATUSES.items()))
def test_campaign_status_row(value: int, entry: Any) -> None:
    result = provider().parse_response(envelope(0, {"campaignId": "1", "messageId": 7, "status": value}))
    assert result.status is entry.status and result.message_id == "7"


def test_unknown_status_is_unknown_with_the_raw_value_kept() -> None:
    body = {"code": 0, "data": [{"id": "5", "status": "BRANDNEW"}]}
    report = provider().parse_status(httpx.Response(200, json=body), message_id="5")
    assert report.status is DeliveryStatus.UNKNOWN and report.vendor_status == "BRANDNEW"


def test_an_undocumented_code_keeps_its_value() -> None:
    with pytest.raises(ProviderError, match=r"mobizon: something new \(code 77, HTTP 200\)") as info:
        provider().parse_response(envelope("77", message="something new"))
    assert type(info.value) is ProviderError and info.value.code == "77" and info.value.retryable is False


def test_wrong_domain_error_pickles() -> None:
    err = ERRORS.error(13, provider="mobizon", raw={"data": "api.mobizon.ua"})
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is WrongDomain and back.raw == {"data": "api.mobizon.ua"} and str(back) == str(err)


# -- golden requests ------------------------------------------------------------------------------------


def test_golden_single_send() -> None:
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)
    message = Message(to=TO, text="Hi + 1 тест&?", sender="Shop", validity=timedelta(minutes=90), scheduled_at=when)
    request = provider().build_request(message, idempotency_key="key-1")
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/service/message/sendSmsMessage?{QUERY}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    stamp = when.strftime("%Y-%m-%d+%H%%3A%M%%3A%S")
    assert request.content.decode() == (
        "recipient=77001234567&text=Hi+%2B+1+%D1%82%D0%B5%D1%81%D1%82%26%3F&from=Shop"
        f"&params%5Bname%5D=key-1&params%5Bvalidity%5D=90&params%5BdeferredToTs%5D={stamp}"
    )
    assert dict(form(request))["text"] == "Hi + 1 тест&?"


def test_golden_campaign_create_and_options_merge() -> None:
    message = Message(to=[TO, "+77001234568"], text="Sale", options={"data": {"rateLimit": 10, "shortenLinks": True}})
    request = provider().build_request(message, idempotency_key="k")
    assert str(request.url) == f"{BASE}/service/campaign/create?{QUERY}"
    assert form(request) == [
        ("data[text]", "Sale"),
        ("data[name]", "k"),
        ("data[type]", "2"),
        ("data[rateLimit]", "10"),
        ("data[shortenLinks]", "1"),
    ]


def test_golden_single_send_with_options() -> None:
    message = Message(to=TO, text="a b", options={"params": {"shortenLinks": True}, "extra": "x"})
    request = provider().build_request(message, idempotency_key="k")
    assert request.content == b"recipient=77001234567&text=a+b&params%5Bname%5D=k&params%5BshortenLinks%5D=1&extra=x"


def test_golden_campaign_steps(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator(background_adds=True, task_polls=1)
    with inprocess_client(emulator, policy) as client:
        client.send(Message(to=[TO, "+77001234568"], text="Sale", idempotency_key="k"))
    create, add, poll, send = emulator.requests
    assert [(r.method, r.path) for r in emulator.requests] == [
        ("POST", "/service/campaign/create"),
        ("POST", "/service/campaign/addRecipients"),
        ("POST", "/service/taskqueue/getStatus"),
        ("POST", "/service/campaign/send"),
    ]
    assert all(r.query == {"output": "json", "api": "v1", "apiKey": emulator.credentials[0]} for r in emulator.requests)
    assert create.body == b"data%5Btext%5D=Sale&data%5Bname%5D=k&data%5Btype%5D=2"
    assert add.body == b"id=245455096&recipients%5B0%5D=77001234567&recipients%5B1%5D=77001234568"
    assert poll.body == b"id=1" and send.body == b"id=245455096"


def test_golden_add_recipients_send_and_status_requests() -> None:
    p = provider()
    add = p.build_call("campaign", "addRecipients", {"id": "9", "recipients": ["77001234567", "77001234568"]})
    assert add.content == b"id=9&recipients%5B0%5D=77001234567&recipients%5B1%5D=77001234568"
    assert str(p.build_status_request("12111324").url) == f"{BASE}/service/message/getSMSStatus?{QUERY}"
    assert p.build_status_request("12111324").content == b"ids%5B0%5D=12111324"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [("api.mobizon.ua", "https://api.mobizon.ua"), ("https://api.mobizon.com.br/", "https://api.mobizon.com.br")],
)
def test_base_url_takes_a_bare_host(base_url: str, expected: str) -> None:
    assert str(provider(base_url=base_url).build_status_request("1").url).startswith(f"{expected}/service/")


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_MOBIZON_API_KEY", KEY)
    monkeypatch.setenv("OMNISEND_MOBIZON_BASE_URL", "api.mobizon.gmbh")
    assert Mobizon().base_url == "https://api.mobizon.gmbh"


# -- the envelope ---------------------------------------------------------------------------------


def test_success_fixture_and_numbers_as_strings() -> None:
    result = provider().parse_response(fixture("send_ok.json"), message=Message(to=TO, text="x"), idempotency_key="k")
    assert result.message_id == "12111324" and result.status is DeliveryStatus.QUEUED
    assert result.recipients[0].to == TO and result.raw["data"]["campaignId"] == "1759377"
    as_string = provider().parse_response(envelope("0", {"messageId": 5, "status": "2"}))
    assert as_string.message_id == "5"


def test_scheduled_send_reads_scheduled() -> None:
    message = Message(to=TO, text="x", scheduled_at=datetime.now(timezone.utc) + timedelta(hours=3))
    result = provider().parse_response(fixture("send_ok.json"), message=message)
    assert result.status is DeliveryStatus.SCHEDULED


def test_code_zero_without_message_id_is_a_failure() -> None:
    with pytest.raises(ProviderError, match="without a messageId") as info:
        provider().parse_response(envelope(0, {"campaignId": "1"}))
    assert info.value.accepted is False and info.value.retryable is False


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [(500, 30, RateLimited), (502, 8, AuthError), (403, "9", PermissionDenied), (503, 0, None)],
)
def test_the_envelope_decides_whatever_the_http_status(status: int, code: object, cls: Any) -> None:
    answer = envelope(code, {"messageId": "1"}, "words", status=status)
    if cls is None:
        assert provider().parse_response(answer).message_id == "1"
        return
    with pytest.raises(cls, match=rf"mobizon: words \(code {code}, HTTP {status}\)") as info:
        provider().parse_response(answer)
    assert info.value.code == code


def test_answers_without_an_envelope() -> None:
    html = httpx.Response(502, text="<html>bad gateway</html>", headers={"content-type": "text/html"})
    with pytest.raises(ServiceUnavailable, match="HTTP 502"):
        provider().parse_response(html)
    with pytest.raises(TransportError, match="not valid JSON") as info:
        provider().parse_response(httpx.Response(200, text="<html>"))
    assert info.value.accepted is None
    with pytest.raises(TransportError, match="not the {code, data, message} envelope") as info:
        provider().parse_response(httpx.Response(200, json=[1, 2]))
    assert info.value.raw == [1, 2] and info.value.accepted is None  # the body kept for support
    with pytest.raises(TransportError, match="not the {code, data, message} envelope") as info:
        provider().parse_response(httpx.Response(200, json={"echo": f"key {KEY}"}))
    assert isinstance(info.value.raw, dict) and set(info.value.raw) == {"echo"} and KEY not in str(info.value.raw)


def test_validation_error_keeps_per_field_messages() -> None:
    with pytest.raises(
        ValidationError, match=r"Erro de validação: text: O texto não pode ficar em branco\.; validity: "
    ) as info:
        provider().parse_response(fixture("validation_fields.json"))
    err = info.value
    assert type(err) is ValidationError and err.field == "text" and err.code == "1"
    assert err.raw["data"]["validity"] == ["Valor inválido."] and err.vendor_message == "Erro de validação"


def test_validation_error_on_the_recipient_is_an_invalid_recipient() -> None:
    with pytest.raises(InvalidRecipient, match="recipient: Номер получателя указан неверно") as info:
        provider().parse_response(fixture("validation_recipient.json"))
    assert info.value.field == "recipient" and info.value.code == 1


@pytest.mark.parametrize(
    ("code", "message", "data"),
    [
        (15, "Недостаточно средств на балансе", None),
        (1, "Ошибка валидации", {"recipient": ["Недостатньо коштів"]}),
        (12, "Saldo insuficiente", None),
        (999, "Nicht genügend Guthaben", None),
        ("15", "Insufficient balance", None),
    ],
)
def test_insufficient_balance_is_detected_from_the_text(code: object, message: str, data: object) -> None:
    with pytest.raises(InsufficientBalance) as info:
        provider().parse_response(envelope(code, data, message))
    assert info.value.code == code and info.value.vendor_message == message and info.value.retryable is False


@pytest.mark.parametrize(("code", "cls"), [(12, ValidationError), (8, AuthError), (3, ServiceUnavailable)])
def test_no_balance_guess_without_the_words_or_outside_the_codes(code: int, cls: type[Exception]) -> None:
    text = "Too many ids" if code == 12 else "balance of the account"
    with pytest.raises(cls) as info:
        provider().parse_response(envelope(code, message=text))
    assert not isinstance(info.value, InsufficientBalance)


# -- bad input: refused before any request -----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "match", "field"),
    [
        ({"validity": timedelta(minutes=59)}, "a validity outside 60 to 1440 minutes", "validity"),
        ({"validity": timedelta(minutes=1441)}, "a validity outside 60 to 1440 minutes", "validity"),
        ({"scheduled_at": timedelta(minutes=30)}, "less than 1 hour or more than 14 days ahead", "scheduled_at"),
        (
            {"scheduled_at": timedelta(days=14, minutes=5)},
            "less than 1 hour or more than 14 days ahead",
            "scheduled_at",
        ),
        ({"sender": "ThisIsTooLong"}, "sender 'ThisIsTooLong' is not allowed", "sender"),
        ({"media": {"url": "https://x.test/a.png"}}, "Mobizon does not support media or templates", "media"),
        ({"channel": "whatsapp"}, "Mobizon does not support the 'whatsapp' channel", None),
    ],
)
def test_bad_input_is_refused_before_any_request(
    changes: dict[str, Any], match: str, field: str | None, policy: RetryPolicy
) -> None:
    values: dict[str, Any] = {"to": TO, "text": "hello", **changes}
    if isinstance(values.get("scheduled_at"), timedelta):
        values["scheduled_at"] = datetime.now(timezone.utc) + values["scheduled_at"]
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(ValidationError, match=match) as info:
            client.send(Message(**values))
        with pytest.raises(ValidationError, match=match):
            client.send(Message(**{**values, "to": [TO, "+77001234568"]}))
    assert info.value.field == field and info.value.code is None and info.value.provider == "mobizon"
    assert emulator.requests == []


@pytest.mark.parametrize("number", ["77001234567", "+7 700", "+0123456789", "phone"])
def test_a_number_that_is_not_e164_is_refused(number: str, policy: RetryPolicy) -> None:
    with pytest.raises(ValidationError, match="not an E.164 number") as info:
        Message(to=number, text="hi")
    assert info.value.field == "to"
    emulator = MobizonEmulator()  # a message built without validation is still checked by the adapter
    unchecked = Message.model_construct(to=number, text="hi")
    with inprocess_client(emulator, policy) as client, pytest.raises(InvalidRecipient, match="not an E.164") as bad:
        client.send(unchecked)
    assert bad.value.provider == "mobizon" and bad.value.field == "to" and emulator.requests == []


# -- the client against the emulator: send, retries, no double send -----------------------------------


def test_send_through_the_emulator_keeps_text_and_key(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=TO, text="1+1 = 2 ✓", sender="Shop", idempotency_key="order-7"))
    (record,) = emulator.iter_messages()
    assert record.text == "1+1 = 2 ✓" and record.to == TO and record.idempotency_key == "order-7"
    assert result.message_id == record.id and result.idempotency_key == "order-7" and result.attempts == 1


def test_rate_limit_is_retried_with_the_same_request(policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = MobizonEmulator()
    emulator.script(Fault.vendor_error(30))
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=TO, text="hi"))
    first, second = emulator.requests
    assert first.body == second.body and f"params%5Bname%5D={result.idempotency_key}".encode() in first.body
    assert result.attempts == 2 and len(sleeps) == 1 and emulator.accepted_count == 1


@pytest.mark.parametrize("code", [3, 10, 999, 100])
def test_ambiguous_codes_on_a_send_are_not_retried(code: int, policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    emulator.script(Fault.vendor_error(code))
    with (
        inprocess_client(emulator, policy) as client,
        pytest.raises(DeliveryUnknown, match="cannot de-duplicate") as info,
    ):
        client.send(Message(to=TO, text="hi"))
    assert info.value.code == code and info.value.attempts == 1 and info.value.idempotency_key
    assert len(emulator.requests) == 1


@pytest.mark.parametrize(
    "fault",
    [Fault.drop_after_accept(), Fault.truncated(), Fault.http_error(500, accept=True), Fault.slow(5.0)],
    ids=["drop", "truncated", "500-after-accept", "slow"],
)
def test_ambiguous_failures_raise_delivery_unknown_exactly_once(fault: Fault, policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    emulator.script(fault)
    with inprocess_client(emulator, policy) as client, pytest.raises(DeliveryUnknown) as info:
        client.send(Message(to=TO, text="hi"), timeout=0.05)
    assert info.value.retryable is False and info.value.attempts == 1
    assert emulator.accepted_count == 1 and emulator.duplicates() == 0


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [(Fault.refuse(), 2), (Fault.http_error(503), 2), (Fault.wrong_content_type(), 1)],
    ids=["refused", "503", "wrong-content-type"],
)
def test_failures_where_nothing_was_sent_are_retried(fault: Fault, attempts: int, policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    emulator.script(fault)
    with inprocess_client(emulator, policy) as client:
        assert client.send(Message(to=TO, text="hi")).attempts == attempts
    assert emulator.accepted_count == 1


@pytest.mark.parametrize(
    ("fault", "match"),
    [(Fault.reset(), "no answer"), (Fault.huge_body(300_000), "HTTP 502")],
    ids=["reset", "huge-502"],
)
def test_failures_the_client_cannot_tell_apart_are_delivery_unknown(
    fault: Fault, match: str, policy: RetryPolicy
) -> None:
    emulator = MobizonEmulator()  # the emulator did not process these, but a client cannot know that
    emulator.script(fault)
    with inprocess_client(emulator, policy) as client, pytest.raises(DeliveryUnknown, match=match):
        client.send(Message(to=TO, text="hi"))
    assert emulator.accepted_count == 0 and len(emulator.requests) == 1


def test_typed_errors_from_the_emulator(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(InvalidRecipient, match="recipient: Incorrect recipient number"):
            client.send(Message(to=emulator.invalid_number, text="hi"))
        emulator.balance = 0
        with pytest.raises(InsufficientBalance, match=r"Insufficient funds .+\(code 15, HTTP 200\)") as info:
            client.send(Message(to=TO, text="hi"))
    assert info.value.attempts == 1 and emulator.accepted_count == 0
    wrong = Mobizon(api_key="x" * 40, base_url="http://emulator.test")
    with Client(wrong, http_client=httpx.Client(transport=emulator.transport())) as client:
        with pytest.raises(AuthError, match=r"mobizon: .+\(code 8, HTTP 200\)"):
            client.send(Message(to=TO, text="hi"))


def test_the_emulator_speaks_the_envelope_for_bad_calls() -> None:
    emulator = MobizonEmulator()
    p = emulator.make_provider("http://emulator.test")
    with httpx.Client(transport=emulator.transport()) as http:
        assert http.send(p.build_call("nosuch", "thing")).json()["code"] == 4
        assert http.send(p.build_call("message", "nosuch")).json()["code"] == 5
        bad = httpx.Request("POST", p.build_call("user", "getOwnBalance").url.copy_set_param("output", "xml"))
        assert http.send(bad).json()["code"] == 6
        assert http.send(p.build_call("user", "getOwnBalance")).json()["data"] == {
            "balance": "1000.0000",
            "currency": "KZT",
        }
        too_many = p.build_call("message", "getSMSStatus", {"ids": [str(i) for i in range(101)]})
        assert http.send(too_many).json()["code"] == 12
        assert http.send(p.build_call("message", "getSMSStatus")).json()["code"] == 2


# -- code 13: the wrong domain --------------------------------------------------------------------------


def test_wrong_domain_is_followed_once_and_remembered(policy: RetryPolicy, caplog: pytest.LogCaptureFixture) -> None:
    emulator = MobizonEmulator(home_domain="api.mobizon.ua")
    caplog.set_level(logging.WARNING, logger="omnisend")
    with inprocess_client(emulator, policy) as client:
        first = client.send(Message(to=TO, text="hi"))
        second = client.send(Message(to=TO, text="again"))
        report = client.get_status(second.message_id or "")
    assert first.attempts == 2 and second.attempts == 1 and report.status is DeliveryStatus.QUEUED
    assert client.provider.home_url == "https://api.mobizon.ua" and client.provider.base_url == "http://emulator.test"
    assert [r.header("host") for r in emulator.requests] == ["emulator.test"] + ["api.mobizon.ua"] * 3
    (warning,) = [r for r in caplog.records if r.name == "omnisend"]
    text = warning.getMessage()
    assert "emulator.test does not serve this account, re-sent to api.mobizon.ua" in text
    assert "base_url='https://api.mobizon.ua'" in text and emulator.credentials[0] not in text
    assert emulator.accepted_count == 2


@pytest.mark.parametrize(
    ("data", "host"),
    [
        ("api.mobizon.com.br", "api.mobizon.com.br"),
        ("https://api.mobizon.gmbh/service/", "api.mobizon.gmbh"),
        ({"domain": "API.MOBIZON.UZ"}, "api.mobizon.uz"),
    ],
)
def test_wrong_domain_shapes_that_are_followed(data: object, host: str, policy: RetryPolicy) -> None:
    with respx.mock(assert_all_called=True) as router:
        router.post(f"{BASE}/service/message/sendSmsMessage").mock(return_value=envelope(13, data))
        moved = router.post(f"https://{host}/service/message/sendSmsMessage").mock(
            return_value=envelope(0, {"messageId": "1", "status": 2})
        )
        with Client(provider(), retry=policy) as client:
            assert client.send(Message(to=TO, text="hi")).message_id == "1"
    assert moved.calls.last.request.url.params["apiKey"] == KEY


@pytest.mark.parametrize(
    "data",
    [
        "api.mobizon.evil.com",
        "https://evil.example/api.mobizon.kz",
        "api.mobizon.kz.evil.com",
        {"domain": "x.net"},
        None,
        13,
    ],
)
def test_wrong_domain_never_sends_the_key_elsewhere(data: object, policy: RetryPolicy) -> None:
    with respx.mock(assert_all_mocked=True) as router:
        route = router.post(f"{BASE}/service/message/sendSmsMessage").mock(return_value=envelope(13, data))
        with Client(provider(), retry=policy) as client, pytest.raises(WrongDomain, match="code 13") as info:
            client.send(Message(to=TO, text="hi"))
        assert route.call_count == 1 and len(router.calls) == 1 and client.provider.base_url == BASE
    assert info.value.accepted is False and info.value.retryable is False


def test_wrong_domain_is_followed_at_most_once(policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{BASE}/service/message/getSMSStatus").mock(return_value=envelope(13, "api.mobizon.ua"))
        moved = router.post("https://api.mobizon.ua/service/message/getSMSStatus").mock(
            return_value=envelope(13, "api.mobizon.kz")
        )
        with Client(provider(), retry=policy) as client, pytest.raises(WrongDomain):
            client.get_status("12")
        assert moved.call_count == 1 and len(router.calls) == 2


@pytest.mark.parametrize("base_url", ["https://user:secret@proxy.example", "https://proxy.example/mobizon/"])
def test_wrong_domain_resends_only_the_call_never_the_proxys_credentials_or_path(
    base_url: str, policy: RetryPolicy
) -> None:
    """The re-sent call carries its path, query (the key) and body to the home domain, and nothing
    of the configured host: no userinfo, no Basic header made from it, no path prefix."""
    with respx.mock() as router:
        router.route(host="proxy.example").mock(return_value=envelope(13, "api.mobizon.ua"))
        moved = router.post("https://api.mobizon.ua/service/message/getSMSStatus").mock(
            return_value=envelope(0, [{"id": "12", "status": "DELIVRD"}])
        )
        with Client(provider(base_url=base_url), retry=policy) as client:
            assert client.get_status("12").status is DeliveryStatus.DELIVERED
        sent = moved.calls.last.request
    assert str(sent.url) == f"https://api.mobizon.ua/service/message/getSMSStatus?{QUERY}"
    assert "authorization" not in sent.headers and sent.headers["host"] == "api.mobizon.ua"
    assert sent.content == b"ids%5B0%5D=12" and b"secret" not in sent.url.raw_path


def test_scripted_wrong_domain_without_a_home_domain_is_the_typed_error(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    emulator.script(Fault.vendor_error(13))
    with inprocess_client(emulator, policy) as client, pytest.raises(WrongDomain, match=r"\(code 13, HTTP 200\)"):
        client.send(Message(to=TO, text="hi"))
    assert client.provider.base_url == "http://emulator.test" and len(emulator.requests) == 1


def test_wrong_domain_not_followed_when_switched_off(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator(home_domain="api.mobizon.ua")
    with inprocess_client(emulator, policy, follow_domain_redirect=False) as client, pytest.raises(WrongDomain):
        client.send(Message(to=TO, text="hi"))
    assert len(emulator.requests) == 1


@pytest.mark.anyio
async def test_wrong_domain_async(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator(home_domain="api.mobizon.com.br")
    async with inprocess_async_client(emulator, policy) as client:
        result = await client.send(Message(to=[TO, "+77001234568"], text="hi"))
    assert result.attempts == 4 and client.provider.home_url == "https://api.mobizon.com.br"
    assert client.provider.base_url == "http://emulator.test"  # configured value, never rewritten mid-send
    assert emulator.accepted_count == 2


# -- campaigns: many recipients ---------------------------------------------------------------------


def test_campaign_partial_failure(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator(blacklist=("+77001234569",))
    numbers = [TO, "+77001234568", emulator.invalid_number, "+77001234569"]
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=numbers, text="Sale", sender="Shop", idempotency_key="camp-1"))
    paths = [r.path for r in emulator.requests]
    assert paths == ["/service/campaign/create", "/service/campaign/addRecipients", "/service/campaign/send"]
    assert [r.status for r in result.recipients] == [DeliveryStatus.QUEUED] * 2 + [DeliveryStatus.REJECTED] * 2
    assert [type(r.error).__name__ for r in result.failed] == ["InvalidRecipient", "InvalidRecipient"]
    assert [r.error.code for r in result.failed if r.error] == [7, 5]
    assert {r.id for r in emulator.iter_messages()} == {r.message_id for r in result.succeeded}
    assert all(r.idempotency_key == "camp-1" for r in emulator.iter_messages())
    with pytest.raises(PartialFailure, match="2 of 4 recipients rejected") as info:
        result.raise_for_failures()
    assert info.value.failed == list(result.failed)


def test_campaign_partial_from_a_vendor_fixture(policy: RetryPolicy) -> None:
    with respx.mock(assert_all_called=True) as router:
        router.post(f"{BASE}/service/campaign/create").mock(return_value=envelope(0, "77"))
        add = router.post(f"{BASE}/service/campaign/addRecipients").mock(return_value=fixture("add_partial.json"))
        send = router.post(f"{BASE}/service/campaign/send").mock(return_value=envelope(0, 1))
        with Client(provider(), retry=policy) as client:
            result = client.send(Message(to=[TO, "+77001234568"], text="Sale"))
    assert form(add.calls.last.request)[0] == ("id", "77") and form(send.calls.last.request) == [("id", "77")]
    assert result.message_id == "12111330" and result.status is DeliveryStatus.QUEUED
    (failed,) = result.failed
    assert failed.to == "+77001234568" and isinstance(failed.error, InvalidRecipient) and failed.error.code == "5"


def test_campaign_all_rejected_raises_with_per_item_reasons(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator(blacklist=("+77001234568",))
    with inprocess_client(emulator, policy) as client, pytest.raises(InvalidRecipient) as info:
        client.send(Message(to=[emulator.invalid_number, "+77001234568", "+77000000001"], text="x"))
    err = info.value
    assert str(err).startswith("mobizon: none of the 3 recipients was added: 2× The operator or country")
    assert "1× The number is on the user's or the system stop list." in str(err) and err.code == 99
    assert [i["code"] for i in err.raw["data"]] == [7, 5, 7] and err.accepted is False
    assert [r.path for r in emulator.requests][-1] == "/service/campaign/addRecipients"
    assert emulator.accepted_count == 0


def test_campaign_chunks_of_500(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    numbers = [f"+7701{n:07d}" for n in range(1201)]
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=numbers, text="x"))
    adds = [r for r in emulator.requests if r.path.endswith("addRecipients")]
    assert [len([k for k, _ in form(r) if k.startswith("recipients")]) for r in adds] == [500, 500, 201]
    assert len(result.succeeded) == 1201 and emulator.accepted_count == 1201


def test_ambiguous_add_is_retried_and_lands_once(policy: RetryPolicy) -> None:
    emulator = Faulty("addRecipients", Fault.drop_after_accept())
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=[TO, "+77001234568"], text="x"))
    assert result.attempts == 4 and len(result.succeeded) == 2
    assert emulator.accepted_count == 2 and emulator.duplicates() == 0


def test_ambiguous_campaign_send_is_delivery_unknown(policy: RetryPolicy) -> None:
    emulator = Faulty("campaign/send", Fault.drop_after_accept())
    with inprocess_client(emulator, policy) as client, pytest.raises(DeliveryUnknown) as info:
        client.send(Message(to=[TO, "+77001234568"], text="x"))
    assert info.value.attempts == 3 and emulator.accepted_count == 2 and emulator.duplicates() == 0


def test_a_failure_before_campaign_send_says_nothing_went_out(policy: RetryPolicy) -> None:
    emulator = Faulty("addRecipients", *[Fault.drop_after_accept()] * 3)
    with inprocess_client(emulator, policy) as client, pytest.raises(TransportError, match="was never sent") as info:
        client.send(Message(to=[TO, "+77001234568"], text="x"))
    assert not isinstance(info.value, DeliveryUnknown) and info.value.accepted is False
    assert emulator.accepted_count == 0


def test_only_campaign_send_can_send_the_steps_before_it_send_nothing() -> None:
    """create, addRecipients and the task polls are ``Repeat.PREPARE``: the engine's verdict makes
    their failures "certainly not sent"; only campaign/send may leave the outcome open."""
    flow = provider().send_flow(Message(to=[TO, "+77001234568"], text="x"), idempotency_key="k")
    create = next(flow)
    add = flow.send("77")
    poll = flow.send("31")  # a background add: its task is polled
    send = flow.send({"status": "2"})
    steps = [(s.request.url.path.rsplit("/service/", 1)[1], s.repeat) for s in (create, add, poll, send)]
    assert steps == [
        ("campaign/create", Repeat.PREPARE),
        ("campaign/addRecipients", Repeat.PREPARE),
        ("taskqueue/getStatus", Repeat.PREPARE),
        ("campaign/send", Repeat.ONCE),
    ]


def test_an_ambiguous_vendor_code_before_campaign_send_says_nothing_went_out(policy: RetryPolicy) -> None:
    with respx.mock() as router:
        create = router.post(f"{BASE}/service/campaign/create").mock(return_value=envelope(3, None))
        with (
            Client(provider(), retry=policy) as client,
            pytest.raises(ServiceUnavailable, match="nothing went out") as info,
        ):
            client.send(Message(to=[TO, "+77001234568"], text="x"))
    assert create.call_count == 3  # retried: a repeat of create sends nothing
    assert info.value.accepted is False and info.value.code == 3 and info.value.attempts == 3


def test_background_add_is_polled_once_a_second(policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = MobizonEmulator(background_adds=True, task_polls=3)
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=[TO, "+77001234568"], text="x"))
    polls = [r for r in emulator.requests if r.path == "/service/taskqueue/getStatus"]
    assert len(polls) == 3 and sleeps == [1.0, 1.0, 1.0]
    assert [r.status for r in result.recipients] == [DeliveryStatus.QUEUED] * 2 and emulator.accepted_count == 2


def test_background_add_gives_up_after_a_bounded_number_of_polls(policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = MobizonEmulator(background_adds=True, task_polls=10_000)
    with (
        inprocess_client(emulator, policy) as client,
        pytest.raises(ServiceUnavailable, match="still running after 60"),
    ):
        client.send(Message(to=[TO, "+77001234568"], text="x"))
    assert sleeps == [1.0] * 60 and emulator.accepted_count == 0


def test_rejected_background_task(policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{BASE}/service/campaign/create").mock(return_value=envelope(0, 5))
        router.post(f"{BASE}/service/campaign/addRecipients").mock(return_value=envelope(100, "31"))
        router.post(f"{BASE}/service/taskqueue/getStatus").mock(
            return_value=envelope(0, {"progress": "0", "status": "3"})
        )
        with Client(provider(), retry=policy) as client, pytest.raises(ProviderError, match="task 31 was rejected"):
            client.send(Message(to=[TO, "+77001234568"], text="x"))
        assert [c.request.url.path for c in router.calls][-1] == "/service/taskqueue/getStatus"


def test_step_delay_uses_time_sleep_without_a_policy_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []
    monkeypatch.setattr("omnisend.client.time.sleep", waited.append)
    emulator = MobizonEmulator(background_adds=True, task_polls=1)
    with inprocess_client(emulator, RetryPolicy(max_attempts=1)) as client:
        client.send(Message(to=[TO, "+77001234568"], text="x"))
    assert waited == [1.0]


@pytest.mark.anyio
async def test_campaign_and_background_polls_async(policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = MobizonEmulator(background_adds=True, task_polls=2)
    async with inprocess_async_client(emulator, policy) as client:
        result = await client.send(Message(to=[TO, "+77001234568"], text="x"))
        report = await client.get_status(next(emulator.iter_messages()).id)
    assert len(result.succeeded) == 2 and sleeps == [1.0, 1.0] and report.status is DeliveryStatus.QUEUED


# -- status lookups -----------------------------------------------------------------------------------


def test_get_status_and_retries_on_reads(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client:
        sent = client.send(Message(to=TO, text="hi"))
        emulator.set_status("DELIVRD")
        emulator.script(Fault.vendor_error(999), Fault.drop_after_accept())
        report = client.get_status(sent.message_id or "")
    assert report.status is DeliveryStatus.DELIVERED and report.vendor_status == "DELIVRD"
    assert report.message_id == sent.message_id and report.timestamp is not None
    assert [r.path for r in emulator.requests].count("/service/message/getSMSStatus") == 3


def test_status_fixture_and_an_id_left_out() -> None:
    report = provider().parse_status(fixture("status.json"), message_id="12111324")
    assert report.status is DeliveryStatus.DELIVERED and report.timestamp == datetime(
        2021, 9, 4, 13, 28, 41, tzinfo=timezone.utc
    )
    missing = provider().parse_status(fixture("status.json"), message_id="404")
    assert missing.status is DeliveryStatus.UNKNOWN and missing.message_id == "404" and missing.vendor_status is None
    assert missing.error is not None and missing.error.error_class == "NotFound"


def test_status_answer_items_without_an_id_and_odd_shapes() -> None:
    """An item naming no id matches nothing (the id asked reads UNKNOWN); the start time stands in
    for a missing update time; ``data`` that is not a list of objects is a shape error, never a guess."""
    items = [{"status": "DELIVRD"}, {"id": "7", "status": "ACCEPTD", "startSendTs": "2021-09-04 13:00:00"}]
    assert [r.message_id for r in provider().parse_statuses(envelope(0, items), message_ids=["5", "7"])] == ["7"]
    missing, sent = (provider().parse_status(envelope(0, items), message_id=i) for i in ("5", "7"))
    assert missing.status is DeliveryStatus.UNKNOWN and missing.error is not None
    assert sent.status is DeliveryStatus.SENT and sent.timestamp == datetime(2021, 9, 4, 13, tzinfo=timezone.utc)
    for odd in ({"id": "7", "status": "DELIVRD"}, ["7"]):
        with pytest.raises(TransportError, match="expected data to be a list of objects") as caught:
            provider().parse_status(envelope(0, odd), message_id="7")
        assert caught.value.accepted is None


def test_account_timezone_converts_times_to_utc() -> None:
    p = provider(account_timezone=timezone(timedelta(hours=5)))
    report = p.parse_status(fixture("status.json"), message_id="12111324")
    assert report.timestamp == datetime(2021, 9, 4, 8, 28, 41, tzinfo=timezone.utc)
    when = datetime(2030, 1, 1, 10, 0, tzinfo=timezone.utc)
    plain = p.build_request(Message(to=TO, text="x"), idempotency_key="k")
    assert form(plain) == [("recipient", "77001234567"), ("text", "x"), ("params[name]", "k")]
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)
    deferred = dict(form(p.build_request(Message(to=TO, text="x", scheduled_at=soon), idempotency_key="k")))
    assert deferred["params[deferredToTs]"] == f"{soon.replace(tzinfo=None) + timedelta(hours=5):%Y-%m-%d %H:%M:%S}"
    with pytest.raises(ValidationError):  # 2030 is far more than 14 days ahead
        p.build_request(Message(to=TO, text="x", scheduled_at=when), idempotency_key="k")


def test_statuses_in_batches_of_100_with_missing_ids_reported() -> None:
    emulator = MobizonEmulator()
    p = emulator.make_provider("http://emulator.test")
    with Client(p, http_client=httpx.Client(transport=emulator.transport())) as client:
        sent = client.send(Message(to=[f"+7701{n:07d}" for n in range(150)], text="x"))
    ids = [r.message_id or "" for r in sent.recipients] + ["1", "2"]
    emulator.requests.clear()
    with httpx.Client(transport=emulator.transport()) as http:
        reports = drive(http, p.statuses_flow(ids))
    sizes = [len(form(r)) for r in emulator.requests]
    assert sizes == [100, 52] and [r.message_id for r in reports] == ids
    assert {r.status for r in reports[:150]} == {DeliveryStatus.QUEUED}
    assert [r.status for r in reports[150:]] == [DeliveryStatus.UNKNOWN] * 2


def test_empty_status_id_is_refused(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client, pytest.raises(ValidationError, match="message_id is empty"):
        client.get_status(" ")
    assert emulator.requests == []


# -- webhooks ---------------------------------------------------------------------------------------


def signed(event: dict[str, Any], secret: str) -> bytes:
    text = f"{event['eventId']}|{event['attempt']}|{event['eventCreateTs']}|{secret}"
    return json.dumps({**event, "sign": hashlib.sha1(text.encode()).hexdigest()}).encode()


WEBHOOK = json.loads((FIXTURES / "webhook_delivered.json").read_text())


def test_webhook_fixture_without_a_secret() -> None:
    (report,) = provider().parse_webhook(body=json.dumps(WEBHOOK))
    assert report.status is DeliveryStatus.DELIVERED and report.message_id == "169275418"
    assert report.recipient == "+380737893456" and report.event_id == "26" and report.vendor_status == "DELIVRD"
    assert report.timestamp == datetime(2026, 1, 15, 11, 42, 8, tzinfo=timezone.utc)


def test_webhook_signature_is_checked_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    p = provider(webhook_secret="s3cret-value")
    (report,) = p.parse_webhook(body=signed(WEBHOOK, "s3cret-value"))
    assert report.status is DeliveryStatus.DELIVERED and len(calls) == 1
    with pytest.raises(WebhookAuthError, match="sign is missing or does not match") as info:
        p.parse_webhook(body=signed(WEBHOOK, "other"))
    assert info.value.provider == "mobizon" and "s3cret-value" not in repr(info.value)
    with pytest.raises(WebhookAuthError, match="sign is missing"):
        p.parse_webhook(body=json.dumps(WEBHOOK))
    with pytest.raises(WebhookAuthError, match="sign is missing"):
        p.parse_webhook(
            body=signed({**WEBHOOK, "attempt": 2}, "s3cret-value").replace(b'"attempt": 2', b'"attempt": 3')
        )


def test_webhook_other_events_and_bad_bodies() -> None:
    assert provider().parse_webhook(body=json.dumps({**WEBHOOK, "eventType": "form-submission"})) == []
    with pytest.raises(ValidationError, match="not a JSON webhook event"):
        provider().parse_webhook(body=b"eventId=1&status=DELIVRD")
    with pytest.raises(ValidationError, match="holds no status event"):
        provider().parse_webhook(body=b"[1]")
    with pytest.raises(ValidationError, match="the Mobizon event names no message id"):
        provider().parse_webhook(body=json.dumps({**WEBHOOK, "data": "x"}))


def test_emulator_webhooks_for_delivered_and_failed(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client:
        sent = client.send(Message(to=TO, text="hi"))
    p = client.provider
    (ok,) = p.parse_webhook(**emulator.deliver(sent.message_id or ""))
    (bad,) = p.parse_webhook(**emulator.deliver(sent.message_id or "", delivered=False))
    assert ok.status is DeliveryStatus.DELIVERED and bad.status is DeliveryStatus.UNDELIVERED and bad.status.is_final
    assert bad.error is not None and bad.error.error_class == "DeliveryFailed" and ok.event_id != bad.event_id
    assert emulator.webhook_secret and emulator.webhook_secret not in repr(ok.raw)


# -- secrets ----------------------------------------------------------------------------------------


def test_the_key_is_in_no_error_repr_or_raw(policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{BASE}/service/message/sendSmsMessage").mock(
            return_value=envelope(8, {"apiKey": KEY}, f"Wrong key {KEY}")
        )
        with Client(provider(), retry=policy) as client, pytest.raises(AuthError) as info:
            client.send(Message(to=TO, text="hi"))
    err = info.value
    for text in (str(err), repr(err), repr(err.raw), repr(err.vendor_message), repr(client), repr(client.provider)):
        assert KEY not in text
    assert err.vendor_message == "Wrong key ***"


@pytest.mark.tcp
def test_no_log_record_carries_the_key_over_tcp(
    serve: Any, policy: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = MobizonEmulator(home_domain=None)
    server = serve(emulator)
    key = emulator.credentials[0]
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "omnisend"):
        caplog.set_level(logging.DEBUG, logger=name)
    emulator.script(Fault.vendor_error(30))
    with Client(emulator.make_provider(server.base_url), retry=policy) as client:
        sent = client.send(Message(to=TO, text="hi"))
        client.get_status(sent.message_id or "")
    names = {r.name for r in caplog.records}
    assert "httpx" in names and any(n.startswith("httpcore") for n in names) and "omnisend" in names
    assert any("apiKey=***" in r.getMessage() for r in caplog.records if r.name == "httpx")
    for record in caplog.records:
        assert key not in record.getMessage(), record.name
    assert key not in caplog.text


# -- over real TCP: one test per behaviour class ----------------------------------------------------------


@pytest.mark.tcp
def test_tcp_success_typed_error_retry_and_ambiguous(serve: Any, policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = MobizonEmulator()
    server = serve(emulator)
    with Client(emulator.make_provider(server.base_url), retry=policy) as client:
        single = client.send(Message(to=TO, text="Привет + hi"))
        bulk = client.send(Message(to=["+77001234568", emulator.invalid_number], text="bulk"))
        with pytest.raises(InvalidRecipient, match=r"\(code 1, HTTP 200\)"):
            client.send(Message(to=emulator.invalid_number, text="x"))
        emulator.script(Fault.vendor_error(30))
        retried = client.send(Message(to="+77001234569", text="x"))
        emulator.script(Fault.drop_after_accept())
        with pytest.raises(DeliveryUnknown):
            client.send(Message(to="+77001234570", text="x"))
    assert single.message_id and emulator.messages[single.message_id].text == "Привет + hi"
    assert len(bulk.succeeded) == 1 and len(bulk.failed) == 1
    assert retried.attempts == 2 and len(sleeps) == 1
    assert emulator.accepted_count == 4 and emulator.duplicates() == 0


@pytest.mark.anyio
async def test_async_send_status_and_typed_error(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    async with inprocess_async_client(emulator, policy) as client:
        sent = await client.send(Message(to=TO, text="hi"))
        report = await client.get_status(sent.message_id or "")
        emulator.script(Fault.vendor_error(3))
        with pytest.raises(DeliveryUnknown):
            await client.send(Message(to=TO, text="x"))
    assert report.status is DeliveryStatus.QUEUED and emulator.accepted_count == 1


# campaign/addRecipients (mobizon-api-docs addRecipients.md): "recipients" as a string, a
# one-dimensional array, or the two-dimensional recipients[i][recipient] (with placeholders beside
# it); each item's "number" is "the original value of the recipient number transmitted".
@pytest.mark.parametrize(
    "recipients",
    [
        "77001234567,+77001234568",
        ["77001234567", "+77001234568"],
        [{"recipient": "77001234567", "name": "Ann"}, {"recipient": "+77001234568", "name": "Bob"}],
    ],
    ids=["string", "one-dimensional", "two-dimensional"],
)
def test_emulator_add_recipients_takes_every_documented_form(recipients: object) -> None:
    emulator = MobizonEmulator()
    p = emulator.make_provider(BASE)
    with httpx.Client(transport=emulator.transport()) as http:
        campaign = http.send(p.build_call("campaign", "create", {"data": {"text": "Hi {name}", "type": 3}})).json()[
            "data"
        ]
        answer = http.send(p.build_call("campaign", "addRecipients", {"id": campaign, "recipients": recipients})).json()
    assert answer["code"] == 0
    assert [(i["recipient"], i["number"], i["code"]) for i in answer["data"]] == [
        ("77001234567", "77001234567", 0),
        ("77001234568", "+77001234568", 0),
    ]
    assert all(i["messageId"] for i in answer["data"])


def test_emulator_add_recipients_refuses_two_sources_at_once() -> None:
    emulator = MobizonEmulator()
    p = emulator.make_provider(BASE)
    fields = {"recipients": ["77001234567"], "recipients[0][recipient]": "77001234568"}
    with httpx.Client(transport=emulator.transport()) as http:
        campaign = http.send(p.build_call("campaign", "create", {"data": {"text": "Hi", "type": 2}})).json()["data"]
        answer = http.send(p.build_call("campaign", "addRecipients", {"id": campaign, **fields})).json()
    assert answer["code"] == 12


def test_a_router_moves_on_after_a_campaign_failed_before_its_send(policy: RetryPolicy) -> None:
    """create and addRecipients send nothing (Repeat.PREPARE): their failure is certainly not sent,
    so a router may give the message to its next route; a failure of campaign/send never."""
    from omnisend import Failover, Route

    added = [
        {"recipient": TO[1:], "code": 0, "messageId": "1"},
        {"recipient": "77001234568", "code": 0, "messageId": "2"},
    ]
    with respx.mock() as router:
        router.post(f"{BASE}/service/campaign/create").mock(return_value=envelope(3, None))
        router.post("https://api.mobizon.ua/service/campaign/create").mock(return_value=envelope(0, "77"))
        router.post("https://api.mobizon.ua/service/campaign/addRecipients").mock(return_value=envelope(0, added))
        router.post("https://api.mobizon.ua/service/campaign/send").mock(return_value=envelope(0, {"status": 2}))
        routes = Failover(Route(provider(), name="kz"), Route(provider(base_url="api.mobizon.ua"), name="ua"))
        with Client(routes, retry=policy) as client:
            result = client.send(Message(to=[TO, "+77001234568"], text="x"))
    assert result.provider == "ua" and result.message_id == "1"
    (first,) = result.route_errors
    assert isinstance(first, ServiceUnavailable) and first.accepted is False and "nothing went out" in str(first)


@pytest.mark.parametrize("data", [[], {}, "", None, {"id": 77}])
def test_a_campaign_created_without_an_id_is_unreadable(data: object, policy: RetryPolicy) -> None:
    """PHP writes empty data as ``[]``: never a campaign id, so nothing is added or sent."""
    body = {"code": 0, "data": data, "message": ""}
    with respx.mock() as router:
        router.post(f"{BASE}/service/campaign/create").mock(return_value=httpx.Response(200, json=body))
        with (
            Client(provider(), retry=policy) as client,
            pytest.raises(TransportError, match="without a campaign id") as info,
        ):
            client.send(Message(to=[TO, "+77001234568"], text="x"))
        paths = {c.request.url.path for c in router.calls}
    assert paths == {"/service/campaign/create"}  # retried (a repeat sends nothing), never added or sent
    assert info.value.accepted is False and "nothing went out" in str(info.value)


def test_wrong_domain_follow_drops_the_configured_hosts_userinfo_from_url_and_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = provider(base_url="https://user:secret@proxy.example")
    follow = p.exchange(Step(p.build_statuses_request(["12"]), lambda r: r, repeat=Repeat.READ))
    next(follow)
    with caplog.at_level("WARNING", logger="omnisend"):
        moved = follow.throw(WrongDomain("13", provider="mobizon", code=13, raw={"code": 13, "data": "api.mobizon.ua"}))
    assert moved.request.url.userinfo == b"" and moved.request.url.host == "api.mobizon.ua"
    assert "secret" not in caplog.text and "proxy.example does not serve this account" in caplog.text
