"""Clickatell One API: tables, requests, answers, retries, split sends, status lookups, callbacks."""

from __future__ import annotations

import json
import pickle
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from omnisend import Client, DeliveryStatus, Message, RetryPolicy
from omnisend._docs import render
from omnisend.errors import (
    AuthError,
    ConfigurationError,
    DeliveryFailed,
    DeliveryUnknown,
    InsufficientBalance,
    InvalidRecipient,
    NotFound,
    OmnisendError,
    PartialFailure,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    TemplateError,
    TransportError,
    ValidationError,
)
from omnisend.models import Media, ReportError, Template
from omnisend.providers import Clickatell
from omnisend.providers.base import Repeat, strict_adapters
from omnisend.providers.clickatell import ERRORS, STATUS_CODES, STATUSES
from omnisend.testing import Fault
from omnisend.testing.clickatell import HTTP_STATUS, ClickatellEmulator
from tests.conftest import FIXTURES, inprocess_async_client, inprocess_client, load_codes

KEY = "ck-live-9f8e7d6c5b4a"
BASE = "https://platform.clickatell.com"
TO = "+48500100200"


def provider(**options: Any) -> Clickatell:
    return Clickatell(api_key=KEY, **options)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / "clickatell" / name).read_text(encoding="utf-8"))


def sms(to: str | list[str] = TO, **fields: Any) -> Message:
    return Message(to=to, text=fields.pop("text", "Your code is 1234"), **fields)


def sent(request: httpx.Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(request.content)["messages"]
    return messages


def accept_all(request: httpx.Request) -> httpx.Response:
    """A 202 accepting every message of ``request`` (ids derived from the number)."""
    items = [{"apiMessageId": f"id-{m['to']}", "accepted": True, "to": m["to"], "error": None} for m in sent(request)]
    return httpx.Response(202, json={"messages": items, "error": None})


def callback(*updates: dict[str, Any], **envelope: Any) -> bytes:
    return json.dumps({**envelope, "event": {"messageStatusUpdate": list(updates)}}).encode()


# -- tables against the documented code lists ------------------------------------------------


def test_error_table_holds_every_documented_request_code() -> None:
    codes = load_codes("clickatell")
    assert set(ERRORS) == {row["code"] for row in codes["errors"]}
    assert not set(ERRORS) & set(codes["reserved_errors"])


def test_status_table_holds_every_seed_status_by_number_and_name() -> None:
    codes = load_codes("clickatell")
    documented = codes["statuses"] + codes["newer_statuses"]
    assert {k for k in STATUSES if isinstance(k, int)} == {row["code"] for row in documented}
    named = {row["name"] for row in codes["current_status_names"]}
    assert {k for k in STATUSES if isinstance(k, str)} == {row["name"] for row in documented} | named
    assert set(STATUSES.families) == set(codes["current_status_families"])
    assert {row["name"]: row["code"] for row in documented} == STATUS_CODES
    assert len(codes["statuses"]) == 29 and 83 in {row["code"] for row in codes["statuses"]}


@pytest.mark.parametrize(("code", "entry"), ERRORS.items(), ids=[str(c) for c in ERRORS])
def test_global_error_code_raises_its_class(code: int, entry: Any) -> None:
    body = {"messages": [], "error": {"code": code, "description": entry.meaning}}
    with pytest.raises(entry.exc, match=re.escape(entry.meaning)) as info:
        provider().parse_response(httpx.Response(HTTP_STATUS.get(code, 400), json=body))
    error = info.value
    assert type(error) is entry.exc
    assert (error.code, error.provider, error.vendor_message, error.raw) == (code, "clickatell", entry.meaning, body)
    assert error.retryable is entry.is_retryable
    assert error.accepted is (None if entry.ambiguous else False)


@pytest.mark.parametrize(("code", "entry"), ERRORS.items(), ids=[str(c) for c in ERRORS])
def test_message_level_error_code_raises_its_class(code: int, entry: Any) -> None:
    item = {"apiMessageId": None, "accepted": False, "to": TO[1:], "error": {"code": code, "description": "why"}}
    with pytest.raises(entry.exc, match="why") as info:
        provider().parse_response(httpx.Response(400, json={"messages": [item], "error": None}), message=sms())
    assert type(info.value) is entry.exc and info.value.code == code and info.value.http_status == 400


def test_the_retried_request_codes_are_exactly_19_and_43() -> None:
    assert {code for code, entry in ERRORS.items() if entry.is_retryable and not entry.ambiguous} == {19, 43}
    assert {code for code, entry in ERRORS.items() if entry.ambiguous} == {18}


@pytest.mark.parametrize("code", [29, 34, 99])
@pytest.mark.parametrize(
    ("http_status", "cls"),
    [(400, ValidationError), (401, AuthError), (429, RateLimited), (500, ServiceUnavailable), (418, ProviderError)],
)
def test_reserved_or_unknown_request_code_takes_its_class_from_the_http_status(
    code: int, http_status: int, cls: type[ProviderError]
) -> None:
    body = {"messages": [], "error": {"code": code, "description": "Reserved"}}
    with pytest.raises(ProviderError, match="Reserved") as info:
        provider().parse_response(httpx.Response(http_status, json=body))
    assert type(info.value) is cls and info.value.code == code and info.value.http_status == http_status


@pytest.mark.parametrize(("value", "entry"), STATUSES.items(), ids=[str(v) for v in STATUSES])
def test_status_row_maps_to_its_delivery_status_and_failure_reason(value: int | str, entry: Any) -> None:
    update: dict[str, Any] = {"messageId": "m1", "timestamp": 1506607698860}
    update["statusCode" if isinstance(value, int) else "status"] = value
    (report,) = provider().parse_webhook(body=callback(update))
    assert report.status is entry.status and report.vendor_status == value
    number = value if isinstance(value, int) else STATUS_CODES.get(value, value)
    if entry.error is None:
        assert report.error is None
    else:
        assert report.error is not None
        assert (report.error.error_class, report.error.code) == (entry.error.__name__, number)
        assert issubclass(report.error.exception_class, ProviderError)


@pytest.mark.parametrize("value", [999, "SOMETHING_NEW"])
def test_unknown_status_is_unknown_and_keeps_the_raw_value(value: int | str) -> None:
    update = {"messageId": "m1", "statusCode" if isinstance(value, int) else "status": value}
    (report,) = provider().parse_webhook(body=callback(update))
    assert report.status is DeliveryStatus.UNKNOWN and report.vendor_status == value and report.error is None
    assert report.raw == update


# The current One API status enum (help.clickatell.com One API reference; the public One API
# client farrel/clickatell-rust-tools message_status/status.rs): each name is final, and its class
# is pinned here from the vendor's words in tests/fixtures/clickatell_codes.json.
CURRENT_NAMES: dict[str, tuple[DeliveryStatus, type[OmnisendError]]] = {
    "STOP_MARKETING_MESSAGES": (DeliveryStatus.REJECTED, InvalidRecipient),
    "EXCESSIVE_MESSAGES_TO_RECIPIENT": (DeliveryStatus.REJECTED, RateLimited),
    "ENCRYPTION_VALIDATION_ERROR": (DeliveryStatus.FAILED, ValidationError),
    "MEDIA_TYPE_NOT_SUPPORTED": (DeliveryStatus.FAILED, ValidationError),
    "WHATSAPP_HSM_PARAM_COUNT_MISMATCH": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_HSM_IS_MISSING": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_HSM_DOWNLOAD_FAILED": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_HSM_PACK_IS_MISSING": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_HSM_PARAM_IS_MISSING": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_HSM_PARAM_DOWNLOAD_FAILED": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_HSM_PARAM_PACK_IS_MISSING": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_TEMPLATE_FORMATTING_POLICY_VIOLATED": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_TEMPLATE_MEDIA_FORMAT_UNSUPPORTED": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_PARAMETER_MISSING": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_PARAMETER_INVALID": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_PARAMETER_NOT_REQUIRED": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_TEMPLATE_INVALID_URL": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_TEMPLATE_INVALID_PHONE_NUMBER": (DeliveryStatus.REJECTED, TemplateError),
    "WHATSAPP_TEMPLATE_RECEIVER_NO_BUTTON_SUPPORT": (DeliveryStatus.UNDELIVERED, DeliveryFailed),
    # Families: a member the tables do not list yet still reads as its family's failure.
    "ANONYMOUS_USER_ID_NOT_FOUND": (DeliveryStatus.FAILED, InvalidRecipient),
    "WHATSAPP_TEMPLATE_SOMETHING_NEW": (DeliveryStatus.REJECTED, TemplateError),
    "MEDIA_SOMETHING_NEW": (DeliveryStatus.FAILED, ValidationError),
}


def test_every_current_name_is_pinned() -> None:
    assert {row["name"] for row in load_codes("clickatell")["current_status_names"]} <= set(CURRENT_NAMES)


@pytest.mark.parametrize(("name", "expected"), CURRENT_NAMES.items(), ids=list(CURRENT_NAMES))
def test_current_status_names_are_final_failures_with_their_class(
    name: str, expected: tuple[DeliveryStatus, type[OmnisendError]]
) -> None:
    # A callback for a status whose number the vendor has not published (the name decides), and
    # a status lookup, which carries the name only.
    update = {"messageId": "m1", "statusCode": 150, "status": name, "timestamp": 1506607698860}
    (report,) = provider().parse_webhook(body=callback(update))
    status, cls = expected
    assert report.status is status and report.status.is_final and report.vendor_status == name
    assert report.error is not None and report.error.exception_class is cls and report.error.code == 150
    looked_up = provider().parse_status(httpx.Response(200, json={"whatsapp": {"status": name, "timestamp": 1}}))
    assert looked_up.status is status and looked_up.error is not None and looked_up.error.exception_class is cls


@pytest.mark.parametrize(("number", "name"), [(20, "EXPIRED"), (23, "DELIVERY_FAILURE")])
def test_network_failures_are_delivery_failed(number: int, name: str) -> None:
    # "Message has expired", "Error delivering message" (One API message status table): the
    # vendor took the message and the network could not deliver it.
    (report,) = provider().parse_webhook(body=callback({"messageId": "m1", "statusCode": number, "status": name}))
    assert report.error is not None and report.error.exception_class is DeliveryFailed and report.error.code == number


@pytest.mark.parametrize("number", sorted(set(ERRORS) & {k for k in STATUSES if isinstance(k, int)}))
def test_the_two_code_namespaces_never_mix(number: int) -> None:
    (report,) = provider().parse_webhook(body=callback({"messageId": "m1", "statusCode": number}))
    status_reason = STATUSES[number].error
    assert (report.error.error_class if report.error else None) == (status_reason.__name__ if status_reason else None)
    item = {"accepted": False, "to": TO[1:], "error": {"code": number, "description": "x"}}
    with pytest.raises(ERRORS[number].exc) as info:
        provider().parse_response(httpx.Response(400, json={"messages": [item]}), message=sms())
    assert type(info.value) is ERRORS[number].exc


def test_status_25_is_a_balance_problem_and_request_error_25_a_bad_recipient() -> None:
    update = {"messageId": "m1", "statusCode": 25, "status": "INSUFFICIENT_ACCOUNT_BALANCE"}
    (report,) = provider().parse_webhook(body=callback(update))
    assert report.status is DeliveryStatus.REJECTED
    assert report.error == ReportError("InsufficientBalance", 25, STATUSES["INSUFFICIENT_ACCOUNT_BALANCE"].meaning)
    item = {"accepted": False, "to": TO[1:], "error": {"code": 25, "description": "Invalid recipient address"}}
    with pytest.raises(InvalidRecipient, match="Invalid recipient address") as info:
        provider().parse_response(httpx.Response(400, json={"messages": [item]}), message=sms())
    assert not isinstance(info.value, InsufficientBalance)


def test_docs_page_is_generated_from_the_tables() -> None:
    page = Path(__file__).parents[2] / "docs" / "providers" / "clickatell.md"
    assert page.read_text(encoding="utf-8") == render(Clickatell)


# -- configuration and secrets ---------------------------------------------------------------


def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNISEND_CLICKATELL_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OMNISEND_CLICKATELL_API_KEY"):
        Clickatell()
    with pytest.raises(ConfigurationError, match=r"Clickatell\(api_key=\.\.\.\)"):
        Clickatell(api_key="  ")


def test_key_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_CLICKATELL_API_KEY", "env-key-1234")
    request = Clickatell().build_request(sms(), idempotency_key="k")
    assert request.headers["authorization"] == "env-key-1234"


def test_the_key_never_shows_in_errors_or_reprs() -> None:
    body = {"messages": [], "error": {"code": 1, "description": f"Invalid or missing integration API Key {KEY}"}}
    with pytest.raises(AuthError, match="Invalid or missing") as info:
        provider().parse_response(httpx.Response(401, json=body))
    error = info.value
    for text in (str(error), repr(error), json.dumps(error.raw), str(error.vendor_message), repr(provider())):
        assert KEY not in text
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is AuthError and restored.code == 1 and KEY not in repr(restored.raw)


# -- golden requests ---------------------------------------------------------------------------


def test_golden_sms_request() -> None:
    request = provider().build_request(sms(), idempotency_key="order-123")
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/v1/message")
    assert request.headers["authorization"] == KEY
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "messages": [
            {"channel": "sms", "to": "48500100200", "content": "Your code is 1234", "clientMessageId": "order-123"}
        ]
    }


def test_golden_sms_request_with_sender_several_recipients_and_options() -> None:
    message = sms([TO, "+27999000001"], sender="+12027530410", options={"validityPeriod": 60})
    request = provider().build_request(message, idempotency_key="k1")
    common = {"content": "Your code is 1234", "clientMessageId": "k1", "from": "12027530410", "validityPeriod": 60}
    assert sent(request) == [
        {"channel": "sms", "to": "48500100200", **common},
        {"channel": "sms", "to": "27999000001", **common},
    ]


def test_golden_whatsapp_text_request() -> None:
    request = provider().build_request(sms(channel="whatsapp", text="Hello"), idempotency_key="k")
    assert sent(request) == [{"channel": "whatsapp", "to": "48500100200", "content": "Hello", "clientMessageId": "k"}]


@pytest.mark.parametrize("params", [["John", "Clickatell"], {"2": "Clickatell", "1": "John"}])
def test_golden_whatsapp_template_request(params: list[str] | dict[str, str]) -> None:
    message = Message(to=TO, channel="whatsapp", template=Template(name="welcome_demo", params=params))
    request = provider().build_request(message, idempotency_key="k")
    assert sent(request) == [
        {
            "channel": "whatsapp",
            "to": "48500100200",
            "hsm": {"template": "welcome_demo", "parameters": {"1": "John", "2": "Clickatell"}},
            "clientMessageId": "k",
        }
    ]


def test_golden_status_request() -> None:
    request = provider(base_url="http://127.0.0.1:9/").build_status_request("abc/1")
    assert (request.method, str(request.url)) == ("GET", "http://127.0.0.1:9/v1/message/abc%2F1")
    assert request.headers["authorization"] == KEY


# -- bad input: refused before any request --------------------------------------------------------

LONG_SMS = "a" * (153 * 35 + 1)
BAD_INPUT = [
    ("sms-over-35-parts", lambda: sms(text=LONG_SMS), "at most 35", "text"),
    ("whatsapp-over-4096", lambda: sms(channel="whatsapp", text="x" * 4097), "at most 4096", "text"),
    ("template-without-params", lambda: Message(to=TO, channel="whatsapp", template=Template(name="t")), "no parameters", "template.params"),
    ("template-params-gap", lambda: Message(to=TO, channel="whatsapp", template=Template(name="t", params={"1": "a", "3": "c"})), "without gaps", "template.params"),
    ("template-params-named", lambda: Message(to=TO, channel="whatsapp", template=Template(name="t", params={"name": "a"})), "positional", "template.params"),
    ("template-param-newline", lambda: Message(to=TO, channel="whatsapp", template=Template(name="t", params=["a\nb"])), "new line", "template.params"),
    ("template-param-spaces", lambda: Message(to=TO, channel="whatsapp", template=Template(name="t", params=["a     b"])), "4 spaces", "template.params"),
    ("template-language", lambda: Message(to=TO, channel="whatsapp", template=Template(name="t", params=["a"], language="en")), "Template.language", "template.language"),
    ("template-and-text", lambda: Message(to=TO, channel="whatsapp", text="hi", template=Template(name="t", params=["a"])), "not both", "text"),
    ("template-on-sms", lambda: Message(to=TO, template=Template(name="t", params=["a"])), "templates on SMS", "template"),
    ("whatsapp-media-without-template", lambda: Message(to=TO, channel="whatsapp", media=Media(url="https://x.test/a.png")), "media", "media"),
    ("viber", lambda: sms(channel="viber"), "'viber' channel", None),
    ("scheduled", lambda: sms(scheduled_at=datetime.now(timezone.utc) + timedelta(hours=1)), "scheduled_at", "scheduled_at"),
    ("validity", lambda: sms(validity=timedelta(hours=1)), "validity", "validity"),
    ("alphanumeric-sender", lambda: sms(sender="MyShop"), "does not support alphanumeric sender ids", "sender"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "match", "field"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_before_any_request(make: Any, match: str, field: str | None, policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    with inprocess_client(emulator, policy) as client, pytest.raises(ValidationError, match=match) as info:
        client.send(make())
    assert info.value.code is None and info.value.field == field and info.value.provider == "clickatell"
    assert emulator.requests == []


@pytest.mark.parametrize("number", ["0500100200", "+48 5", "48500100200", "+0123456789"])
def test_non_e164_number_is_refused(number: str) -> None:
    with pytest.raises(ValidationError, match="not an E.164 number"):
        Message(to=number, text="hi")


def test_more_than_100_recipients_in_one_request_is_refused() -> None:
    message = sms([f"+48500{i:06d}" for i in range(101)])
    with pytest.raises(ValidationError, match="at most 100 recipients per request"):
        provider().build_request(message, idempotency_key="k")


def test_longest_allowed_texts_pass() -> None:
    provider().build_request(sms(text="a" * (153 * 35)), idempotency_key="k")
    provider().build_request(sms(channel="whatsapp", text="x" * 4096), idempotency_key="k")


# -- parse_response ----------------------------------------------------------------------------


def test_parse_success() -> None:
    body = fixture("send_202.json")
    result = provider().parse_response(httpx.Response(202, json=body), message=sms(), idempotency_key="order-123")
    assert (result.message_id, result.status, result.raw) == ("77fb29998253415fa5d66971d519d362", "queued", body)
    assert result.failed == () and result.recipients[0].to == TO


def test_parse_partial_207_matches_recipients_by_number() -> None:
    body = fixture("send_207.json")
    message = sms([TO, "+48500100201"])
    result = provider().parse_response(httpx.Response(207, json=body), message=message, idempotency_key="order-123")
    assert [r.to for r in result.recipients] == [TO, "+48500100201"]
    assert result.message_id == "0a2cbd52d9fd4c3f96e426e8583670a4"
    (failed,) = result.failed
    assert failed.to == "+48500100201" and failed.status is DeliveryStatus.REJECTED
    assert isinstance(failed.error, InvalidRecipient) and failed.error.code == 26 and failed.error.http_status == 207
    with pytest.raises(PartialFailure, match="1 of 2 recipients rejected") as info:
        result.raise_for_failures()
    assert info.value.failed == [failed]


def test_parse_per_message_error_in_a_202_is_still_a_failure() -> None:
    item = {"apiMessageId": None, "accepted": False, "to": "48500100201", "error": {"code": 27, "description": "x"}}
    body = {"messages": [fixture("send_202.json")["messages"][0], item], "error": None}
    result = provider().parse_response(httpx.Response(202, json=body), message=sms([TO, "+48500100201"]))
    assert [type(r.error) for r in result.recipients] == [type(None), InvalidRecipient]


def test_parse_all_rejected_raises_the_first_recipients_error() -> None:
    message = sms([TO, "+48500100201"])
    with pytest.raises(InvalidRecipient, match="Invalid recipient address") as info:
        provider().parse_response(httpx.Response(207, json=fixture("send_207_all_rejected.json")), message=message)
    assert info.value.code == 25 and info.value.accepted is False


def test_parse_single_message_400() -> None:
    with pytest.raises(ValidationError, match="Invalid or missing parameter: to") as info:
        provider().parse_response(httpx.Response(400, json=fixture("send_400_message_error.json")), message=sms())
    assert info.value.code == 23 and info.value.http_status == 400


def test_parse_global_auth_error() -> None:
    with pytest.raises(AuthError, match="Invalid or missing integration API Key") as info:
        provider().parse_response(httpx.Response(401, json=fixture("error_401.json")), message=sms())
    assert info.value.code == 1 and info.value.http_status == 401


@pytest.mark.parametrize(
    ("body", "exc", "code"),
    [
        ({"errorCode": 43, "error": "Rate limit", "errorDescription": "Too many"}, RateLimited, 43),
        ({"error": "20"}, InsufficientBalance, "20"),
        ({"error": 19}, ServiceUnavailable, 19),
    ],
)
def test_parse_other_error_shapes(body: dict[str, Any], exc: type[ProviderError], code: int | str) -> None:
    with pytest.raises(exc) as info:
        provider().parse_response(httpx.Response(400, json=body), message=sms())
    assert info.value.code == code


def test_parse_plain_string_error_falls_back_to_the_http_status() -> None:
    with pytest.raises(AuthError, match="bad key") as info:
        provider().parse_response(httpx.Response(401, json={"error": "bad key"}), message=sms())
    assert info.value.code is None


@pytest.mark.parametrize(
    ("response", "exc", "accepted"),
    [
        (httpx.Response(503, text="<html>down</html>"), ServiceUnavailable, False),
        (httpx.Response(500, text="<html>oops</html>"), ServiceUnavailable, None),
        (httpx.Response(429, headers={"Retry-After": "3"}), RateLimited, False),
        (httpx.Response(202, text='{"messages": [{"apiMess'), TransportError, None),
        (httpx.Response(202, json={"messages": [], "error": None}), TransportError, None),
        (httpx.Response(202, json=["not", "an", "object"]), TransportError, None),
    ],
)
def test_parse_unusable_answers(response: httpx.Response, exc: type[OmnisendError], accepted: bool | None) -> None:
    with pytest.raises(exc) as info:
        provider().parse_response(response, message=sms())
    assert info.value.accepted is accepted
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after == 3.0


def test_parse_recipient_missing_from_the_answer_is_unknown() -> None:
    body = fixture("send_202.json")
    result = provider().parse_response(httpx.Response(202, json=body), message=sms([TO, "+48500100201"]))
    missing = result.recipients[1]
    assert missing.status is DeliveryStatus.UNKNOWN and isinstance(missing.error, DeliveryUnknown)


# -- the client against the emulator: retries and the no-double-send rule -----------------------

KEYED = "order-77"
FAULTS = [
    # fault, expected outcome (None = success), requests made, messages the emulator holds
    (Fault.refuse(), None, 2, 1),
    (Fault.vendor_error(43), None, 2, 1),
    (Fault.vendor_error(19), None, 2, 1),
    (Fault.http_error(503), None, 2, 1),
    (Fault.wrong_content_type(), None, 1, 1),
    (Fault.vendor_error(18), DeliveryUnknown, 1, 0),
    (Fault.http_error(500, accept=True), DeliveryUnknown, 1, 1),
    (Fault.http_error(500), DeliveryUnknown, 1, 0),
    (Fault.drop_after_accept(), DeliveryUnknown, 1, 1),
    (Fault.reset(), DeliveryUnknown, 1, 0),
    (Fault.slow(0.5), DeliveryUnknown, 1, 1),
    (Fault.truncated(), DeliveryUnknown, 1, 1),
    (Fault.huge_body(64 * 1024), DeliveryUnknown, 1, 0),
    (Fault.vendor_error(1), AuthError, 1, 0),
    (Fault.vendor_error(20), InsufficientBalance, 1, 0),
]


@pytest.mark.parametrize(
    ("fault", "outcome", "requests", "held"), FAULTS, ids=[f"{f.kind}-{f.code or f.status}" for f, *_ in FAULTS]
)
def test_fault_is_retried_only_when_nothing_can_be_sent_twice(
    fault: Fault, outcome: type[OmnisendError] | None, requests: int, held: int, policy: RetryPolicy
) -> None:
    emulator = ClickatellEmulator()
    emulator.script(fault)
    with inprocess_client(emulator, policy) as client:
        if outcome is None:
            result = client.send(sms(idempotency_key=KEYED), timeout=httpx.Timeout(10, read=0.05))
            assert result.attempts == requests and result.idempotency_key == KEYED
        else:
            with pytest.raises(outcome) as info:
                client.send(sms(idempotency_key=KEYED), timeout=httpx.Timeout(10, read=0.05))
            assert info.value.idempotency_key == KEYED and info.value.retryable is False
            if outcome is DeliveryUnknown:
                assert info.value.accepted is None and "cannot de-duplicate" in str(info.value)
    assert len(emulator.requests) == requests and emulator.accepted_count == held
    assert {json.loads(r.body)["messages"][0]["clientMessageId"] for r in emulator.requests} == {KEYED}
    assert emulator.duplicates() == 0


def test_rate_limit_retried_with_backoff_and_the_same_client_message_id(
    policy: RetryPolicy, sleeps: list[float]
) -> None:
    emulator = ClickatellEmulator()
    emulator.script(Fault.vendor_error(43), Fault.vendor_error(43))
    with inprocess_client(emulator, policy) as client:
        result = client.send(sms())
    assert result.attempts == 3 and len(sleeps) == 2 and all(s > 0 for s in sleeps)
    bodies = [r.body for r in emulator.requests]
    assert bodies[0] == bodies[1] == bodies[2]
    assert json.loads(bodies[0])["messages"][0]["clientMessageId"] == result.idempotency_key
    assert emulator.accepted_count == 1


def test_rate_limit_gives_up_after_max_attempts(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    emulator.script(*[Fault.vendor_error(43)] * 3)
    with inprocess_client(emulator, policy) as client, pytest.raises(RateLimited, match="Rate limit") as info:
        client.send(sms())
    assert info.value.attempts == 3 and info.value.http_status == 400 and emulator.accepted_count == 0


def test_emulator_rate_limit_per_number() -> None:
    emulator = ClickatellEmulator(rate_limit=(1, 60.0))
    with inprocess_client(emulator, RetryPolicy(max_attempts=1)) as client:
        client.send(sms())
        with pytest.raises(RateLimited, match="Rate limit") as info:
            client.send(sms())
    assert info.value.code == 43 and emulator.accepted_count == 1


def test_emulator_answers_207_for_a_partly_rejected_batch(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator(opted_out=("+48500100201",))
    with inprocess_client(emulator, policy) as client:
        result = client.send(sms([TO, "+48500100201", emulator.invalid_number]))
    assert [type(r.error).__name__ for r in result.recipients] == ["NoneType", "InvalidRecipient", "InvalidRecipient"]
    assert [(r.error.code, r.error.http_status) for r in result.failed if r.error] == [(26, 207), (25, 207)]
    with pytest.raises(PartialFailure, match="2 of 3"):
        result.raise_for_failures()


def test_emulator_whatsapp_template_sender_and_channel_rules(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator(whatsapp_users=(TO,), senders=("+12027530410",))
    template = Template(name="welcome", params=["John"])
    with inprocess_client(emulator, policy) as client:
        result = client.send(Message(to=TO, channel="whatsapp", template=template, sender="+12027530410"))
        with pytest.raises(InvalidRecipient, match="not available on channel"):
            client.send(Message(to="+48500100299", channel="whatsapp", template=template))
        with pytest.raises(PermissionDenied, match="FROM number is not related"):
            client.send(sms(sender="+15550001111"))
    record = emulator.messages[str(result.message_id)]
    assert record.extra["hsm"] == {"template": "welcome", "parameters": {"1": "John"}}
    assert record.sender == "12027530410"


def test_emulator_refuses_raw_requests_like_the_vendor() -> None:
    emulator = ClickatellEmulator()
    with httpx.Client(transport=emulator.transport(), base_url="http://emu.test") as http:
        bearer = http.post("/v1/message", headers={"Authorization": "Bearer test-api-key"}, json={"messages": []})
        malformed = http.post("/v1/message", headers={"Authorization": "test-api-key"}, content=b"{")
        too_many = http.post(
            "/v1/message",
            headers={"Authorization": "test-api-key"},
            json={"messages": [{"to": f"4850010{i:04d}", "content": "x"} for i in range(201)]},
        )
    assert (bearer.status_code, bearer.json()["error"]["code"]) == (401, 1)
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, 21)
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (400, 22)


@pytest.mark.anyio
async def test_async_client_retries_and_raises_delivery_unknown(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    emulator.script(Fault.vendor_error(43))
    async with inprocess_async_client(emulator, policy) as client:
        result = await client.send(sms())
        emulator.script(Fault.drop_after_accept())
        with pytest.raises(DeliveryUnknown, match="may have reached") as info:
            await client.send(sms(idempotency_key="async-1"))
    assert result.attempts == 2 and info.value.idempotency_key == "async-1"
    assert emulator.accepted_count == 2 and emulator.duplicates() == 0


# -- split sends -----------------------------------------------------------------------------------

MANY = [f"+48600{i:06d}" for i in range(250)]


def test_send_above_100_recipients_is_split_and_merged(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    with inprocess_client(emulator, policy) as client:
        result = client.send(sms(MANY, idempotency_key="bulk-1"))
    assert [len(json.loads(r.body)["messages"]) for r in emulator.requests] == [100, 100, 50]
    assert [r.to for r in result.recipients] == MANY and result.failed == ()
    assert (
        len({r.message_id for r in result.recipients}) == 250 and result.message_id == result.recipients[0].message_id
    )
    assert isinstance(result.raw, list) and len(result.raw) == 3 and result.attempts == 3
    assert emulator.accepted_count == 250 and emulator.duplicates() == 0


def test_a_later_chunk_rejected_becomes_per_recipient_errors(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator(balance=100 * 0.1)
    with inprocess_client(emulator, policy) as client:
        result = client.send(sms(MANY))
    assert len(result.succeeded) == 100 and len(result.failed) == 150
    assert {type(r.error) for r in result.failed} == {InsufficientBalance}
    assert {r.status for r in result.failed} == {DeliveryStatus.REJECTED}
    with pytest.raises(PartialFailure, match="150 of 250 recipients rejected"):
        result.raise_for_failures()


def test_the_first_chunks_failure_propagates(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    emulator.script(Fault.vendor_error(1))
    with inprocess_client(emulator, policy) as client, pytest.raises(AuthError, match="API key"):
        client.send(sms(MANY))
    assert len(emulator.requests) == 1 and emulator.accepted_count == 0


def test_a_later_chunk_timeout_is_unknown_per_recipient_and_not_retried(policy: RetryPolicy) -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        return accept_all(request)

    with respx.mock(base_url=BASE) as router:
        router.post("/v1/message").mock(side_effect=answer)
        with Client(provider(), retry=policy) as client:
            result = client.send(sms(MANY, idempotency_key="bulk-2"))
    assert len(calls) == 3
    unknown = result.recipients[100:200]
    assert {r.status for r in unknown} == {DeliveryStatus.UNKNOWN}
    assert {type(r.error) for r in unknown} == {DeliveryUnknown}
    assert unknown[0].error is not None and unknown[0].error.idempotency_key == "bulk-2"
    assert len(result.succeeded) == 150


def test_a_later_chunks_rate_limit_is_retried_within_its_step(policy: RetryPolicy) -> None:
    limited = httpx.Response(400, json={"messages": [], "error": {"code": 43, "description": "Rate limit"}})
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return limited if len(calls) == 2 else accept_all(request)

    with respx.mock(base_url=BASE) as router:
        router.post("/v1/message").mock(side_effect=answer)
        with Client(provider(), retry=policy) as client:
            result = client.send(sms(MANY))
    assert len(calls) == 4 and calls[1].content == calls[2].content and result.failed == ()


def test_split_flow_sans_io() -> None:
    flow = provider().send_flow(sms(MANY), idempotency_key="k")
    first = next(flow)
    second = flow.send(first.parse(accept_all(first.request)))
    third = flow.throw(RateLimited("Rate limit", provider="clickatell", code=43))
    assert [len(sent(s.request)) for s in (first, second, third)] == [100, 100, 50]
    assert first.repeat is Repeat.ONCE
    with pytest.raises(StopIteration) as stop:
        flow.send(third.parse(accept_all(third.request)))
    result = stop.value.value
    assert [type(r.error) for r in result.failed] == [RateLimited] * 100
    assert [r.to for r in result.failed] == MANY[100:200]


# -- status lookups ------------------------------------------------------------------------------


def test_get_status_follows_the_message(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    with inprocess_client(emulator, policy) as client:
        result = client.send(sms())
        message_id = str(result.message_id)
        queued = client.get_status(message_id)
        emulator.deliver(message_id)
        delivered = client.get_status(message_id)
        emulator.set_status("INSUFFICIENT_ACCOUNT_BALANCE", message_id=message_id)
        broke = client.get_status(message_id)
        with pytest.raises(NotFound, match="does not know this message id"):
            client.get_status("nope")
        with pytest.raises(ValidationError, match="message_id is empty"):
            client.get_status(" ")
    assert (queued.status, queued.vendor_status, queued.message_id) == (DeliveryStatus.QUEUED, "QUEUED", message_id)
    assert delivered.status is DeliveryStatus.DELIVERED and delivered.timestamp is not None
    assert broke.status is DeliveryStatus.REJECTED and broke.error is not None
    assert (broke.error.error_class, broke.error.code) == ("InsufficientBalance", 25)


def test_get_status_reads_the_channel_entry() -> None:
    with respx.mock(base_url=BASE) as router:
        router.get("/v1/message/abc").respond(200, json=fixture("status_whatsapp.json"))
        report = Client(provider()).get_status("abc")
    assert (report.status, report.vendor_status) == (DeliveryStatus.READ, "READ")
    assert report.timestamp == datetime(2017, 9, 28, 14, 8, 18, tzinfo=timezone.utc)


def test_get_status_takes_the_latest_channel() -> None:
    body = {"whatsapp": {"status": "EXPIRED", "timestamp": 1000}, "sms": {"status": "DEVICE_ACK", "timestamp": 2000}}
    report = provider().parse_status(httpx.Response(200, json=body), message_id="m")
    assert report.status is DeliveryStatus.DELIVERED


def test_get_status_errors_are_typed(policy: RetryPolicy) -> None:
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v1/message/abc")
        route.side_effect = [httpx.Response(401, json=fixture("error_401.json"))]
        with Client(provider(), retry=policy) as client, pytest.raises(AuthError, match="API Key"):
            client.get_status("abc")
        route.side_effect = [
            httpx.Response(500, text="<html>"),
            httpx.Response(200, json=fixture("status_whatsapp.json")),
        ]
        with Client(provider(), retry=policy) as client:
            assert client.get_status("abc").status is DeliveryStatus.READ


# -- status callbacks ------------------------------------------------------------------------------


def test_webhook_from_the_docs_example() -> None:
    (report,) = provider().parse_webhook(body=json.dumps(fixture("callback.json")))
    assert (report.message_id, report.status, report.vendor_status) == (
        "77fb29998253415fa5d66971d519d362",
        DeliveryStatus.DELIVERED,
        "DEVICE_ACK",
    )
    assert report.idempotency_key == "order-123" and report.provider == "clickatell"
    assert report.timestamp == datetime(2017, 9, 28, 14, 8, 18, 860000, tzinfo=timezone.utc)


def test_webhook_from_the_emulator(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    with inprocess_client(emulator, policy) as client:
        result = client.send(sms(idempotency_key="cb-1"))
    (report,) = provider().parse_webhook(**emulator.deliver(str(result.message_id), delivered=False))
    assert report.status is DeliveryStatus.UNDELIVERED and report.idempotency_key == "cb-1"
    assert report.error == ReportError("DeliveryFailed", 23, STATUSES["DELIVERY_FAILURE"].meaning)


def test_webhook_keeps_duplicates_out_of_order_with_their_timestamps() -> None:
    late = {"messageId": "m1", "statusCode": 5, "status": "DEVICE_ACK", "timestamp": 2000}
    early = {"messageId": "m1", "statusCode": 4, "status": "SENT_TO_SUPPLIER", "timestamp": 1000}
    reports = provider().parse_webhook(body=callback(late, early, late))
    assert [r.status for r in reports] == [DeliveryStatus.DELIVERED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED]
    assert reports[0].event_id == reports[2].event_id != reports[1].event_id
    newest = max(reports, key=lambda r: r.timestamp or datetime.min.replace(tzinfo=timezone.utc))
    assert newest.status is DeliveryStatus.DELIVERED and newest.timestamp is not None
    assert newest.timestamp.timestamp() == 2.0


def test_webhook_trusts_the_status_name_over_a_mismatched_number() -> None:
    (report,) = provider().parse_webhook(body=callback({"messageId": "m", "statusCode": 4, "status": "DEVICE_ACK"}))
    assert report.status is DeliveryStatus.DELIVERED and report.vendor_status == "DEVICE_ACK"


def test_webhook_reads_a_single_update_object() -> None:
    body = {"event": {"messageStatusUpdate": {"messageId": "m", "statusCode": 2, "status": "QUEUED"}}}
    (report,) = provider().parse_webhook(body=json.dumps(body))
    assert report.status is DeliveryStatus.QUEUED and report.error is None


def test_webhook_ignores_other_event_types() -> None:
    body = {"event": {"moText": [{"messageId": "x", "content": "hi"}], "messageFallback": [{"messageId": "y"}]}}
    assert provider().parse_webhook(body=json.dumps(body)) == []


@pytest.mark.parametrize(
    ("body", "match"),
    [(b"<html>", "not JSON"), (b"[]", "no 'event' object"), (b'{"messageId": "m", "status": "QUEUED"}', "no 'event'")],
)
def test_webhook_refuses_other_payloads(body: bytes, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        provider().parse_webhook(body=body)


def test_webhook_from_another_integration_is_refused() -> None:
    body = json.dumps(fixture("callback.json"))
    assert provider(integration_id="fa8090815f05d5ed015f0b5b56080cd2").parse_webhook(body=body)
    with pytest.raises(ValidationError, match="another integration"):
        provider(integration_id="mine").parse_webhook(body=body)


# -- over real TCP ---------------------------------------------------------------------------------


@pytest.mark.tcp
def test_tcp_send_webhook_and_status(serve: Any, policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    server = serve(emulator)
    prov = emulator.make_provider(server.base_url)
    with Client(prov, retry=policy) as client:
        result = client.send(sms([TO, "+48500100201"], idempotency_key="tcp-1"))
        (report,) = prov.parse_webhook(**emulator.deliver(str(result.message_id)))
        status = client.get_status(str(result.message_id))
    assert len(result.succeeded) == 2 and report.status is status.status is DeliveryStatus.DELIVERED
    assert emulator.requests[0].header("authorization") == "test-api-key"


@pytest.mark.tcp
def test_tcp_typed_error(serve: Any, policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    server = serve(emulator)
    with Client(emulator.make_provider(server.base_url), retry=policy) as client:
        with pytest.raises(InvalidRecipient, match=r"Invalid recipient address \(code 25, HTTP 400\)"):
            client.send(sms(emulator.invalid_number))
        emulator.balance = 0
        with pytest.raises(InsufficientBalance, match=r"code 20, HTTP 402"):
            client.send(sms())
    assert len(emulator.requests) == 2


@pytest.mark.tcp
def test_tcp_retry(serve: Any, policy: RetryPolicy, sleeps: list[float]) -> None:
    emulator = ClickatellEmulator()
    server = serve(emulator)
    emulator.script(Fault.vendor_error(19))
    with Client(emulator.make_provider(server.base_url), retry=policy) as client:
        result = client.send(sms())
        emulator.script(Fault.reset())
        with pytest.raises(DeliveryUnknown, match="may have reached"):
            client.send(sms())
    assert result.attempts == 2 and len(sleeps) == 1 and emulator.accepted_count == 1


@pytest.mark.tcp
def test_tcp_timeout_is_delivery_unknown_and_sent_once(serve: Any, policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    server = serve(emulator)
    emulator.script(Fault.slow(1.0))
    with Client(emulator.make_provider(server.base_url), retry=policy, timeout=0.2) as client:
        with pytest.raises(DeliveryUnknown, match="ReadTimeout") as info:
            client.send(sms(idempotency_key="tcp-slow"))
    assert info.value.idempotency_key == "tcp-slow" and info.value.attempts == 1
    assert emulator.accepted_count == 1 and len(emulator.requests) == 1 and emulator.duplicates() == 0


@pytest.mark.parametrize("updates", [True, 7, "delivered"])
def test_a_callback_whose_status_updates_are_not_a_list_is_a_validation_error(updates: object) -> None:
    body = json.dumps({"integrationId": "i", "event": {"messageStatusUpdate": updates}})
    with strict_adapters(), pytest.raises(ValidationError, match="neither an object nor a list"):
        provider().parse_webhook(body=body, headers={"content-type": "application/json"})
