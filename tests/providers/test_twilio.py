"""Twilio: the tables against Twilio's own words, requests, answers, lookups, signed callbacks,
the no-double-send rule, and the official ``twilio`` library run against TwilioEmulator."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from omnisend import Client, DeliveryStatus, Message, RetryPolicy
from omnisend.errors import (
    AuthError,
    ConfigurationError,
    DeliveryFailed,
    DeliveryUnknown,
    InsufficientBalance,
    InvalidRecipient,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    TemplateError,
    TransportError,
    ValidationError,
    WebhookAuthError,
)
from omnisend.models import Media, Template
from omnisend.providers import Twilio
from omnisend.providers.twilio import ERRORS, STATUSES
from omnisend.testing import Fault, TwilioEmulator
from omnisend.testing.twilio import HTTP_STATUS
from tests.conftest import inprocess_async_client, inprocess_client, load_codes

SID = "AC" + "1f" * 16
TOKEN = "tw-auth-token-5e4d3c2b1a"
KEY_SID = "SK" + "2e" * 16
KEY_SECRET = "tw-key-secret-0a9b8c7d"
SERVICE = "MG" + "3d" * 16
HOOK = "https://app.example/twilio/status"
TO = "+48500100200"
CODES = load_codes("twilio")


def provider(**options: Any) -> Twilio:
    options.setdefault("auth_token", TOKEN)
    return Twilio(account_sid=SID, **options)


def form_of(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


def error_answer(code: int, message: str = "vendor words", status: int = 400) -> httpx.Response:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return httpx.Response(status, json=body)


def sign(params: dict[str, str], url: str = HOOK, token: str = TOKEN) -> str:
    from twilio.request_validator import RequestValidator

    signature: str = RequestValidator(token).compute_signature(url, params)
    return signature


# -- the tables against Twilio's own words ------------------------------------------------------

#: The class each code raises, decided from the words in tests/fixtures/twilio_codes.json.
EXPECTED: dict[type[ProviderError], set[int]] = {
    AuthError: {20003, 63001},
    InsufficientBalance: {10001, 20005, 30002},
    RateLimited: {14107, 20429, 21611, 30001, 30022, 30023, 30027, 63017, 63018, 63038},
    ServiceUnavailable: {20500, 20503, 30020, 30021, 63009, 63010, 63012},
    NotFound: {20404, 21701},
    DeliveryFailed: {30003, 30006, 30007, 30008, 30009, 30011, 30017, 30036, 30410, 63023, 63029},
    InvalidRecipient: {21211, 21265, 21610, 21614, 21635, 30004, 30005, 30014, 63003, 63014, 63024, 63032, 63033},
    TemplateError: {21654, 21655, 21656, 63016, 63027, 63028, 63040, 63041, 63042},
    PermissionDenied: {
        20006, 20008, 20010, 20403, 21210, 21212, 21408, 21601, 21606, 21607, 21608, 21612, 21621, 21622,
        21657, 21659, 21660, 21661, 21702, 21703, 21704, 21709, 30018, 30024, 30032, 30033, 30034, 30035,
        30450, 63002, 63007, 63008, 63013, 63015, 63020, 63022, 63026, 63051,
    },
    ValidationError: {
        20001, 20002, 20004, 20011, 20012, 20409, 20410, 20413, 20422, 20423, 20426, 21266, 21602, 21603,
        21604, 21605, 21609, 21616, 21617, 21618, 21619, 21620, 21623, 21624, 21626, 21627, 21652, 21653,
        21658, 21705, 21708, 21910, 30010, 30012, 30013, 30015, 30016, 30019, 30028, 30029, 30030, 30031,
        35111, 35114, 35118, 35125, 35126, 63005, 63006, 63011, 63019, 63021, 63025, 63030, 63031, 63034,
    },
}  # fmt: skip
PINNED = {code: cls for cls, codes in EXPECTED.items() for code in codes}


def test_error_table_holds_exactly_the_documented_codes() -> None:
    assert set(ERRORS) == {row["code"] for row in CODES["errors"]}
    assert len(ERRORS) == 151 and {20429, 14107, 30003, 21610, 63016} <= set(ERRORS)


def test_every_code_raises_the_class_pinned_from_twilios_words() -> None:
    assert sum(len(codes) for codes in EXPECTED.values()) == len(PINNED)  # no code pinned twice
    assert {code: ERRORS[code].exc for code in ERRORS} == PINNED


def test_hints_say_what_to_check_for_the_errors_users_meet_most() -> None:
    assert {code for code, row in ERRORS.items() if row.hint} == {20003, 21608, 21610, 63016}
    with pytest.raises(InvalidRecipient, match=r"unsubscribed recipient; the recipient replied STOP .+ \(code 21610"):
        provider().parse_response(error_answer(21610, "Attempt to send to unsubscribed recipient"))


def test_the_retried_codes_are_throttling_and_temporary_outages() -> None:
    retried = {code for code, row in ERRORS.items() if row.is_retryable and not row.ambiguous}
    assert retried == EXPECTED[RateLimited] | EXPECTED[ServiceUnavailable] - {20500}
    assert {code for code, row in ERRORS.items() if row.ambiguous} == {20500}


@pytest.mark.parametrize("row", CODES["errors"], ids=[str(r["code"]) for r in CODES["errors"]])
def test_an_error_answer_raises_its_class_with_twilios_words(row: dict[str, Any]) -> None:
    code, status = row["code"], HTTP_STATUS.get(row["code"], 400)
    hint = ERRORS[code].hint
    words = re.escape(row["message"].rstrip(". ")) + f"; {re.escape(hint)}" if hint else re.escape(row["message"])
    with pytest.raises(PINNED[code], match=rf"^twilio: {words} \(code {code}, HTTP {status}\)") as info:
        provider().parse_response(error_answer(code, row["message"], status))
    error = info.value
    assert (error.code, error.vendor_message, error.http_status) == (code, row["message"], status)
    assert error.raw == {"code": code, "message": row["message"], "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    assert error.accepted is (None if code == 20500 else PINNED[code].default_accepted)


@pytest.mark.parametrize(("status", "cls"), [(400, ValidationError), (503, ServiceUnavailable), (418, ProviderError)])
def test_a_code_twilio_adds_later_is_typed_from_its_http_status(status: int, cls: type) -> None:
    with pytest.raises(cls, match=rf"new words \(code 21999, HTTP {status}\)") as info:
        provider().parse_response(error_answer(21999, "new words", status))
    assert type(info.value) is cls and info.value.code == 21999 and info.value.vendor_message == "new words"


@pytest.mark.parametrize(
    ("answer", "cls", "accepted"),
    [
        (httpx.Response(401, text="<html>no</html>"), AuthError, False),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServiceUnavailable, None),
        (httpx.Response(429, json={"message": "slow down", "status": 429}), RateLimited, False),
        (httpx.Response(400, json=["not", "an", "object"]), ValidationError, False),
    ],
    ids=["401-html", "502-html", "429-no-code", "400-list"],
)
def test_answers_without_a_code_fall_back_to_the_http_status(answer: httpx.Response, cls: type, accepted: bool | None) -> None:
    with pytest.raises(cls, match=r"^twilio: ") as info:
        provider().parse_response(answer)
    assert type(info.value) is cls and info.value.code is None and info.value.accepted is accepted


EXPECTED_STATUSES = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.SCHEDULED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "read": DeliveryStatus.READ,
    "partially_delivered": DeliveryStatus.SENT,
    "canceled": DeliveryStatus.CANCELLED,
    "receiving": DeliveryStatus.QUEUED,
    "received": DeliveryStatus.DELIVERED,
}


def test_status_table_holds_every_documented_message_status() -> None:
    assert set(STATUSES) == set(CODES["statuses"]) == set(EXPECTED_STATUSES)


def callback(**fields: str) -> dict[str, Any]:
    params = {"MessageSid": "SM" + "a" * 32, "AccountSid": SID, "To": TO, "From": "+15005550006", **fields}
    return {"body": urlencode(params).encode(), "headers": {"X-Twilio-Signature": sign(params)}}


@pytest.mark.parametrize(("value", "expected"), EXPECTED_STATUSES.items())
def test_every_status_normalises_from_a_signed_callback(value: str, expected: DeliveryStatus) -> None:
    (report,) = provider(webhook_url=HOOK).parse_webhook(**callback(MessageStatus=value, SmsStatus=value))
    assert report.status is expected and report.vendor_status == value and report.message_id == "SM" + "a" * 32
    assert (report.error is not None) is (value in ("failed", "undelivered"))
    assert provider().statuses.normalize(value.upper()) is expected


@pytest.mark.parametrize(("code", "cls"), [("30003", DeliveryFailed), ("21610", InvalidRecipient), ("30007", DeliveryFailed), ("30022", RateLimited)])
def test_a_failure_callback_names_the_class_of_its_error_code(code: str, cls: type) -> None:
    (report,) = provider(webhook_url=HOOK).parse_webhook(**callback(MessageStatus="undelivered", ErrorCode=code))
    assert report.error is not None and report.error.error_class == cls.__name__ and report.error.code == int(code)
    assert report.error.exception_class is cls and report.status is DeliveryStatus.UNDELIVERED


# -- requests -----------------------------------------------------------------------------------


def test_sms_request_is_the_form_twilio_documents() -> None:
    request = provider(webhook_url=HOOK).build_request(Message(to=TO, text="Your code is 1234", sender="+15005550006"), idempotency_key="k-1")
    assert request.method == "POST" and str(request.url) == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert form_of(request) == {"To": TO, "From": "+15005550006", "Body": "Your code is 1234", "StatusCallback": f"{HOOK}?omnisend_key=k-1"}


def test_api_key_authenticates_with_key_sid_and_secret_and_names_the_account_in_the_url() -> None:
    twilio = Twilio(account_sid=SID, api_key_sid=KEY_SID, api_key_secret=KEY_SECRET)
    request = twilio.build_request(Message(to=TO, text="hi", sender="Shop"), idempotency_key="k")
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{KEY_SID}:{KEY_SECRET}".encode()).decode()
    assert f"/Accounts/{SID}/Messages.json" in str(request.url) and KEY_SECRET not in repr(twilio)


def test_messaging_service_schedule_validity_media_and_options() -> None:
    when = datetime(2031, 5, 4, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    message = Message(
        to=TO,
        text="Sale",
        media=Media(url="https://cdn.example/a.png"),
        scheduled_at=when,
        validity=timedelta(hours=1),
        options={"ShortenUrls": True, "SmartEncoded": False, "Attempt": 2, "MaxPrice": None},
    )
    fields = form_of(provider(messaging_service_sid=SERVICE).build_request(message, idempotency_key="k"))
    assert fields == {
        "To": TO,
        "Body": "Sale",
        "MediaUrl": "https://cdn.example/a.png",
        "MessagingServiceSid": SERVICE,
        "ValidityPeriod": "3600",
        "SendAt": "2031-05-04T10:30:00Z",
        "ScheduleType": "fixed",
        "ShortenUrls": "true",
        "SmartEncoded": "false",
        "Attempt": "2",
    }


def test_whatsapp_template_uses_the_channel_prefix_and_a_content_template() -> None:
    message = Message(to=TO, channel="whatsapp", sender="+15005550006", template=Template(name="HX" + "b" * 32, params=["Ann", "7"]))
    fields = form_of(provider().build_request(message, idempotency_key="k"))
    assert fields["To"] == f"whatsapp:{TO}" and fields["From"] == "whatsapp:+15005550006"
    assert fields["ContentSid"] == "HX" + "b" * 32 and json.loads(fields["ContentVariables"]) == {"1": "Ann", "2": "7"}
    assert "Body" not in fields


@pytest.mark.parametrize(
    ("options", "message", "pattern", "field"),
    [
        ({}, Message(to=TO, text="hi"), r"needs a sender \(From\) or Twilio\(messaging_service_sid", "sender"),
        ({}, Message(to=TO, text="x" * 1601, sender="Shop"), r"1601 characters; twilio allows at most 1600", "text"),
        ({}, Message(to=TO, text="hi", sender="Shop", validity=timedelta(hours=11)), r"validity must be 1 to 36000", "validity"),
        ({}, Message(to=TO, text="hi", sender="TooLongSenderName"), r"Alphanumeric Sender ID", "sender"),
        ({}, Message(to=TO, text="hi", channel="whatsapp", sender="Shop"), r"approved WhatsApp sender", "sender"),
        ({}, Message(to=TO, text="hi", sender="Shop", template=Template(name="HX1")), r"give no text", "text"),
        ({}, Message(to=TO, sender="Shop", template=Template(name="HX1", language="en")), r"give no text or language", "template.language"),
        ({}, Message(to=[TO, "+15005550007"], text="hi", sender="Shop"), r"2 recipients: Twilio takes one number per request", "to"),
    ],
    ids=["no-sender", "body-1601", "validity-11h", "long-alpha", "whatsapp-alpha", "template-and-text", "template-language", "two-numbers"],
)
def test_bad_input_is_refused_before_any_request(options: dict[str, Any], message: Message, pattern: str, field: str) -> None:
    with pytest.raises(ValidationError, match=pattern) as info:
        provider(**options).build_request(message, idempotency_key="k")
    assert info.value.field == field and info.value.code is None and info.value.provider == "twilio"


@pytest.mark.parametrize(
    "message",
    [
        Message(to=TO, text="hi", sender="Shop", scheduled_at=datetime(2031, 1, 1, tzinfo=timezone.utc)),
        Message(to=TO, text="hi", sender="Shop", channel="viber"),
    ],
    ids=["schedule-without-service", "viber"],
)
def test_what_twilio_cannot_do_is_refused_before_any_request(message: Message) -> None:
    with pytest.raises(ValidationError, match=r"^twilio: Twilio does not support"):
        provider().build_request(message, idempotency_key="k")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"auth_token": TOKEN}, r"^twilio: no account_sid\. Pass Twilio\(account_sid=\.\.\.\) or set OMNISEND_TWILIO_ACCOUNT_SID"),
        ({"account_sid": "AC123", "auth_token": TOKEN}, r"^twilio: account_sid must be 'AC' followed by 32 hex digits"),
        ({"account_sid": SID}, r"no auth_token\. Pass Twilio\(auth_token=\.\.\. or set OMNISEND_TWILIO_AUTH_TOKEN"),
        ({"account_sid": SID, "api_key_sid": KEY_SID}, r"no api_key_secret\. Pass Twilio\(api_key_secret=\)"),
        ({"account_sid": SID, "api_key_sid": "SK1", "api_key_secret": KEY_SECRET}, r"'SK' followed by 32 hex"),
        ({"account_sid": SID, "auth_token": TOKEN, "messaging_service_sid": "MGx"}, r"'MG' followed by 32 hex"),
        ({"account_sid": SID, "auth_token": TOKEN, "webhook_url": "ftp://x"}, r"webhook_url must be an http\(s\) URL"),
        ({"account_sid": SID, "auth_token": " "}, r"^twilio: auth_token is empty or contains a non-ASCII or control"),
        ({"account_sid": SID, "auth_token": "tok\u00e9n"}, r"^twilio: auth_token is empty or contains a non-ASCII or control"),
    ],
    ids=["no-account-sid", "bad-account-sid", "no-token", "key-without-secret", "bad-key-sid", "bad-service", "bad-webhook-url", "blank-token", "non-ascii-token"],
)
def test_bad_configuration_is_a_configuration_error(kwargs: dict[str, Any], pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACCOUNT_SID", "AUTH_TOKEN", "API_KEY_SID", "API_KEY_SECRET", "MESSAGING_SERVICE_SID"):
        monkeypatch.delenv(f"OMNISEND_TWILIO_{name}", raising=False)
    with pytest.raises(ConfigurationError, match=pattern) as info:
        Twilio(**kwargs)
    assert TOKEN not in str(info.value) and KEY_SECRET not in str(info.value)


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("OMNISEND_TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("OMNISEND_TWILIO_MESSAGING_SERVICE_SID", SERVICE)
    twilio = Twilio()
    assert twilio.account_sid == SID and twilio.messaging_service_sid == SERVICE
    assert form_of(twilio.build_request(Message(to=TO, text="hi"), idempotency_key="k"))["MessagingServiceSid"] == SERVICE
    assert TOKEN not in repr(twilio) and TOKEN not in str(vars(twilio).get("webhook_url"))


# -- answers ------------------------------------------------------------------------------------


def test_a_created_message_is_the_result() -> None:
    body = {"sid": "SM" + "c" * 32, "status": "queued", "to": TO, "num_segments": "1", "error_code": None}
    result = provider().parse_response(httpx.Response(201, json=body), message=Message(to=TO, text="hi", sender="Shop"), idempotency_key="k")
    assert (result.message_id, result.status, result.idempotency_key, result.raw) == ("SM" + "c" * 32, DeliveryStatus.QUEUED, "k", body)
    assert [(r.to, r.message_id, r.status) for r in result.recipients] == [(TO, "SM" + "c" * 32, DeliveryStatus.QUEUED)]


@pytest.mark.parametrize("option", ["To", "to", "StatusCallback", "statuscallback"])
def test_options_may_not_set_the_fields_omnisend_owns(option: str) -> None:
    with pytest.raises(ValidationError, match=rf"options may not set '{option}'|options may not set") as info:
        provider(webhook_url=HOOK).build_request(Message(to=TO, text="hi", sender="Shop", options={option: "x"}), idempotency_key="k")
    assert info.value.field is not None and info.value.field.lower() == f"options.{option.lower()}"


def test_a_2xx_answer_without_a_sid_may_have_landed() -> None:
    with pytest.raises(TransportError, match="the answer names no message sid") as info:
        provider().parse_response(httpx.Response(201, json={"status": "queued"}))
    assert info.value.accepted is None


# -- through the emulator: lookups, callbacks, retries, no double sends -----------------------


def test_send_lookup_and_signed_callback_through_the_emulator(policy: RetryPolicy) -> None:
    emulator = TwilioEmulator()
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=TO, text="hello", sender="Shop"))
        assert result.status is DeliveryStatus.QUEUED and result.segments == 1 and result.message_id
        report = client.get_status(result.message_id)
        assert report.status is DeliveryStatus.QUEUED and report.recipient == TO and report.timestamp is not None
        (delivered,) = client.provider.parse_webhook(**emulator.deliver(result.message_id, delivered=False))
        assert delivered.idempotency_key == result.idempotency_key and delivered.status is DeliveryStatus.UNDELIVERED
        assert delivered.error is not None and (delivered.error.error_class, delivered.error.code) == ("DeliveryFailed", 30003)
        assert client.get_status(result.message_id).error == delivered.error
        with pytest.raises(NotFound, match=r"was not found \(code 20404, HTTP 404\)"):
            client.get_status("SM" + "f" * 32)


@pytest.mark.parametrize(
    ("to", "sender", "cls", "code"),
    [
        ("+15005550001", "Shop", InvalidRecipient, 21211),
        ("+15005550002", "Shop", PermissionDenied, 21612),
        ("+15005550003", "Shop", PermissionDenied, 21408),
        ("+15005550004", "Shop", InvalidRecipient, 21610),
        ("+15005550009", "Shop", InvalidRecipient, 21614),
        (TO, "+15005550001", PermissionDenied, 21212),
        (TO, "+15005550007", PermissionDenied, 21606),
        (TO, "+15005550008", RateLimited, 21611),
    ],
)
def test_emulator_answers_twilios_magic_test_numbers(to: str, sender: str, cls: type, code: int) -> None:
    emulator = TwilioEmulator()
    with inprocess_client(emulator, None) as client, pytest.raises(cls, match=rf"\(code {code}, HTTP 400\)") as info:
        client.send(Message(to=to, text="hi", sender=sender))
    assert type(info.value) is cls and info.value.accepted is False and emulator.accepted_count == 0


def test_emulator_refuses_scheduling_without_a_service_and_cancels_a_scheduled_message() -> None:
    emulator = TwilioEmulator()
    service = "MG" + "4" * 32
    with inprocess_client(emulator, None, messaging_service_sid=service) as client:
        result = client.send(Message(to=TO, text="later", scheduled_at=datetime(2031, 1, 1, tzinfo=timezone.utc)))
    assert result.status is DeliveryStatus.SCHEDULED and emulator.messages[result.message_id or ""].extra["service"] == service
    raw = httpx.Client(transport=emulator.transport(), base_url="http://emulator.test", auth=(emulator.account_sid, emulator.credentials[0]))
    path = f"/2010-04-01/Accounts/{emulator.account_sid}/Messages"
    assert raw.post(f"{path}/{result.message_id}.json", data={"Status": "canceled"}).json()["status"] == "canceled"
    assert raw.post(f"{path}/{result.message_id}.json", data={"Status": "canceled"}).json()["code"] == 30409
    answer = raw.post(f"{path}.json", data={"To": TO, "From": "Shop", "Body": "x", "SendAt": "2031-01-01T00:00:00Z"})
    assert (answer.status_code, answer.json()["code"]) == (400, 35118)
    answer = raw.post(f"{path}.json", data={"To": f"whatsapp:{TO}", "From": "+15005550006", "Body": "x"})
    assert answer.json()["code"] == 21910


def test_emulator_takes_an_api_key_and_refuses_a_wrong_token(policy: RetryPolicy) -> None:
    emulator = TwilioEmulator(api_keys={KEY_SID: KEY_SECRET})
    keyed = Twilio(account_sid=emulator.account_sid, api_key_sid=KEY_SID, api_key_secret=KEY_SECRET, base_url="http://emulator.test")
    with Client(keyed, retry=policy, http_client=httpx.Client(transport=emulator.transport())) as client:
        assert client.send(Message(to=TO, text="hi", sender="Shop")).message_id
    wrong = Twilio(account_sid=emulator.account_sid, auth_token="not-the-token", base_url="http://emulator.test")
    with Client(wrong, retry=policy, http_client=httpx.Client(transport=emulator.transport())) as client:
        with pytest.raises(AuthError, match=r"\(code 20003, HTTP 401\)") as info:
            client.send(Message(to=TO, text="hi", sender="Shop"))
    assert "not-the-token" not in repr(info.value) and info.value.retryable is False and emulator.accepted_count == 1


def test_throttling_is_retried_with_the_same_request(policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = TwilioEmulator()
    emulator.script(Fault.vendor_error(20429), Fault.vendor_error(14107))
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=TO, text="hi", sender="Shop"))
    assert result.attempts == 3 and len(sleeps) == 2 and emulator.accepted_count == 1
    assert len({r.body for r in emulator.requests}) == 1


@pytest.mark.parametrize("fault", [Fault.vendor_error(20500), Fault.drop_after_accept(), Fault.slow(5.0)], ids=["20500", "drop", "timeout"])
def test_an_ambiguous_failure_is_delivery_unknown_and_never_resent(fault: Fault, policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = TwilioEmulator()
    emulator.script(fault)
    with inprocess_client(emulator, policy) as client, pytest.raises(DeliveryUnknown, match="twilio") as info:
        client.send(Message(to=TO, text="hi", sender="Shop"), timeout=0.05)
    assert info.value.attempts == 1 and info.value.retryable is False and info.value.idempotency_key
    assert len(emulator.requests) == 1 and sleeps == []


@pytest.mark.anyio
async def test_async_client_shares_the_adapter(policy: RetryPolicy) -> None:
    emulator = TwilioEmulator()
    async with inprocess_async_client(emulator, policy) as client:
        result = await client.send(Message(to=[TO, "+48500100201"], text="hi", sender="Shop"))
        report = await client.get_status(result.recipients[1].message_id or "")
    assert [r.to for r in result.recipients] == [TO, "+48500100201"] and len(emulator.requests) == 3
    assert report.recipient == "+48500100201"


# -- status callbacks ---------------------------------------------------------------------------


def test_callback_signature_must_match_the_url_twilio_called() -> None:
    twilio = provider(webhook_url=HOOK)
    good = callback(MessageStatus="delivered")
    assert twilio.parse_webhook(**good)[0].status is DeliveryStatus.DELIVERED
    with pytest.raises(WebhookAuthError, match=r"X-Twilio-Signature does not match \(checked against https://other\.example/hook\)"):
        twilio.parse_webhook(**good, url="https://other.example/hook")
    with pytest.raises(WebhookAuthError, match="X-Twilio-Signature is missing"):
        twilio.parse_webhook(body=good["body"], headers={})
    with pytest.raises(WebhookAuthError, match="does not match"):
        provider(webhook_url=HOOK, auth_token="another-token").parse_webhook(**good)


def test_callback_url_with_query_and_ports_as_twilios_libraries_check() -> None:
    params = {"MessageSid": "SM" + "d" * 32, "MessageStatus": "sent", "AccountSid": SID}
    called = "https://app.example:443/twilio/status?omnisend_key=k-9"
    body = urlencode(params).encode()
    for signed in (called, "https://app.example/twilio/status?omnisend_key=k-9"):
        headers = {"x-twilio-signature": sign(params, signed)}
        (report,) = provider().parse_webhook(body=body, headers=headers, url=called)
        assert report.idempotency_key == "k-9"
        (report,) = provider(webhook_url=HOOK).parse_webhook(body=body, headers=headers, query={"omnisend_key": "k-9"})
        assert report.idempotency_key == "k-9" and report.status is DeliveryStatus.SENT


def test_callback_checks_need_the_auth_token_and_a_url() -> None:
    keyed = Twilio(account_sid=SID, api_key_sid=KEY_SID, api_key_secret=KEY_SECRET, webhook_url=HOOK)
    with pytest.raises(ConfigurationError, match=r"needs auth_token= \(API keys do not sign\)"):
        keyed.parse_webhook(**callback(MessageStatus="sent"))
    with pytest.raises(ConfigurationError, match=r"needs parse_webhook\(url=\.\.\.\) or Twilio\(webhook_url=\.\.\.\)"):
        provider().parse_webhook(**callback(MessageStatus="sent"))


def test_callback_without_a_status_is_refused() -> None:
    with pytest.raises(ValidationError, match="no MessageSid/MessageStatus"):
        provider(webhook_url=HOOK).parse_webhook(**callback())


# -- the official twilio library -------------------------------------------------------------------


@pytest.mark.tcp
def test_official_twilio_library_sends_reads_and_gets_errors_from_the_emulator(serve: Any) -> None:
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client as TwilioClient

    emulator = TwilioEmulator()
    server = serve(emulator)
    official = TwilioClient(emulator.account_sid, emulator.credentials[0])
    official.api.base_url = server.base_url
    created = official.messages.create(to=TO, from_="+15005550006", body="From the official library", media_url=["https://cdn.example/a.png"])
    assert created.sid.startswith("SM") and created.status == "queued" and created.num_segments == "1"
    assert created.to == TO and created.from_ == "+15005550006" and created.date_created is not None
    fetched = official.messages(created.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.num_media) == (created.sid, "From the official library", "1")
    assert [m.sid for m in official.messages.list()] == [created.sid]
    with pytest.raises(TwilioRestException) as info:
        official.messages.create(to="+15005550001", from_="+15005550006", body="hi")
    assert (info.value.code, info.value.status) == (21211, 400) and "Invalid 'To' Phone Number" in info.value.msg
    bad = TwilioClient(emulator.account_sid, "wrong-token")
    bad.api.base_url = server.base_url
    with pytest.raises(TwilioRestException) as info:
        bad.messages.create(to=TO, from_="+15005550006", body="hi")
    assert (info.value.code, info.value.status) == (20003, 401)
    # omnisend reads what the official library created, and the other way round.
    with Client(emulator.make_provider(server.base_url)) as client:
        assert client.get_status(created.sid).message_id == created.sid
        mine = client.send(Message(to=TO, text="from omnisend", sender="Shop"))
    assert official.messages(mine.message_id).fetch().body == "from omnisend"


def test_a_callback_signed_by_the_official_validator_is_accepted_and_a_tampered_one_refused() -> None:
    from twilio.request_validator import RequestValidator

    params = {
        "SmsSid": "SM" + "e" * 32,
        "SmsStatus": "undelivered",
        "MessageStatus": "undelivered",
        "To": TO,
        "MessageSid": "SM" + "e" * 32,
        "AccountSid": SID,
        "From": "+15005550006",
        "ApiVersion": "2010-04-01",
        "ErrorCode": "30003",
    }
    url = f"{HOOK}?omnisend_key=key-42"
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    twilio = provider()
    (report,) = twilio.parse_webhook(body=urlencode(params), headers={"X-Twilio-Signature": signature}, url=url)
    assert (report.status, report.idempotency_key, report.error and report.error.code) == (DeliveryStatus.UNDELIVERED, "key-42", 30003)
    tampered = urlencode({**params, "MessageStatus": "delivered"})
    with pytest.raises(WebhookAuthError, match="X-Twilio-Signature does not match"):
        twilio.parse_webhook(body=tampered, headers={"X-Twilio-Signature": signature}, url=url)
    with pytest.raises(WebhookAuthError, match="does not match"):
        twilio.parse_webhook(body=urlencode(params), headers={"X-Twilio-Signature": signature}, url=f"{HOOK}?omnisend_key=key-43")


def test_the_emulators_callbacks_pass_the_official_validator() -> None:
    from twilio.request_validator import RequestValidator

    emulator = TwilioEmulator()
    with inprocess_client(emulator, None) as client:
        result = client.send(Message(to=TO, text="hi", sender="Shop"))
    kwargs = emulator.deliver(result.message_id or "")
    params = dict(parse_qsl(kwargs["body"].decode()))
    assert RequestValidator(emulator.credentials[0]).validate(kwargs["url"], params, kwargs["headers"]["X-Twilio-Signature"])
    assert not RequestValidator("another-token").validate(kwargs["url"], params, kwargs["headers"]["X-Twilio-Signature"])


def test_the_vendor_request_id_is_kept_on_errors() -> None:
    """Twilio names every request in ``Twilio-Request-Id``; support asks for it."""
    emu = TwilioEmulator()
    with Client(emu.make_provider("http://twilio.test"), http_client=httpx.Client(transport=emu.transport())) as client:
        with pytest.raises(InvalidRecipient, match="21211") as info:
            client.send(Message(to="+15005550001", text="hi", sender="+15005550006"))
    assert info.value.request_id is not None and info.value.request_id.startswith("RQ")
    assert len(info.value.request_id) == 34


@pytest.mark.parametrize(
    ("status", "body", "where"),
    [(200, b"", "empty"), (200, b"<html>busy</html>", "not valid JSON"), (302, b"", "redirect")],
)
def test_the_request_id_is_kept_on_answers_omnisend_cannot_read(status: int, body: bytes, where: str) -> None:
    """The ambiguous cases are those where the vendor's support needs the request id most."""
    headers = {"Twilio-Request-Id": "RQ" + "0" * 32, "location": "https://elsewhere.test/"}
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers=headers))
    with Client(provider(), http_client=httpx.Client(transport=transport), retry=None) as client:
        with pytest.raises(TransportError, match=where) as info:
            client.send(Message(to=TO, text="hi", sender="Shop"))
    assert info.value.request_id == "RQ" + "0" * 32
