"""Webex Connect adapter and emulator: tables, requests, answers, retries, splitting, receipts."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnisend import (
    AsyncClient,
    AuthError,
    Client,
    ConfigurationError,
    DeliveryFailed,
    DeliveryStatus,
    DeliveryUnknown,
    InsufficientBalance,
    InvalidRecipient,
    Media,
    Message,
    NotFound,
    PartialFailure,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    Template,
    TransportError,
    ValidationError,
)
from omnisend.providers import WebexConnect
from omnisend.providers.base import Repeat
from omnisend.providers.webex_connect import (
    ERRORS,
    EVENT_ERRORS,
    PATH,
    PROFILE_ERRORS,
    REASON_STATUSES,
    RESULTS,
    SECTIONS,
    STATUSES,
    TRANSACTION_ERRORS,
)
from omnisend.testing import Fault, WebexConnectEmulator
from tests.conftest import inprocess_async_client, inprocess_client, load_codes

KEY = "svc-key-5f2e9a71c04b"
BASE = "https://api.eu.webexconnect.io"
URL = BASE + "/resources/v1/messaging"
SECRET = "hub-secret-93b1c7"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "webex_connect"
CODES = load_codes("webex_connect")


def provider(**options: Any) -> WebexConnect:
    options.setdefault("service_key", KEY)
    options.setdefault("region", "eu")
    return WebexConnect(**options)


def answer(data: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=data, request=httpx.Request("POST", URL))


def error_answer(code: str, description: str = "vendor words") -> httpx.Response:
    return answer({"response": {"code": code, "description": description, "transid": "t-1"}})


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def receipt(status: object, code: object = "7500", **info: object) -> bytes:
    delivery = {"deliveryStatus": status, "code": code, "Description": "words", "destination": "447700900123"}
    delivery.update(info)
    note = {"deliveryInfo": delivery, "transid": "tid-1", "correlationid": "key-1", "callbackData": ""}
    return json.dumps({"deliveryInfoNotification": note}).encode()


def sign(body: bytes, secret: str = SECRET, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+4850{n:07d}" for n in range(start, start + count)]


SMS = Message(to="+48500100200", text="Your code is 1234", sender="ACME")


# -- tables ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "entry"), list(ERRORS.items()), ids=list(ERRORS))
def test_messaging_code_raises_its_class_from_an_http_200_object(code, entry) -> None:
    with pytest.raises(entry.exc, match=r"webex_connect: vendor words") as info:
        provider().parse_response(error_answer(code), message=SMS, idempotency_key="k")
    error = info.value
    assert type(error) is entry.exc and error.code == code and isinstance(error.code, str)
    assert error.provider == "webex_connect" and error.http_status == 200 and error.vendor_message == "vendor words"
    assert error.retryable is entry.is_retryable
    # A delivery failure answered at once says the vendor took the message; any other code, not.
    assert error.accepted is (None if entry.ambiguous else entry.exc is DeliveryFailed)
    assert error.raw == {"response": {"code": code, "description": "vendor words", "transid": "t-1"}}


@pytest.mark.parametrize(("code", "entry"), list(TRANSACTION_ERRORS.items()), ids=list(TRANSACTION_ERRORS))
def test_transaction_status_code_is_the_reason_of_a_failed_receipt(code, entry) -> None:
    (report,) = provider().parse_webhook(body=receipt("Failed", code))
    assert report.error is not None
    assert report.error.error_class == entry.exc.__name__ and report.error.code == code
    assert report.error.exception_class is entry.exc


@pytest.mark.parametrize(
    ("section", "code"),
    [(s, c) for s in ("Event", "Profile") for c in SECTIONS[s]],
    ids=[f"{s}-{c}" for s in ("Event", "Profile") for c in SECTIONS[s]],
)
def test_event_and_profile_rows_build_their_class(section, code) -> None:
    entry = SECTIONS[section][code]
    error = SECTIONS[section].error(code, provider="webex_connect")
    assert type(error) is entry.exc and error.code == code and error.retryable is entry.is_retryable


def test_every_seed_code_is_in_its_section_table() -> None:
    assert SECTIONS["Event"] is EVENT_ERRORS and SECTIONS["Profile"] is PROFILE_ERRORS
    covered = 0
    for section, entries in CODES["sections"].items():
        errors = {e["code"] for e in entries if e["kind"] == "error"}
        successes = {e["code"] for e in entries if e["kind"] == "success"}
        assert set(SECTIONS[section]) == errors, section
        assert successes <= set(RESULTS), section
        covered += len(errors) + len(successes)
    assert covered == 217  # (section, code) pairs in the seed: 100 + 95 + 8 + 14
    assert {c["code"] for c in CODES["send_answer"]["codes"]} <= set(RESULTS)


def test_documented_receipt_statuses_are_all_in_the_table() -> None:
    assert set(CODES["delivery_statuses"]["values"]) <= set(STATUSES)


@pytest.mark.parametrize(
    ("code", "messaging", "other_section", "other"),
    [
        ("7005", ValidationError, "Event", ServiceUnavailable),
        ("7011", ServiceUnavailable, "Profile", ValidationError),
        ("7010", PermissionDenied, "Transaction Status", ServiceUnavailable),
        ("7208", PermissionDenied, "Transaction Status", DeliveryFailed),
        ("7601", ValidationError, "Transaction Status", NotFound),
    ],
)
def test_the_same_number_means_different_things_per_section(code, messaging, other_section, other) -> None:
    assert ERRORS[code].exc is messaging and SECTIONS[other_section][code].exc is other


def test_retry_classes_the_issue_names() -> None:
    assert {c for c, e in ERRORS.items() if e.exc is AuthError} >= {"7001", "7304", "7305"}
    assert ERRORS["7103"].exc is InsufficientBalance and ERRORS["7010"].exc is PermissionDenied
    assert all(ERRORS[c].exc is RateLimited and ERRORS[c].is_retryable for c in ("7020", "7302"))
    assert ERRORS["7006"].exc is ServiceUnavailable and ERRORS["7006"].ambiguous
    assert all(issubclass(ERRORS[c].exc, InvalidRecipient) for c in ("7102", "7109", "7110", "7203"))
    assert all(ERRORS[c].exc.__name__ == "TemplateError" for c in ("7108", "7121"))
    assert not ERRORS["7641"].is_retryable and ERRORS["7641"].exc is RateLimited


@pytest.mark.parametrize(("value", "entry"), list(STATUSES.items()), ids=list(STATUSES))
def test_every_receipt_status_maps(value, entry) -> None:
    (report,) = provider().parse_webhook(body=receipt(value, "7999"))
    assert report.status is entry.status and report.vendor_status == value
    assert (report.error is not None) is (entry.status in {DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED})


def test_unknown_receipt_status_is_unknown_and_kept() -> None:
    (report,) = provider().parse_webhook(body=receipt("Bounced-2031", "7999"))
    assert report.status is DeliveryStatus.UNKNOWN and report.vendor_status == "Bounced-2031" and report.error is None
    assert report.raw["deliveryInfo"]["deliveryStatus"] == "Bounced-2031"


@pytest.mark.parametrize(("code", "entry"), list(REASON_STATUSES.items()), ids=list(REASON_STATUSES))
def test_failure_codes_refine_the_status(code, entry) -> None:
    (report,) = provider().parse_webhook(body=receipt("Un-Delivered", code))
    assert report.status is entry.status and report.error is not None and report.error.code == code
    (delivered,) = provider().parse_webhook(body=receipt("Delivered", code))
    assert delivered.status is DeliveryStatus.DELIVERED and delivered.error is None


@pytest.mark.parametrize(("code", "entry"), list(RESULTS.items()), ids=list(RESULTS))
def test_success_codes_accept_a_destination(code, entry) -> None:
    result = provider().parse_response(
        answer({"response": [{"code": code, "description": "Queued", "transid": "t-9"}]}), message=SMS
    )
    assert result.status is entry.status and result.message_id == "t-9" and not result.failed


# -- requests ----------------------------------------------------------------------------------


def test_golden_sms_request() -> None:
    request = provider().build_request(
        Message(to=["+48500100200", "+447700900123"], text="Your code is 1234", sender="ACME"), idempotency_key="k-1"
    )
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["key"] == KEY and "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {
        "deliverychannel": "sms",
        "destination": [{"msisdn": ["+48500100200"]}, {"msisdn": ["+447700900123"]}],
        "correlationid": "k-1",
        "channels": {"sms": {"senderid": "ACME", "text": "Your code is 1234", "type": "1"}},
    }


def test_golden_unicode_sms_without_sender() -> None:
    request = provider().build_request(Message(to="+48500100200", text="Zażółć gęślą jaźń"), idempotency_key="k")
    assert body_of(request)["channels"] == {"sms": {"text": "Zażółć gęślą jaźń", "type": "4"}}


def test_golden_sms_template() -> None:
    message = Message(to="+48500100200", template=Template(name="otp-1", params={"code": "1234"}), sender="ACME")
    body = body_of(provider().build_request(message, idempotency_key="k"))
    assert body["message"] == {"template": "otp-1", "parameters": {"code": "1234"}}
    assert body["channels"] == {"sms": {"senderid": "ACME"}}


def test_golden_whatsapp_template_request() -> None:
    message = Message(
        to=["+48500100200", "+447700900123"],
        channel="whatsapp",
        template=Template(name="order_shipped", params=["Ann", "A-17"], language="en"),
        sender="ignored",
    )
    request = provider(whatsapp_app_id="wa-app-1").build_request(message, idempotency_key="k-2")
    assert str(request.url) == URL and request.headers["key"] == KEY
    assert body_of(request) == {
        "deliverychannel": "whatsapp",
        "appid": "wa-app-1",
        "destination": [{"waid": ["48500100200"]}, {"waid": ["447700900123"]}],
        "correlationid": "k-2",
        "message": {"template": "order_shipped", "parameters": {"1": "Ann", "2": "A-17"}},
    }


def test_whatsapp_app_id_from_options_wins() -> None:
    message = Message(to="+48500100200", channel="whatsapp", template=Template(name="t"), options={"appid": "wa-2"})
    body = body_of(provider(whatsapp_app_id="wa-1").build_request(message, idempotency_key="k"))
    assert body["appid"] == "wa-2" and body["message"] == {"template": "t"}


def test_golden_bearer_token_request() -> None:
    request = WebexConnect(bearer_token="jwt.header.sig", base_url="https://api.imiconnect.io").build_request(
        SMS, idempotency_key="k"
    )
    assert str(request.url) == "https://api.imiconnect.io/resources/v1/messaging"
    assert request.headers["authorization"] == "Bearer jwt.header.sig" and "key" not in request.headers


def test_validity_notify_url_and_options_go_into_the_body() -> None:
    message = Message(
        to="+48500100200",
        text="hi",
        validity=timedelta(hours=2),
        options={"callbackData": "tenant=42", "notifyurlAuthId": "auth-7"},
    )
    before = datetime.now(timezone.utc)
    body = body_of(provider(notify_url="https://example.com/dlr").build_request(message, idempotency_key="k"))
    expiry = datetime.fromisoformat(body["expiry"].replace("Z", "+00:00"))
    assert body["expiry"].endswith("Z") and len(body["expiry"]) == 24
    assert before + timedelta(hours=2) - timedelta(seconds=1) <= expiry <= before + timedelta(hours=2, seconds=5)
    assert body["notifyurl"] == "https://example.com/dlr"
    assert body["callbackData"] == "tenant=42" and body["notifyurlAuthId"] == "auth-7"


def test_region_picks_the_host() -> None:
    assert WebexConnect(service_key=KEY).base_url == "https://api.us.webexconnect.io"
    assert WebexConnect(service_key=KEY, region="au").base_url == "https://api.au.webexconnect.io"


# -- configuration -----------------------------------------------------------------------------


def test_service_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_WEBEX_CONNECT_SERVICE_KEY", "env-key-1234")
    assert WebexConnect().build_request(SMS, idempotency_key="k").headers["key"] == "env-key-1234"


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"service_key": " "}, r"no service_key\. Pass WebexConnect\(service_key=\.\.\.\) or set OMNISEND_"),
        ({"bearer_token": ""}, r"no bearer_token"),
        ({"service_key": KEY, "region": "mars"}, r"region must be one of"),
        ({"service_key": KEY, "notify_url": "http://example.com"}, r"notify_url must be an https"),
        ({"service_key": KEY, "webhook_secret": ""}, r"webhook_secret is empty"),
        ({"service_key": KEY, "base_url": "ftp://x"}, r"base_url must be an http"),
    ],
)
def test_bad_settings_are_configuration_errors(kwargs, pattern) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        WebexConnect(**kwargs)


# -- parsing answers -----------------------------------------------------------------------------


def test_parse_success_partial_from_a_fixture() -> None:
    message = Message(to=["+48500100200", "+10000000000", "+447700900123"], text="hi")
    result = provider().parse_response(answer(fixture("send_queued.json")), message=message, idempotency_key="k")
    assert result.message_id == "6a1f4c1e-0d3b-4b8e-9a53-2f0c1d7e9b10" and result.status is DeliveryStatus.QUEUED
    assert [r.message_id for r in result.succeeded] == [
        "6a1f4c1e-0d3b-4b8e-9a53-2f0c1d7e9b10",
        "6a1f4c1e-0d3b-4b8e-9a53-2f0c1d7e9b10_2",
    ]
    (bad,) = result.failed
    assert bad.to == "+10000000000" and bad.status is DeliveryStatus.REJECTED
    assert isinstance(bad.error, InvalidRecipient) and bad.error.code == "7102"
    with pytest.raises(PartialFailure, match="1 of 3 recipients rejected") as info:
        result.raise_for_failures()
    assert info.value.failed[0].to == "+10000000000"


def test_all_rejected_raises_the_first_error() -> None:
    data = {"response": [{"code": "7109", "description": "User in DnD"}, {"code": "7102", "description": "x"}]}
    message = Message(to=["+48500100200", "+48500100201"], text="hi")
    with pytest.raises(InvalidRecipient, match=r"webex_connect: User in DnD \(code 7109, HTTP 200\)") as info:
        provider().parse_response(answer(data), message=message)
    assert info.value.accepted is False and info.value.raw == data


def test_error_object_from_a_fixture() -> None:
    with pytest.raises(AuthError, match=r"Authentication failed\. \(code 7001, HTTP 200\)") as info:
        provider().parse_response(answer(fixture("send_auth_failed.json")), message=SMS)
    assert info.value.code == "7001" and info.value.retryable is False


def test_a_success_code_in_an_object_is_accepted() -> None:
    result = provider().parse_response(answer({"response": {"code": "1001", "transid": "t-3"}}), message=SMS)
    assert result.message_id == "t-3" and result.status is DeliveryStatus.QUEUED


def test_missing_entries_are_unknown_not_failed() -> None:
    message = Message(to=["+48500100200", "+48500100201"], text="hi")
    result = provider().parse_response(answer({"response": [{"code": "1001", "transid": "t"}]}), message=message)
    assert [r.status for r in result.recipients] == [DeliveryStatus.QUEUED, DeliveryStatus.UNKNOWN]
    assert not result.failed


@pytest.mark.parametrize("data", [{"unexpected": 1}, {"response": []}, {"response": "Queued"}, [1, 2]])
def test_an_unreadable_2xx_answer_is_ambiguous(data) -> None:
    with pytest.raises(TransportError, match="unexpected answer shape") as info:
        provider().parse_response(answer(data), message=SMS)
    assert info.value.accepted is None


def test_non_2xx_without_a_vendor_code_falls_back_to_the_status() -> None:
    with pytest.raises(AuthError, match="HTTP 401") as info:
        provider().parse_response(answer({"message": "Unauthorized"}, status=401), message=SMS)
    assert info.value.code is None and info.value.http_status == 401


# -- the client against the emulator (in-process) -----------------------------------------------


def test_send_through_the_emulator(policy) -> None:
    emulator = WebexConnectEmulator()
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=["+48500100200", "+48500100201"], text="hi", idempotency_key="order-7"))
    assert result.attempts == 1 and result.idempotency_key == "order-7" and len(result.succeeded) == 2
    first, second = (r.message_id for r in result.recipients)
    assert second == f"{first}_1" and emulator.messages[first].idempotency_key == "order-7"
    assert body_of_emulated(emulator, 0)["correlationid"] == "order-7"


def body_of_emulated(emulator: WebexConnectEmulator, index: int) -> Any:
    return json.loads(emulator.requests[index].body)


def test_whatsapp_through_the_emulator(policy) -> None:
    emulator = WebexConnectEmulator(templates=("order_shipped",))
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to="+48500100200", channel="whatsapp", template=Template(name="order_shipped")))
        with pytest.raises(ProviderError, match=r"Invalid template \(code 7108") as info:
            client.send(Message(to="+48500100200", channel="whatsapp", template=Template(name="nope")))
    assert info.value.__class__.__name__ == "TemplateError"
    assert emulator.messages[result.message_id or ""].extra["channel"] == "whatsapp"


def test_scripted_7020_is_retried_with_the_same_correlationid(policy, sleeps) -> None:
    emulator = WebexConnectEmulator()
    emulator.script(Fault.vendor_error("7020"), Fault.refuse())
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
    assert result.attempts == 3 and len(sleeps) == 2 and emulator.accepted_count == 1
    keys = {body_of_emulated(emulator, i)["correlationid"] for i in range(3)}
    assert keys == {result.idempotency_key}


def test_rate_limit_gives_up_after_max_attempts(policy, sleeps) -> None:
    emulator = WebexConnectEmulator(rate_limit=(1, 60.0))
    with inprocess_client(emulator, policy) as client:
        client.send(Message(to="+48500100200", text="one"))
        with pytest.raises(RateLimited, match=r"maximum transaction limit \(code 7020") as info:
            client.send(Message(to="+48500100200", text="two"))
    assert info.value.attempts == 3 and len(sleeps) == 2 and emulator.accepted_count == 1


@pytest.mark.parametrize("code", ["7006", "7011"])
def test_internal_error_codes_are_delivery_unknown_not_retried(policy, code) -> None:
    emulator = WebexConnectEmulator()
    emulator.script(Fault.vendor_error(code))
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(DeliveryUnknown, match="cannot de-duplicate") as info:
            client.send(Message(to="+48500100200", text="hi"))
    assert info.value.code == code and info.value.attempts == 1 and info.value.retryable is False
    assert info.value.idempotency_key and len(emulator.requests) == 1


def test_drop_after_accept_is_delivery_unknown_and_sent_once(policy) -> None:
    emulator = WebexConnectEmulator()
    emulator.script(Fault.drop_after_accept())
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(DeliveryUnknown, match="may have reached the vendor") as info:
            client.send(Message(to="+48500100200", text="hi", idempotency_key="k-9"))
    assert info.value.idempotency_key == "k-9" and info.value.attempts == 1
    assert emulator.accepted_count == 1 and emulator.duplicates() == 0


def test_typed_errors_from_the_emulator(policy) -> None:
    emulator = WebexConnectEmulator(senders=("ACME",), dnd=("+48500100209",), sync_refusals=True)
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(PermissionDenied, match="Invalid Sender ID"):
            client.send(Message(to="+48500100200", text="hi", sender="OTHER"))
        with pytest.raises(InvalidRecipient, match="User in DnD"):
            client.send(Message(to="+48500100209", text="hi", sender="ACME"))
        emulator.balance = 0
        with pytest.raises(InsufficientBalance, match="Not enough credits") as info:
            client.send(Message(to="+48500100200", text="hi", sender="ACME"))
    assert info.value.attempts == 1 and emulator.accepted_count == 0
    wrong = WebexConnect(service_key="wrong-key-1", base_url="http://emulator.test")
    with Client(wrong, retry=policy, http_client=httpx.Client(transport=emulator.transport())) as client:
        with pytest.raises(AuthError, match=r"Authentication failed\. \(code 7001"):
            client.send(SMS)


def test_bearer_token_against_the_emulator(policy) -> None:
    emulator = WebexConnectEmulator(bearer_tokens=("jwt-ok-123",))
    with inprocess_client(emulator, policy, service_key=None, bearer_token="jwt-ok-123") as client:
        assert client.send(SMS).message_id


def test_get_status_is_refused_clearly(policy) -> None:
    emulator = WebexConnectEmulator()
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(
            ValidationError,
            match=r"^webex_connect: Webex Connect does not support status lookups \(Messaging API v1 documents no lookup by transid; use delivery receipts",
        ):
            client.get_status("6a1f4c1e")
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("headers", "body", "code", "exc"),
    [
        ({}, {"deliverychannel": "sms"}, "7002", AuthError),
        ({"key": "test-service-key"}, b"{not json", "7000", ValidationError),
        ({"key": "test-service-key"}, {"destination": [{"msisdn": ["+48500100200"]}]}, "7003", ValidationError),
        ({"key": "test-service-key"}, {"deliverychannel": "sms", "destination": []}, "7003", ValidationError),
        (
            {"key": "test-service-key"},
            {"deliverychannel": "sms", "destination": [{"msisdn": [n]} for n in numbers(1001)]},
            "7009",
            ValidationError,
        ),
        (
            {"key": "test-service-key"},
            {"deliverychannel": "sms", "destination": [{"msisdn": ["+48500100200"]}], "channels": {"sms": {}}},
            "7003",
            ValidationError,
        ),
        (
            {"key": "test-service-key"},
            {
                "deliverychannel": "sms",
                "destination": [{"msisdn": ["+48500100200"]}],
                "channels": {"sms": {"text": "x" * 1025}},
            },
            "7107",
            ValidationError,
        ),
        (
            {"key": "test-service-key"},
            {
                "deliverychannel": "sms",
                "destination": [{"msisdn": ["+48500100200"]}],
                "channels": {"sms": {"text": "hi", "type": "9"}},
            },
            "7004",
            ValidationError,
        ),
        (
            {"key": "test-service-key"},
            {"deliverychannel": "whatsapp", "appid": "nope", "destination": [{"waid": ["48500100200"]}]},
            "7104",
            ValidationError,
        ),
        (
            {"key": "test-service-key"},
            {"deliverychannel": "voice", "destination": [{"msisdn": ["+48500100200"]}]},
            "7106",
            PermissionDenied,
        ),
    ],
    ids=["no-key", "bad-json", "no-channel", "no-destination", "1001", "no-text", "long", "type", "appid", "channel"],
)
def test_emulator_refuses_raw_requests_like_the_vendor(headers, body, code, exc) -> None:
    emulator = WebexConnectEmulator(sync_refusals=True)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(transport=emulator.transport()) as http:
        response = http.post("http://emulator.test/resources/v1/messaging", content=content, headers=headers)
    assert response.status_code == 200 and response.json()["response"]["code"] == code
    with pytest.raises(exc) as info:
        provider().parse_response(response, message=SMS)
    assert type(info.value) is exc and info.value.code == code and emulator.accepted_count == 0


# -- splitting ----------------------------------------------------------------------------------


def test_more_than_1000_recipients_are_split_and_merged(policy) -> None:
    emulator = WebexConnectEmulator()
    message = Message(to=numbers(2500), text="hi", idempotency_key="bulk-1")
    with inprocess_client(emulator, policy) as client:
        result = client.send(message)
    sizes = [len(body_of_emulated(emulator, i)["destination"]) for i in range(3)]
    assert sizes == [1000, 1000, 500] and result.attempts == 3
    assert [r.to for r in result.recipients] == numbers(2500) and not result.failed
    assert (
        result.message_id == result.recipients[0].message_id and isinstance(result.raw, list) and len(result.raw) == 3
    )
    assert emulator.accepted_count == 2500 and emulator.duplicates() == 0
    assert {body_of_emulated(emulator, i)["correlationid"] for i in range(3)} == {"bulk-1"}


def test_a_later_chunk_failure_becomes_per_recipient_errors(policy) -> None:
    emulator = WebexConnectEmulator(balance=100.05, price=0.1)
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=numbers(2100), text="hi"))
    assert len(result.succeeded) == 1000 and len(result.failed) == 1100 and len(emulator.requests) == 3
    assert all(isinstance(r.error, InsufficientBalance) and r.status is DeliveryStatus.REJECTED for r in result.failed)
    with pytest.raises(PartialFailure, match="1100 of 2100"):
        result.raise_for_failures()


def test_a_later_chunk_timeout_is_delivery_unknown_per_recipient(policy) -> None:
    emulator = WebexConnectEmulator()
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 2:
            raise httpx.ReadTimeout("slow", request=request)
        reply = emulator.handle_httpx(request)
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body)

    wc = WebexConnect(service_key=emulator.credentials[0], base_url="http://emulator.test")
    with Client(wc, retry=policy, http_client=httpx.Client(transport=httpx.MockTransport(handler))) as client:
        result = client.send(Message(to=numbers(1500), text="hi"))
    assert len(calls) == 2 and len(result.succeeded) == 1000
    unknown = result.failed
    assert len(unknown) == 500 and all(r.status is DeliveryStatus.UNKNOWN for r in unknown)
    assert all(isinstance(r.error, DeliveryUnknown) and r.error.accepted is None for r in unknown)


def test_the_first_chunk_failure_propagates(policy) -> None:
    emulator = WebexConnectEmulator(balance=0)
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(InsufficientBalance, match="code 7103"):
            client.send(Message(to=numbers(1500), text="hi"))
    assert len(emulator.requests) == 1


def test_the_flow_by_hand_sends_a_step_per_chunk() -> None:
    wc = provider()
    flow = wc.send_flow(Message(to=numbers(2001), text="hi"), idempotency_key="k")
    step = next(flow)
    ok = answer({"response": [{"code": "1001", "transid": f"t{i}"} for i in range(1000)]})
    step = flow.send(step.parse(ok))
    assert len(body_of(step.request)["destination"]) == 1000 and step.repeat is Repeat.ONCE
    step = flow.throw(ServiceUnavailable("down", provider="webex_connect", accepted=False))
    assert len(body_of(step.request)["destination"]) == 1
    with pytest.raises(StopIteration) as done:
        flow.send(step.parse(answer({"response": [{"code": "1001", "transid": "last"}]})))
    result = done.value.value
    assert len(result.recipients) == 2001 and len(result.failed) == 1000
    assert result.recipients[-1].message_id == "last"


# -- bad input: refused before any request ------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "pattern", "field"),
    [
        (Message(to="+48500100200", text="x" * 1025), r"text is 1025 characters; .+ at most 1024", "text"),
        (
            Message(to="+48500100200", text="hi", idempotency_key="k" * 51),
            r"51 bytes; .+ at most 50 bytes",
            "idempotency_key",
        ),
        (Message(to="+48500100200", text="hi", idempotency_key="é" * 26), r"52 bytes", "idempotency_key"),
        (Message(to="+48500100200", channel="whatsapp", text="hi"), r"free-form WhatsApp text", "template"),
        (Message(to="+48500100200", text="hi", template=Template(name="t")), r"either text or a template", "template"),
        (
            Message(to="+48500100200", text="hi", options={"callbackData": "c" * 2001}),
            r"at most 2000",
            "options.callbackData",
        ),
        (
            Message(to="+48500100200", text="hi", options={"correlationid": "c" * 60}),
            r"may not set 'correlationid'",
            "options.correlationid",
        ),
    ],
)
def test_bad_input_is_refused_before_any_request(policy, message, pattern, field) -> None:
    emulator = WebexConnectEmulator()
    with inprocess_client(emulator, policy) as client:
        with pytest.raises(ValidationError, match=pattern) as info:
            client.send(message)
    assert info.value.field == field and info.value.code is None and emulator.requests == []


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        (Message(to="+48500100200", channel="viber", text="hi"), r"does not support the 'viber' channel"),
        (Message(to="+48500100200", text="hi", media=Media(url="https://x/y.png")), r"does not support media"),
        (
            Message(to="+48500100200", text="hi", scheduled_at=datetime.now(timezone.utc) + timedelta(hours=1)),
            r"does not support scheduled_at",
        ),
    ],
)
def test_unsupported_features_are_refused(message, pattern) -> None:
    with pytest.raises(ValidationError, match=pattern):
        provider().build_request(message, idempotency_key="k")


def test_whatsapp_without_an_app_id_is_refused() -> None:
    message = Message(to="+48500100200", channel="whatsapp", template=Template(name="t"))
    with pytest.raises(ValidationError, match=r"needs the app id") as info:
        provider().build_request(message, idempotency_key="k")
    assert info.value.field == "appid"


# "Up to 1000 destinations ... subject to your TPS limits: if your TPS is 10 you can send up to 10
# destinations at once" (developers.webexconnect.io, getting started with the Messaging API).
def test_max_destinations_caps_each_request_at_the_tenants_tps(policy) -> None:
    emulator = WebexConnectEmulator()
    with inprocess_client(emulator, policy, max_destinations=10) as client:
        result = client.send(Message(to=numbers(25), text="hi", idempotency_key="tps"))
        outcomes = list(client.send_many(Message(to=n, text="sale") for n in numbers(25)))
    sizes = [len(body_of_emulated(emulator, i)["destination"]) for i in range(len(emulator.requests))]
    assert sizes[:3] == [10, 10, 5] and all(size <= 10 for size in sizes) and len(sizes) == 6
    assert [r.to for r in result.recipients] == numbers(25) and not result.failed
    assert all(outcome.ok for outcome in outcomes) and len(outcomes) == 25
    with pytest.raises(ValidationError, match=r"11 recipients: at most 10 destinations per request"):
        provider(max_destinations=10).build_request(Message(to=numbers(11), text="hi"), idempotency_key="k")
    assert provider().max_recipients == 1000 and WebexConnect.max_recipients == 1000


@pytest.mark.parametrize("value", [0, 1001, -5, True, 10.0, "10"])
def test_max_destinations_out_of_range_is_a_configuration_error(value) -> None:
    with pytest.raises(ConfigurationError, match="max_destinations"):
        provider(max_destinations=value)


def test_more_than_1000_destinations_without_splitting(policy) -> None:
    with pytest.raises(ValidationError, match=r"1001 recipients: at most 1000 destinations per request"):
        provider().build_request(Message(to=numbers(1001), text="hi"), idempotency_key="k")
    emulator = WebexConnectEmulator()
    with inprocess_client(emulator, policy, split_batches=False) as client:
        with pytest.raises(ValidationError, match="at most 1000 destinations") as info:
            client.send(Message(to=numbers(1001), text="hi"))
    assert info.value.field == "to" and emulator.requests == []


# -- receipts -----------------------------------------------------------------------------------


def test_receipt_from_the_emulator_round_trip(policy) -> None:
    emulator = WebexConnectEmulator(webhook_secret=SECRET)
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to="+48500100200", text="hi", idempotency_key="order-3"))
        (report,) = client.provider.parse_webhook(**emulator.deliver(result.message_id or ""))
    assert report.status is DeliveryStatus.DELIVERED and report.message_id == result.message_id
    assert report.recipient == "+48500100200" and report.idempotency_key == "order-3" and report.error is None
    assert report.timestamp is not None and report.timestamp.tzinfo is not None
    assert report.event_id == f"{result.message_id}:Delivered:7500"


def test_failed_receipt_keeps_the_code_as_reason() -> None:
    body = (FIXTURES / "receipt_failed.json").read_bytes()
    (report,) = provider().parse_webhook(body=body, headers={"Content-Type": "application/json"})
    assert report.status is DeliveryStatus.FAILED and report.vendor_status == "Failed"
    assert report.error is not None and report.error.error_class == "InvalidRecipient"
    assert report.error.code == "7102" and report.error.message == "Invalid address"
    assert report.message_id == "dba07fc1-5c2e-4d7b-a0b4-1f3e2d4c5b6a" and report.idempotency_key == "order-1"
    assert report.recipient == "+447700900123"
    assert report.timestamp == datetime(2022, 10, 10, 12, 53, 13, 749000, tzinfo=timezone.utc)


def test_whatsapp_reason_and_unknown_codes_are_kept() -> None:
    body = receipt("Failed", "7200", additionalInfo="131026: receiver incapable", Description="Unknown Status")
    (report,) = provider().parse_webhook(body=body)
    assert report.error is not None and report.error.code == "7200"
    assert report.error.message == "Unknown Status - 131026: receiver incapable"
    (other,) = provider().parse_webhook(body=receipt("Un-Delivered", "7890"))
    assert other.status is DeliveryStatus.UNDELIVERED and other.error is not None
    assert other.error.error_class == "DeliveryFailed" and other.error.code == "7890"


def test_several_notifications_in_one_body() -> None:
    notes = [json.loads(receipt("Submitted")), json.loads(receipt("Read", "7502"))]
    reports = provider().parse_webhook(body=json.dumps(notes))
    assert [r.status for r in reports] == [DeliveryStatus.SENT, DeliveryStatus.READ]


@pytest.mark.parametrize(
    "header",
    [
        sign(receipt("Delivered")),
        sign(receipt("Delivered")).upper(),
        "sha256=" + sign(receipt("Delivered")),
        sign(receipt("Delivered"), algorithm="sha512"),
        "sha512=" + sign(receipt("Delivered"), algorithm="sha512"),
        # "SHA-1 ... will work as is for the existing configurations" (help.webexconnect.io
        # outbound-webhooks: webhooks configured before April 2022 still sign with HMAC SHA-1).
        sign(receipt("Delivered"), algorithm="sha1"),
        "sha1=" + sign(receipt("Delivered"), algorithm="sha1"),
    ],
    ids=["sha256", "sha256-upper", "sha256-prefixed", "sha512", "sha512-prefixed", "sha1", "sha1-prefixed"],
)
def test_signed_receipts_are_accepted(header) -> None:
    reports = provider(webhook_secret=SECRET).parse_webhook(
        body=receipt("Delivered"), headers={"X-Hub-Signature": header}
    )
    assert reports[0].status is DeliveryStatus.DELIVERED


@pytest.mark.parametrize(
    ("headers", "pattern"),
    [
        ({}, "without x-hub-signature"),
        ({"x-hub-signature": ""}, "without x-hub-signature"),
        ({"x-hub-signature": sign(receipt("Delivered"), secret="other")}, "does not match"),
        ({"x-hub-signature": sign(receipt("Failed"))}, "does not match"),
        (
            {"x-hub-signature": "sha1=" + hmac.new(b"other", receipt("Delivered"), "sha1").hexdigest()},
            "does not match",
        ),
        ({"x-hub-signature": "sha1=" + sign(receipt("Delivered"))}, "does not match"),
        ({"x-hub-signature": "deadbeef"}, "does not match"),
        ({"x-hub-signature": "sha256=ü" * 3}, "does not match"),
    ],
    ids=["missing", "empty", "wrong-secret", "other-body", "sha1-wrong-secret", "sha1-prefix-sha256-digest", "short", "garbage"],
)
def test_forged_or_missing_signatures_are_auth_errors(headers, pattern) -> None:
    with pytest.raises(AuthError, match=rf"webex_connect: .*{pattern}") as info:
        provider(webhook_secret=SECRET).parse_webhook(body=receipt("Delivered"), headers=headers)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_signature_is_checked_before_the_body_is_read() -> None:
    with pytest.raises(AuthError, match="does not match"):
        provider(webhook_secret=SECRET).parse_webhook(body=b"not json", headers={"x-hub-signature": "0" * 64})


def test_emulator_signs_with_sha512(policy) -> None:
    emulator = WebexConnectEmulator(webhook_secret=SECRET, signature_algorithm="sha512")
    with inprocess_client(emulator, policy) as client:
        result = client.send(SMS)
    kwargs = emulator.deliver(result.message_id or "", delivered=False)
    assert len(kwargs["headers"]["x-hub-signature"]) == 128
    (report,) = client.provider.parse_webhook(**kwargs)
    assert report.status is DeliveryStatus.UNDELIVERED and report.error is not None and report.error.code == "7201"


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (b"not json", "not JSON"),
        (b'{"other": 1}', "without deliveryInfoNotification"),
        (b'["x"]', "without deliveryInfo"),
    ],
)
def test_malformed_receipts_are_validation_errors(body, pattern) -> None:
    with pytest.raises(ValidationError, match=pattern):
        provider().parse_webhook(body=body)


# -- secrets ------------------------------------------------------------------------------------


def test_no_secret_in_errors_or_reprs() -> None:
    wc = provider(webhook_secret=SECRET)
    echo = answer({"response": {"code": "7001", "description": f"bad key {KEY}", "echo": KEY}})
    with pytest.raises(AuthError) as info:
        wc.parse_response(echo, message=SMS)
    error = info.value
    for text in (str(error), repr(error), repr(error.raw), str(error.vendor_message), repr(wc)):
        assert KEY not in text and SECRET not in text
    back = pickle.loads(pickle.dumps(error))
    assert KEY not in repr(back.raw) and back.code == "7001"
    bearer = WebexConnect(bearer_token="jwt-secret-abcdef")
    assert "jwt-secret-abcdef" not in repr(bearer)


# -- over real TCP ------------------------------------------------------------------------------


def tcp_client(server_url: str, emulator: WebexConnectEmulator, policy, **options: Any) -> Client:
    return Client(emulator.make_provider(server_url, **options), retry=policy, timeout=2.0)


@pytest.mark.tcp
def test_tcp_success_and_typed_error(serve, policy) -> None:
    emulator = WebexConnectEmulator(sync_refusals=True)
    server = serve(emulator)
    with tcp_client(server.base_url, emulator, policy) as client:
        result = client.send(Message(to=["+48500100200", emulator.invalid_number], text="hi"))
        with pytest.raises(InvalidRecipient, match=r"Invalid address \(code 7102, HTTP 200\)"):
            client.send(Message(to=emulator.invalid_number, text="hi"))
    assert result.status is DeliveryStatus.QUEUED and len(result.failed) == 1 and emulator.accepted_count == 1


@pytest.mark.tcp
def test_tcp_rate_limit_and_reset_are_retried(serve, policy, sleeps) -> None:
    emulator = WebexConnectEmulator()
    emulator.script(Fault.vendor_error("7020"), Fault.http_error(503))
    server = serve(emulator)
    with tcp_client(server.base_url, emulator, policy) as client:
        result = client.send(SMS)
    assert result.attempts == 3 and len(sleeps) == 2 and emulator.accepted_count == 1


@pytest.mark.tcp
def test_tcp_ambiguous_failure_is_delivery_unknown(serve, policy) -> None:
    emulator = WebexConnectEmulator()
    emulator.script(Fault.drop_after_accept())
    server = serve(emulator)
    with tcp_client(server.base_url, emulator, policy) as client:
        with pytest.raises(DeliveryUnknown, match="webex_connect") as info:
            client.send(SMS)
    assert info.value.attempts == 1 and emulator.accepted_count == 1 and emulator.duplicates() == 0


@pytest.mark.tcp
def test_tcp_truncated_answer_is_delivery_unknown(serve, policy) -> None:
    emulator = WebexConnectEmulator()
    emulator.script(Fault.truncated())
    server = serve(emulator)
    with tcp_client(server.base_url, emulator, policy) as client:
        with pytest.raises(DeliveryUnknown, match="not valid JSON"):
            client.send(SMS)
    assert len(emulator.requests) == 1 and emulator.accepted_count == 1


# -- async --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_send_retry_and_split(policy, sleeps) -> None:
    emulator = WebexConnectEmulator()
    emulator.script(Fault.vendor_error("7302"))
    async with inprocess_async_client(emulator, policy) as client:
        assert isinstance(client, AsyncClient)
        result = await client.send(Message(to=numbers(1200), text="hi"))
        emulator.script(Fault.vendor_error("7006"))
        with pytest.raises(DeliveryUnknown, match="code 7006"):
            await client.send(SMS)
    assert result.attempts == 3 and len(result.succeeded) == 1200 and len(sleeps) == 1


@pytest.mark.parametrize("sender", ["ThisIsTooLongSender", "Shop!", "+1234567890123456"])
def test_sender_id_rule_is_checked_before_any_request(sender: str) -> None:
    provider = WebexConnect(service_key="svc-key-123456")
    with pytest.raises(ValidationError, match=rf"sender '{re.escape(sender)}' is not allowed: up to 11"):
        provider.build_request(Message(to="+48500100200", text="hi", sender=sender), idempotency_key="k")
    assert provider.build_request(Message(to="+48500100200", text="hi", sender="Shop_1"), idempotency_key="k")


# Transaction Status codes the vendor words as "the message could not be delivered"
# (help.webexconnect.io/docs/api-codes, kept in tests/fixtures/webex_connect_codes.json): each one
# is a DeliveryFailed, in a failed receipt and in a send answer.
DELIVERY_FAILURES = [
    "7201",
    "7202",
    "7206",
    "7207",
    "7208",
    "7209",
    "7211",
    "7214",
    "7301",
    "7401",
    "7402",
    "7403",
    "7404",
    "7503",
]


@pytest.mark.parametrize("code", DELIVERY_FAILURES)
def test_delivery_failure_codes_are_delivery_failed_in_receipts(code: str) -> None:
    (words,) = {
        text
        for row in load_codes("webex_connect")["sections"]["Transaction Status"]
        if row["code"] == code
        for text in row["messages"]
    }
    (report,) = provider().parse_webhook(body=receipt("Failed", code, Description=words))
    assert report.status.is_final and report.error is not None
    assert report.error.exception_class is DeliveryFailed and (report.error.code, report.error.message) == (code, words)
    if code != "7208":  # 7208 means "Source ip is not in the allowed list" in a send answer
        with pytest.raises(DeliveryFailed, match=re.escape(words)) as info:
            provider().parse_response(error_answer(code, words), message=SMS, idempotency_key="k")
        assert info.value.accepted is True and not info.value.retryable
        two = answer({"response": [{"code": "1001", "transid": "t-1"}, {"code": code, "description": words}]})
        result = provider().parse_response(two, message=Message(to=["+48500100200", "+48500100201"], text="hi"))
        assert result.failed[0].status is DeliveryStatus.FAILED and isinstance(result.failed[0].error, DeliveryFailed)


# "Invalid sender", "Invalid address" and "Message length exceeded" come back as a later receipt with
# deliveryStatus "Failed" and the code (developers.webexconnect.io/reference/sms-1, the SMS receipt
# examples for 7101, 7102 and 7107), not as a refusal of the send: the emulator does the same.
@pytest.mark.parametrize(
    ("message", "code", "cls"),
    [
        (Message(to="+48500100200", text="hi", sender="OTHER"), "7101", PermissionDenied),
        (Message(to="+10000000000", text="hi", sender="ACME"), "7102", InvalidRecipient),
        (Message(to="+48500100200", text="x" * 1025, sender="ACME"), "7107", ValidationError),
    ],
    ids=["sender", "number", "length"],
)
def test_emulator_answers_invalid_input_with_a_later_failed_receipt(policy, message, code, cls) -> None:
    emulator = WebexConnectEmulator(senders=("ACME",))
    balance = emulator.balance
    provider = emulator.make_provider("http://emulator.test")
    if code == "7107":  # the adapter's own pre-flight refuses a text over 1024 characters: post it raw
        body = {
            "deliverychannel": "sms",
            "destination": [{"msisdn": [message.recipients[0]]}],
            "channels": {"sms": {"senderid": "ACME", "text": message.text, "type": "1"}},
        }
        with httpx.Client(transport=emulator.transport()) as http:
            response = http.post(f"http://emulator.test{PATH}", json=body, headers={"key": emulator.credentials[0]})
        result = provider.parse_response(response, message=message)
    else:
        with inprocess_client(emulator, policy) as client:
            result = client.send(message)
    assert result.status is DeliveryStatus.QUEUED and not result.failed and result.message_id
    (report,) = provider.parse_webhook(**emulator.deliver(str(result.message_id)))
    assert report.status is DeliveryStatus.FAILED and report.vendor_status == "Failed"
    assert report.error is not None and (report.error.code, report.error.exception_class) == (code, cls)
    assert emulator.balance == balance  # a message that fails is not charged
