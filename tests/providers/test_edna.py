"""edna: both code tables row by row, Pulse and IM requests, answers, retries, status, webhooks, the emulator."""

from __future__ import annotations

import hmac
import json
import pickle
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

from omnisend import (
    AsyncClient,
    AuthError,
    Client,
    ConfigurationError,
    DeliveryStatus,
    DeliveryUnknown,
    DuplicateMessage,
    InsufficientBalance,
    InvalidRecipient,
    Message,
    NotFound,
    OmnisendError,
    PartialFailure,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    Template,
    TemplateError,
    TransportError,
    ValidationError,
    WebhookAuthError,
)
from omnisend.providers import Edna
from omnisend.providers.edna import ERRORS, PULSE_ERRORS
from omnisend.testing import EdnaEmulator, Fault
from tests.conftest import inprocess_async_client, inprocess_client, load_codes

KEY = "edna-KEY-0123456789abcdef"
HOOK_KEY = "hook-KEY-fedcba9876543210"
BASE = "https://app.edna.test"
IM_BASE = "https://im.edna.test"
TEMPLATE = "Order {{1}} is ready at {{2}}."
CASCADES = {"sms": 11, "whatsapp": 12, "viber": 13}
ALL_ROWS = [*ERRORS.items(), *PULSE_ERRORS.items()]
TO = "+48500100200"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One httpx client for the whole module (building one loads the CA bundle: slow); respx mocks it."""
    with httpx.Client() as client:
        yield client


@pytest.fixture
def pulse() -> Edna:
    return Edna(api_key=KEY, base_url=BASE, cascade_id=CASCADES, templates={"order_ready": TEMPLATE})


@pytest.fixture
def im() -> Edna:
    return Edna(api_key=KEY, api="im", base_url=IM_BASE, subject="Shop", templates={"order_ready": TEMPLATE})


def problem(code: str, status: int = 400, detail: str | None = None) -> httpx.Response:
    return httpx.Response(status, json={"title": code, "status": status, "detail": detail or f"vendor text {code}"})


def im_answer(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def body_of(request: httpx.Request) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request.content)
    return data


# -- the tables --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "row"), ALL_ROWS, ids=[str(c) for c, _ in ALL_ROWS])
def test_every_code_in_an_im_answer_raises_its_class(im: Edna, code: str, row) -> None:
    body = {"id": "k1", "code": code}
    with pytest.raises(row.exc, match=rf"^edna: .+\(code {code}, HTTP 200\)$") as info:
        im.parse_response(im_answer(body), idempotency_key="k1")
    err = info.value
    assert type(err) is row.exc and err.code == code and err.provider == "edna"
    assert err.vendor_message == row.meaning and err.http_status == 200 and err.raw == body
    assert err.retryable is row.is_retryable
    assert err.accepted is (None if row.ambiguous else False)


@pytest.mark.parametrize(("code", "row"), ALL_ROWS, ids=[str(c) for c, _ in ALL_ROWS])
def test_every_code_in_a_pulse_problem_raises_its_class(pulse: Edna, code: str, row) -> None:
    with pytest.raises(row.exc, match=rf"^edna: vendor text {code} \(code {code}, HTTP 400\)$") as info:
        pulse.parse_response(problem(code), idempotency_key="k1")
    err = info.value
    assert type(err) is row.exc and err.code == code and err.vendor_message == f"vendor text {code}"
    assert err.retryable is row.is_retryable and err.raw["title"] == code


@pytest.mark.parametrize("code", ["ERROR-SYSTEM", "Not-WhatsApp-User", "ERROR-LONGTITUDE-NOT-SPECIFIED"])
def test_codes_match_case_insensitively_and_keep_their_spelling(im: Edna, code: str) -> None:
    with pytest.raises(ProviderError, match=code) as info:
        im.parse_response(im_answer({"code": code}))
    assert type(info.value) is Edna.errors[code.lower()].exc and info.value.code == code


def test_error_table_covers_every_seed_code() -> None:
    codes = load_codes("edna")
    seed = {e["code"] for e in codes["errors"]}
    aliases = {e["code"] for e in codes["error_aliases"]}
    assert seed | aliases == set(ERRORS)
    assert len(seed) == 28 and len(ERRORS) == 29
    assert {e["code"] for e in codes["pulse_errors"]} == set(PULSE_ERRORS)
    # One table reads both APIs' codes: the seed's and Pulse's problem titles.
    assert set(Edna.errors) == set(ERRORS) | set(PULSE_ERRORS) and len(Edna.errors) == 30
    assert {"error-longtitude-not-specified", "not-template-match", "error-not-template-match"} <= set(Edna.errors)
    assert [e["code"] for e in codes["success"]] == ["ok"]


def test_no_seed_code_falls_to_the_generic_class() -> None:
    assert all(row.exc is not ProviderError for _, row in ALL_ROWS)


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        ("error-unauthorized", AuthError, False),
        ("error-insufficient-balance", InsufficientBalance, False),
        ("error-system", ServiceUnavailable, True),
        ("not-whatsapp-user", InvalidRecipient, False),
        ("not-viber-user", InvalidRecipient, False),
        ("user-blocked", InvalidRecipient, False),
        ("error-address-format", InvalidRecipient, False),
        ("error-content-do-not-match-hsm-template", TemplateError, False),
        ("not-template-match", TemplateError, False),
        ("error-not-template-match", TemplateError, False),
        ("error-id-not-unique", DuplicateMessage, False),
        ("error-subject-unknown", PermissionDenied, False),
        ("error-system-blocked", PermissionDenied, False),
        ("error-not-found", NotFound, False),
        ("error-syntax", ValidationError, False),
        ("error-start-time-format", ValidationError, False),
        ("error-longtitude-not-specified", ValidationError, False),
    ],
)
def test_issue_named_codes(code: str, cls: type[OmnisendError], retryable: bool) -> None:
    row = Edna.errors[code]
    assert issubclass(row.exc, cls) and row.is_retryable is retryable


def test_ok_is_success_not_an_error(im: Edna) -> None:
    result = im.parse_response(im_answer({"id": "k1", "code": "ok"}), message=Message(to=TO, text="hi", channel="whatsapp"), idempotency_key="k1")
    assert (result.message_id, result.status, result.recipients[0].to) == ("k1", DeliveryStatus.QUEUED, TO)
    assert "ok" not in Edna.errors


@pytest.mark.parametrize(
    ("response", "cls", "code", "accepted"),
    [
        (im_answer({"code": "error-brand-new"}), ProviderError, "error-brand-new", False),
        (problem("forbidden-by-policy", 403), PermissionDenied, "forbidden-by-policy", False),
        (problem("internal-failure", 500), ServiceUnavailable, "internal-failure", None),
        (problem("insufficient-storage", 507), ServiceUnavailable, "insufficient-storage", None),
        (problem("Bad Request", 400), ValidationError, "Bad Request", False),
    ],
)
def test_unknown_code_keeps_the_code_and_takes_its_class_from_http(pulse: Edna, response, cls, code, accepted) -> None:
    with pytest.raises(cls, match=f"code {code}") as info:
        pulse.parse_response(response)
    assert type(info.value) is cls and info.value.code == code and info.value.accepted is accepted


SEED_STATUSES = {
    "enqueued": DeliveryStatus.QUEUED,
    "delayed": DeliveryStatus.SCHEDULED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "expired": DeliveryStatus.EXPIRED,
    "cancelled": DeliveryStatus.CANCELLED,
    "no-match-template": DeliveryStatus.REJECTED,
}


def test_status_table_covers_every_seed_status() -> None:
    codes = load_codes("edna")
    assert {s["code"] for s in codes["statuses"]} == set(SEED_STATUSES)
    assert set(SEED_STATUSES) | {s["code"] for s in codes["status_aliases"]} == set(Edna.statuses)


@pytest.mark.parametrize(("value", "expected"), list(SEED_STATUSES.items()))
def test_every_seed_status_maps_in_any_case(value: str, expected: DeliveryStatus) -> None:
    for spelling in (value, value.upper(), value.upper().replace("-", "_"), value.title()):
        assert Edna.statuses.normalize(spelling) is expected, spelling


@pytest.mark.parametrize(("value", "entry"), list(Edna.statuses.items()))
def test_every_status_row_normalizes(value: str, entry) -> None:
    assert Edna.statuses.normalize(value) is entry.status
    assert Edna.statuses.normalize(value.upper()) is entry.status


def test_unknown_status_is_unknown_and_kept(pulse: Edna) -> None:
    (report,) = pulse.parse_webhook(body=json.dumps({"requestId": "k1", "status": "PAUSED_BY_OPERATOR"}))
    assert report.status is DeliveryStatus.UNKNOWN and report.vendor_status == "PAUSED_BY_OPERATOR"
    assert Edna.statuses.normalize(None) is DeliveryStatus.UNKNOWN


# -- building requests: golden bodies ------------------------------------------------------------------

FUTURE = datetime(2031, 1, 21, 8, 0, 0, 250000, tzinfo=timezone.utc)
PULSE_GOLDEN = [
    (
        "sms",
        dict(text="Your code is 1234"),
        {"smsContent": {"contentType": "TEXT", "text": "Your code is 1234"}},
    ),
    (
        "whatsapp text",
        dict(channel="whatsapp", text="Hi Maria"),
        {"whatsappContent": {"contentType": "TEXT", "text": "Hi Maria"}},
    ),
    (
        "whatsapp image",
        dict(channel="whatsapp", text="Your receipt", media={"url": "https://cdn.example/r/receipt.png"}),
        {
            "whatsappContent": {
                "contentType": "IMAGE",
                "attachment": {"url": "https://cdn.example/r/receipt.png", "name": "receipt.png"},
                "caption": "Your receipt",
            }
        },
    ),
    (
        "whatsapp document",
        dict(channel="whatsapp", media={"url": "https://cdn.example/invoice.pdf", "type": "document", "caption": "Invoice"}),
        {
            "whatsappContent": {
                "contentType": "DOCUMENT",
                "attachment": {"url": "https://cdn.example/invoice.pdf", "name": "invoice.pdf"},
                "caption": "Invoice",
            }
        },
    ),
    (
        "whatsapp template",
        dict(
            channel="whatsapp",
            template=Template(name="order_ready", params=["42", "Main St"]),
            options={"keyboard": {"rows": [{"buttons": [{"text": "Track", "buttonType": "QUICK_REPLY", "payload": "t"}]}]}},
        ),
        {
            "whatsappContent": {
                "contentType": "TEXT",
                "text": "Order 42 is ready at Main St.",
                "keyboard": {"rows": [{"buttons": [{"text": "Track", "buttonType": "QUICK_REPLY", "payload": "t"}]}]},
            }
        },
    ),
    (
        "whatsapp location",
        dict(channel="whatsapp", text="Our shop", options={"location": {"latitude": 55.75, "longitude": "37.61"}}),
        {"whatsappContent": {"contentType": "LOCATION", "location": {"latitude": 55.75, "longitude": 37.61, "address": "Our shop"}}},
    ),
    (
        "viber text",
        dict(channel="viber", text="Hello from Viber"),
        {"viberContent": {"contentType": "TEXT", "text": "Hello from Viber"}},
    ),
    (
        "viber image",
        dict(channel="viber", media={"url": "https://cdn.example/p.jpg"}),
        {"viberContent": {"contentType": "IMAGE", "attachment": {"url": "https://cdn.example/p.jpg", "name": "p.jpg"}}},
    ),
]


@pytest.mark.parametrize(("fields", "content"), [g[1:] for g in PULSE_GOLDEN], ids=[g[0] for g in PULSE_GOLDEN])
def test_golden_pulse_requests(pulse: Edna, fields: dict, content: dict) -> None:
    message = Message(to="+48 500-100-200", **fields)
    request = pulse.build_request(message, idempotency_key="req-1")
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/api/cascade/schedule")
    assert request.headers["x-api-key"] == KEY and request.headers["content-type"] == "application/json"
    channel = message.channel
    assert body_of(request) == {
        "requestId": "req-1",
        "cascadeId": CASCADES[channel],
        "subscriberFilter": {"address": "48500100200", "type": "PHONE"},
        "content": content,
    }


def test_pulse_schedule_one_cascade_and_options_merged() -> None:
    provider = Edna(api_key=KEY, base_url=BASE, cascade_id=77)
    message = Message(
        to=TO,
        text="hi",
        scheduled_at=FUTURE,
        options={"comment": "order-17", "content": {"smsContent": {"validityPeriodSeconds": 60}, "pushContent": {"text": "hi"}}},
    )
    body = body_of(provider.build_request(message, idempotency_key="k"))
    assert body["cascadeId"] == 77 and body["startTime"] == "2031-01-21T08:00:00Z" and body["comment"] == "order-17"
    assert body["content"] == {
        "smsContent": {"contentType": "TEXT", "text": "hi", "validityPeriodSeconds": 60},
        "pushContent": {"text": "hi"},
    }
    assert body_of(provider.build_request(message.model_copy(update={"options": {"cascadeId": 5}}), idempotency_key="k"))["cascadeId"] == 5


IM_GOLDEN = [
    (
        "whatsapp text",
        dict(channel="whatsapp", text="Hi Maria"),
        "/api/imOutMessage",
        {"imType": "whatsapp", "contentType": "text", "text": "Hi Maria"},
    ),
    (
        "viber text with sender",
        dict(channel="viber", text="Hi", sender="ViberShop"),
        "/api/imOutMessage",
        {"imType": "viber", "contentType": "text", "text": "Hi", "subject": "ViberShop"},
    ),
    (
        "whatsapp video",
        dict(channel="whatsapp", text="Watch", media={"url": "https://cdn.example/v/clip.mp4", "type": "video"}),
        "/api/imOutMessage",
        {
            "imType": "whatsapp",
            "contentType": "video",
            "attachmentUrl": "https://cdn.example/v/clip.mp4",
            "attachmentName": "clip.mp4",
            "caption": "Watch",
        },
    ),
    (
        "whatsapp location",
        dict(channel="whatsapp", text="Shop", options={"location": {"latitude": -33.9, "longitude": 151.2, "address": "1 Main St"}}),
        "/api/imOutMessage",
        {"imType": "whatsapp", "contentType": "location", "latitude": -33.9, "longitude": 151.2, "locationAddress": "1 Main St"},
    ),
    (
        "whatsapp template (HSM)",
        dict(
            channel="whatsapp",
            template=Template(name="otp", params={"code": "1234"}),
            text="Your code is {{code}}",
            options={"header": {"text": "Shop"}, "footer": {"text": "Do not share"}},
        ),
        "/api/imOutHSM",
        {
            "imType": "whatsapp",
            "contentType": "text",
            "text": "Your code is 1234",
            "header": {"text": "Shop"},
            "footer": {"text": "Do not share"},
        },
    ),
]


@pytest.mark.parametrize(("fields", "path", "expected"), [g[1:] for g in IM_GOLDEN], ids=[g[0] for g in IM_GOLDEN])
def test_golden_im_requests(im: Edna, fields: dict, path: str, expected: dict) -> None:
    request = im.build_request(Message(to=TO, **fields), idempotency_key="msg-1")
    assert (request.method, str(request.url)) == ("POST", f"{IM_BASE}{path}")
    assert request.headers["x-api-key"] == KEY
    assert body_of(request) == {"id": "msg-1", "subject": "Shop", "address": "48500100200", **expected}


def test_im_priority_validity_start_time_and_options() -> None:
    provider = Edna(api_key=KEY, api="im", base_url=IM_BASE, subject="Shop", priority="high")
    message = Message(
        to=TO, channel="whatsapp", text="hi", scheduled_at=FUTURE, validity=timedelta(hours=2), options={"comment": "c-1"}
    )
    body = body_of(provider.build_request(message, idempotency_key="k"))
    assert body["priority"] == "high" and body["validityPeriodSeconds"] == 7200
    assert body["startTime"] == "2031-01-21T08:00:00.250Z" and body["comment"] == "c-1"


def test_hosts_by_api_and_region() -> None:
    assert Edna(api_key=KEY).base_url == "https://app.edna.io"
    assert Edna(api_key=KEY, region="ru").base_url == "https://app.edna.ru"
    assert Edna(api_key=KEY, api="im").base_url == "https://im.edna.io"
    assert Edna(api_key=KEY, api="im", region="ru").base_url == "https://im.edna.ru"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(api="rest"), r"api must be 'pulse' or 'im'"),
        (dict(region="de"), r"region 'io' or 'ru'"),
        (dict(priority="urgent"), r"priority must be one of realtime, high, normal, low"),
        (dict(cascade_id={"telegram": 1}), r"cascade_id must be a positive int"),
        (dict(cascade_id=0), r"cascade_id must be a positive int"),
        (dict(cascade_id={"sms": True}), r"cascade_id must be a positive int"),
        (dict(webhook_key="  "), r"webhook_key is empty"),
    ],
)
def test_bad_settings_are_configuration_errors(options: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Edna(api_key=KEY, **options)


@pytest.mark.parametrize("key", [None, "", "  "])
def test_missing_api_key(monkeypatch: pytest.MonkeyPatch, key: str | None) -> None:
    monkeypatch.delenv("OMNISEND_EDNA_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"edna: no api_key\. Pass Edna\(api_key=\.\.\.\) or set OMNISEND_EDNA_API_KEY"):
        Edna(api_key=key)


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_EDNA_API_KEY", "env-key-1234")
    request = Edna(cascade_id=1).build_request(Message(to=TO, text="hi"), idempotency_key="k")
    assert request.headers["x-api-key"] == "env-key-1234"


# -- bad input: refused before any request ---------------------------------------------------------------

NOW = datetime.now(timezone.utc)
PULSE_BAD = [
    (dict(channel="whatsapp", text="hi", options={"keyboard": {"rows": []}}), ValidationError, "template", r"keyboard need a WhatsApp template"),
    (dict(channel="whatsapp", template=Template(name="unknown_tpl")), TemplateError, "template", r"matches WhatsApp templates by their text"),
    (dict(channel="whatsapp", template=Template(name="order_ready", params=["42"])), TemplateError, "template.params", r"missing \['2'\]"),
    (dict(channel="whatsapp", template=Template(name="order_ready", params=["1", "2", "3"])), TemplateError, "template.params", r"unused \['3'\]"),
    (dict(channel="whatsapp", template=Template(name="order_ready", params=["1", "2"]), text="x"), ValidationError, "text", r"registered .* leave text out"),
    (dict(template=Template(name="order_ready", params=["1", "2"])), ValidationError, "template", r"does not support templates on sms"),
    (dict(channel="whatsapp", template=Template(name="order_ready", params=["1", "2"]), media={"url": "https://x.example/a.png"}), ValidationError, "media", r"options\['header'\]"),
    (dict(channel="whatsapp", media={"url": "http://cdn.example/a.png"}), ValidationError, "media.url", r"must be an https:// URL"),
    (dict(channel="viber", media={"url": "https://cdn.example/a.mp4", "type": "video"}), ValidationError, "media", r"video media on viber"),
    (dict(text="hi", media={"url": "https://cdn.example/a.png"}), ValidationError, "media", r"image media on sms"),
    (dict(channel="whatsapp", text="x", options={"location": {"longitude": 37.6}}), ValidationError, "options.location.latitude", r"needs a numeric latitude"),
    (dict(channel="whatsapp", text="x", options={"location": {"latitude": 55.7}}), ValidationError, "options.location.longitude", r"needs a numeric longitude"),
    (dict(channel="whatsapp", text="x", options={"location": {"latitude": "north", "longitude": 1}}), ValidationError, "options.location.latitude", r"numeric latitude"),
    (dict(channel="whatsapp", text="x", options={"location": {"latitude": 91, "longitude": 1}}), ValidationError, "options.location.latitude", r"numeric latitude between -90 and 90"),
    (dict(channel="whatsapp", text="x", options={"location": {"latitude": 1, "longitude": -181}}), ValidationError, "options.location.longitude", r"numeric longitude between -180 and 180"),
    (dict(channel="whatsapp", text="x", options={"location": [55.7, 37.6]}), ValidationError, "options.location", r"must be a mapping"),
    (dict(text="x", options={"location": {"latitude": 1, "longitude": 1}}), ValidationError, None, r"location outside a plain WhatsApp"),
    (dict(text="hi", sender="Shop"), ValidationError, "sender", r"sends from the cascade's channel"),
    (dict(text="hi", validity=timedelta(hours=1)), ValidationError, "validity", r"per-message validity on Pulse"),
    (dict(text="hi", scheduled_at=NOW - timedelta(hours=1)), ValidationError, "scheduled_at", r"in the past"),
]


@pytest.mark.parametrize(("fields", "cls", "field", "match"), PULSE_BAD)
def test_bad_pulse_input_is_refused_before_any_request(http: httpx.Client, pulse: Edna, fields: dict, cls, field, match: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.post(f"{BASE}/api/cascade/schedule")
        with Client(pulse, http_client=http) as client, pytest.raises(cls, match=match) as info:
            client.send(Message(to=TO, **fields))
        assert route.call_count == 0
    err = info.value
    assert err.code is None and err.accepted is False and err.provider == "edna" and err.field == field


IM_BAD = [
    (dict(text="hi"), r"does not support the 'sms' channel on the im API", None),
    (dict(channel="whatsapp", text="hi", idempotency_key="k" * 37), r"IM id allows 36 characters: shorten idempotency_key", "idempotency_key"),
    (dict(channel="whatsapp", to=[TO, "+48500100201"], text="hi", idempotency_key="k" * 35), r"IM id allows 36", "idempotency_key"),
    (dict(channel="whatsapp", template=Template(name="order_ready", params=["1"])), r"missing \['2'\]", "template.params"),
    (dict(channel="whatsapp", media={"url": "http://cdn.example/a.png"}), r"https://", "media.url"),
    (dict(channel="whatsapp", text="hi", validity=timedelta(milliseconds=10)), r"at least 1 second", "validity"),
]


@pytest.mark.parametrize(("fields", "match", "field"), IM_BAD)
def test_bad_im_input_is_refused_before_any_request(im: Edna, fields: dict, match: str, field) -> None:
    emu = EdnaEmulator()
    provider = Edna(api_key=emu.credentials[0], api="im", base_url=IM_BASE, subject="omnisend", templates=im.templates)
    with Client(provider, http_client=httpx.Client(transport=emu.transport())) as client, pytest.raises(ValidationError, match=match) as info:
        client.send(Message(**{"to": TO, **fields}))
    assert emu.requests == [] and info.value.field == field and info.value.idempotency_key


def test_im_without_a_subject_is_refused() -> None:
    provider = Edna(api_key=KEY, api="im", base_url=IM_BASE)
    with pytest.raises(ValidationError, match=r"needs a subject: pass Message\(sender=\.\.\.\) or Edna\(subject=\.\.\.\)") as info:
        provider.build_request(Message(to=TO, channel="whatsapp", text="hi"), idempotency_key="k")
    assert info.value.field == "sender"


def test_pulse_without_a_cascade_is_a_configuration_error() -> None:
    provider = Edna(api_key=KEY, base_url=BASE, cascade_id={"whatsapp": 2})
    with pytest.raises(ConfigurationError, match=r"no Pulse cascade for sms: pass Edna\(cascade_id=\.\.\.\)"):
        provider.build_request(Message(to=TO, text="hi"), idempotency_key="k")


@pytest.mark.parametrize("number", ["89001234567", "+0 900 123", "+48 abc", "12"])
def test_numbers_that_are_not_e164_never_reach_a_request(number: str) -> None:
    with pytest.raises(ValidationError, match="not an E.164 number") as info:
        Message(to=number, text="hi")
    assert info.value.field == "to" and info.value.code is None


def test_sms_over_ten_parts_is_refused_before_any_request(pulse: Edna) -> None:
    assert body_of(pulse.build_request(Message(to=TO, text="x" * 1530), idempotency_key="k"))["content"]
    with pytest.raises(ValidationError, match=r"needs 11 SMS parts .* edna allows at most 10") as info:
        pulse.build_request(Message(to=TO, text="x" * 1531), idempotency_key="k")
    assert info.value.field == "text"
    long_whatsapp = Message(to=TO, channel="whatsapp", text="x" * 1531)  # the SMS limit is for SMS only
    assert body_of(pulse.build_request(long_whatsapp, idempotency_key="k"))["content"]["whatsappContent"]["text"]


def test_build_request_takes_one_recipient(pulse: Edna) -> None:
    with pytest.raises(ValidationError, match="one recipient per request"):
        pulse.build_request(Message(to=[TO, "+48500100201"], text="hi"), idempotency_key="k")


# -- reading answers ---------------------------------------------------------------------------------------


def test_pulse_success(pulse: Edna) -> None:
    message = Message(to=TO, text="hi")
    result = pulse.parse_response(httpx.Response(200, json={"requestId": "k1"}), message=message, idempotency_key="k1")
    assert (result.provider, result.message_id, result.status, result.raw) == ("edna", "k1", DeliveryStatus.QUEUED, {"requestId": "k1"})
    assert [(r.to, r.message_id, r.ok) for r in result.recipients] == [(TO, "k1", True)]


def test_scheduled_send_is_scheduled(pulse: Edna) -> None:
    message = Message(to=TO, text="hi", scheduled_at=NOW + timedelta(days=1))
    assert pulse.parse_response(httpx.Response(200, json={"requestId": "k"}), message=message).status is DeliveryStatus.SCHEDULED


def test_a_single_refused_recipient_raises(im: Edna) -> None:
    with pytest.raises(InvalidRecipient, match=r"is not a WhatsApp user\. \(code not-whatsapp-user, HTTP 200\)"):
        im.parse_response(im_answer({"id": "k", "code": "not-whatsapp-user"}))


@pytest.mark.parametrize(
    ("response", "cls", "match", "accepted"),
    [
        (httpx.Response(200, text=""), TransportError, "the answer is empty", None),
        (httpx.Response(200, text='{"requestId": "k'), TransportError, "not valid JSON", None),
        (httpx.Response(200, json=["k"]), TransportError, "unexpected answer shape", None),
        (httpx.Response(401, text=""), AuthError, "HTTP 401", False),
        (httpx.Response(402, json={"status": 402, "detail": "insufficient funds"}), InsufficientBalance, "insufficient funds", False),
        (httpx.Response(429, json={"status": 429}, headers={"Retry-After": "3"}), RateLimited, "HTTP 429", False),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServiceUnavailable, "HTTP 502", None),
        (httpx.Response(503, text=""), ServiceUnavailable, "HTTP 503", False),
    ],
)
def test_any_answer_becomes_a_typed_error(pulse: Edna, response: httpx.Response, cls, match: str, accepted) -> None:
    with pytest.raises(cls, match=match) as info:
        pulse.parse_response(response)
    assert info.value.accepted is accepted
    assert pickle.loads(pickle.dumps(info.value)).http_status == response.status_code


def test_429_keeps_retry_after(pulse: Edna) -> None:
    with pytest.raises(RateLimited) as info:
        pulse.parse_response(httpx.Response(429, headers={"Retry-After": "3"}))
    assert info.value.retry_after == 3.0


def test_api_key_never_appears_in_errors_or_reprs(http: httpx.Client, pulse: Edna) -> None:
    body = {"title": "error-unauthorized", "status": 401, "detail": f"key {KEY} is revoked", "echo": {"X-API-KEY": KEY}}
    with pytest.raises(AuthError, match=r"key \*\*\* is revoked") as info:
        pulse.parse_response(httpx.Response(401, json=body))
    err = info.value
    for text in (str(err), repr(err), repr(err.raw), repr(pickle.loads(pickle.dumps(err)).__dict__), repr(pulse), repr(Client(pulse, http_client=http))):
        assert KEY not in text
    assert repr(pulse) == f"Edna(api='pulse', base_url='{BASE}')"


# -- the client: retries, idempotency, several recipients ------------------------------------------------------


def test_error_system_is_retried_with_the_same_request_id(http: httpx.Client, pulse: Edna, policy: RetryPolicy, sleeps) -> None:
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{BASE}/api/cascade/schedule").mock(
            side_effect=[problem("error-system", 500), httpx.Response(200, json={"requestId": "order-1"})]
        )
        with Client(pulse, retry=policy, http_client=http) as client:
            result = client.send(Message(to=TO, text="hi", idempotency_key="order-1"))
    assert route.call_count == 2 and result.attempts == 2 and len(sleeps) == 1
    assert [body_of(c.request)["requestId"] for c in route.calls] == ["order-1", "order-1"]
    assert not result.deduplicated and result.message_id == "order-1"


def test_id_not_unique_on_a_retry_means_the_first_attempt_landed(http: httpx.Client, im: Edna, policy: RetryPolicy) -> None:
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{IM_BASE}/api/imOutMessage").mock(
            side_effect=[httpx.ReadTimeout("slow"), im_answer({"id": "x", "code": "error-id-not-unique"})]
        )
        with Client(im, retry=policy, http_client=http) as client:
            result = client.send(Message(to=TO, channel="whatsapp", text="hi"))
    assert route.call_count == 2 and result.deduplicated and result.attempts == 2
    assert result.message_id == result.idempotency_key == body_of(route.calls[0].request)["id"]
    assert result.recipients[0].message_id == result.message_id and result.status is DeliveryStatus.QUEUED


def test_id_not_unique_on_a_first_attempt_with_a_fresh_key_is_an_error(http: httpx.Client, im: Edna, policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{IM_BASE}/api/imOutMessage").mock(return_value=im_answer({"code": "error-id-not-unique"}))
        with Client(im, retry=policy, http_client=http) as client, pytest.raises(DuplicateMessage, match="error-id-not-unique") as info:
            client.send(Message(to=TO, channel="whatsapp", text="hi"))
    assert info.value.attempts == 1


def test_id_not_unique_with_the_callers_key_is_success(http: httpx.Client, pulse: Edna, policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{BASE}/api/cascade/schedule").mock(return_value=problem("error-id-not-unique", 409))
        with Client(pulse, retry=policy, http_client=http) as client:
            result = client.send(Message(to=TO, text="hi", idempotency_key="order-17"))
    assert result.deduplicated and result.message_id == "order-17" and result.attempts == 1


@pytest.mark.parametrize("code", ["error-unauthorized", "error-insufficient-balance", "error-address-format", "not-template-match", "error-subject-unknown"])
def test_non_retryable_codes_are_sent_once(http: httpx.Client, pulse: Edna, policy: RetryPolicy, code: str) -> None:
    with respx.mock() as router:
        route = router.post(f"{BASE}/api/cascade/schedule").mock(return_value=problem(code))
        with Client(pulse, retry=policy, http_client=http) as client, pytest.raises(Edna.errors[code].exc, match=code) as info:
            client.send(Message(to=TO, text="hi"))
    assert route.call_count == 1 and info.value.attempts == 1 and info.value.idempotency_key


def test_ambiguous_failure_after_retries_is_delivery_unknown_then_a_resend_is_safe(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    emu.script(Fault.drop_after_accept(), Fault.drop_after_accept(), Fault.drop_after_accept())
    with inprocess_client(emu, policy) as client:
        with pytest.raises(DeliveryUnknown, match="may have reached") as info:
            client.send(Message(to=TO, text="hi", idempotency_key="order-9"))
        assert info.value.idempotency_key == "order-9" and info.value.attempts == 3 and info.value.accepted is None
        again = client.send(Message(to=TO, text="hi", idempotency_key="order-9"))
    assert again.deduplicated and again.message_id == "order-9"
    assert emu.accepted_count == 1 and emu.duplicates() == 0


@pytest.mark.parametrize("api", ["pulse", "im"])
@pytest.mark.parametrize("fault", [Fault.drop_after_accept(), Fault.truncated(), Fault.http_error(500, accept=True)], ids=["drop", "truncated", "500_after_accept"])
def test_emulator_ambiguous_faults_end_in_exactly_one_message(policy: RetryPolicy, api: str, fault: Fault) -> None:
    emu = EdnaEmulator()
    emu.script(fault)
    with inprocess_client(emu, policy, api=api) as client:
        result = client.send(Message(to=TO, channel="whatsapp", text="Your order 7 is ready for pickup at Main St."))
    assert result.deduplicated and result.attempts == 2
    assert emu.accepted_count == 1 and emu.duplicates() == 0
    assert emu.messages[result.message_id].idempotency_key == result.idempotency_key


def test_several_recipients_one_request_each_with_a_suffixed_id(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    with inprocess_client(emu, policy) as client:
        result = client.send(Message(to=[TO, "+10000000000", "+48500100201"], text="hi", idempotency_key="promo"))
    assert [(r.to, r.message_id, r.ok) for r in result.recipients] == [
        (TO, "promo--1", True),
        ("+10000000000", None, False),
        ("+48500100201", "promo--3", True),
    ]
    assert isinstance(result.failed[0].error, InvalidRecipient) and result.failed[0].error.code == "error-address-format"
    # One answer per request, as for every vendor's split send: the refused number's is its problem body.
    assert result.message_id == "promo--1" and [r.get("requestId") or r["title"] for r in result.raw] == [
        "promo--1",
        "error-address-format",
        "promo--3",
    ]
    with pytest.raises(PartialFailure, match="1 of 3 recipients rejected"):
        result.raise_for_failures()
    assert [body_of_request["requestId"] for body_of_request in (r.json() for r in emu.requests)] == ["promo--1", "promo--2", "promo--3"]
    assert emu.accepted_count == 2


def test_several_recipients_all_refused_raises_the_first_error(policy: RetryPolicy) -> None:
    emu = EdnaEmulator(not_on_whatsapp=("+48500100201",))
    with inprocess_client(emu, policy, api="im") as client, pytest.raises(InvalidRecipient, match="error-address-format"):
        client.send(Message(to=["+10000000000", "+48500100201"], channel="whatsapp", text="hi"))
    assert len(emu.requests) == 2 and emu.accepted_count == 0


def test_an_account_error_stops_a_split_send_at_once(policy: RetryPolicy) -> None:
    emu = EdnaEmulator(credentials=("other-key",))
    provider = Edna(api_key="wrong-key-1234", base_url="http://emulator.test", cascade_id=1001)
    with Client(provider, retry=policy, http_client=httpx.Client(transport=emu.transport())) as client:
        with pytest.raises(AuthError, match="error-unauthorized, HTTP 401"):
            client.send(Message(to=[TO, "+48500100201"], text="hi"))
    assert len(emu.requests) == 1


def test_a_later_account_error_is_its_recipients_and_a_resend_completes_the_batch(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    message = Message(to=[TO, "+48500100201"], text="hi", idempotency_key="batch")
    with inprocess_client(emu, policy) as client:
        emu.balance = emu.price  # room for one message
        first = client.send(message)
        (failed,) = first.failed
        assert failed.to == "+48500100201" and failed.status is DeliveryStatus.REJECTED
        assert isinstance(failed.error, InsufficientBalance) and failed.error.code == "error-insufficient-balance"
        emu.balance = 10
        again = client.send(message)
    assert [(r.message_id, r.ok) for r in again.recipients] == [("batch--1", True), ("batch--2", True)]
    assert emu.accepted_count == 2 and emu.duplicates() == 0


def test_an_account_error_while_no_number_was_accepted_stops_the_send(http: httpx.Client, pulse: Edna, policy: RetryPolicy) -> None:
    with respx.mock() as router:
        route = router.post(f"{BASE}/api/cascade/schedule").mock(
            side_effect=[problem("error-address-format"), problem("error-insufficient-balance", 402), httpx.Response(200, json={})]
        )
        with Client(pulse, retry=policy, http_client=http) as client, pytest.raises(InsufficientBalance, match="error-insufficient-balance"):
            client.send(Message(to=[TO, "+48500100201", "+48500100202"], text="hi", idempotency_key="trio"))
    assert [body_of(c.request)["requestId"] for c in route.calls] == ["trio--1", "trio--2"]  # the third never went out


def test_a_resend_of_a_landed_split_send_is_deduplicated(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    message = Message(to=[TO, "+48500100201"], channel="whatsapp", text="hi", idempotency_key="pair-9")
    with inprocess_client(emu, policy, api="im") as client:
        first = client.send(message)
        again = client.send(message)
    assert not first.deduplicated and again.deduplicated
    assert [(r.message_id, r.ok) for r in again.recipients] == [("pair-9--1", True), ("pair-9--2", True)]
    assert emu.accepted_count == 2 and emu.duplicates() == 0


def test_a_later_ambiguous_failure_is_unknown_for_its_recipient(http: httpx.Client, pulse: Edna, policy: RetryPolicy) -> None:
    with respx.mock() as router:
        route = router.post(f"{BASE}/api/cascade/schedule").mock(
            side_effect=[httpx.Response(200, json={"requestId": "pair-1"}), *[httpx.ReadTimeout("slow")] * 3]
        )
        with Client(pulse, retry=policy, http_client=http) as client:
            result = client.send(Message(to=[TO, "+48500100201"], text="hi", idempotency_key="pair"))
    (unknown,) = result.failed
    assert unknown.status is DeliveryStatus.UNKNOWN and isinstance(unknown.error, DeliveryUnknown)
    assert unknown.error.idempotency_key == "pair" and result.recipients[0].ok and result.attempts == 4
    assert [body_of(c.request)["requestId"] for c in route.calls] == ["pair--1", "pair--2", "pair--2", "pair--2"]


# -- the emulator: vendor behaviour ------------------------------------------------------------------------------


def test_emulator_balance_runs_out(policy: RetryPolicy) -> None:
    emu = EdnaEmulator(balance=0.25, price=0.1)
    with inprocess_client(emu, policy, api="im") as client:
        for n in range(2):
            client.send(Message(to=f"+4850010020{n}", channel="whatsapp", text="hi"))
        with pytest.raises(InsufficientBalance, match=r"code error-insufficient-balance, HTTP 200"):
            client.send(Message(to="+48500100209", channel="whatsapp", text="hi"))
    assert emu.accepted_count == 2


@pytest.mark.parametrize(
    ("fields", "cls", "code"),
    [
        (dict(channel="whatsapp", text="hi", to="+48500100299"), InvalidRecipient, "not-whatsapp-user"),
        (dict(channel="viber", text="hi", to="+48500100298"), InvalidRecipient, "not-viber-user"),
        (dict(channel="whatsapp", text="hi", to="+48500100297"), InvalidRecipient, "user-blocked"),
        (dict(channel="whatsapp", text="hi", sender="Stranger"), PermissionDenied, "error-subject-unknown"),
        (dict(channel="whatsapp", template=Template(name="t", params=["1"]), text="Nothing like it {{1}}"), TemplateError, "error-content-do-not-match-hsm-template"),
        (dict(channel="whatsapp", text="hi", options={"priority": "asap"}), ValidationError, "error-priority-format"),
        (dict(channel="whatsapp", text="hi", options={"validityPeriodSeconds": -5}), ValidationError, "error-validity-period-seconds-format"),
        (dict(channel="whatsapp", text="hi", options={"startTime": "tomorrow"}), ValidationError, "error-start-time-format"),
        (dict(channel="whatsapp", text="hi", options={"comment": 5}), ValidationError, "error-comment-format"),
        (dict(channel="whatsapp", text="hi", options={"imType": None}), ValidationError, "error-im-type-not-specified"),
        (dict(channel="whatsapp", text="hi", options={"contentType": None}), ValidationError, "error-content-type-not-specified"),
        (dict(channel="whatsapp", text="hi", options={"contentType": "sticker"}), ValidationError, "error-content-type-format"),
        (dict(channel="whatsapp", text="hi", options={"text": " "}), ValidationError, "error-content-format"),
        (dict(channel="whatsapp", text="x", options={"contentType": "image"}), ValidationError, "error-attachment-url-not-specified"),
        (dict(channel="whatsapp", text="x", options={"contentType": "location", "longitude": 1}), ValidationError, "error-latitude-not-specified"),
        (dict(channel="whatsapp", text="x", options={"contentType": "location", "latitude": 1}), ValidationError, "error-longtitude-not-specified"),
        (dict(channel="whatsapp", text="hi", options={"subject": None}), ValidationError, "error-subject-format"),
    ],
)
def test_emulator_im_refusals_are_typed(policy: RetryPolicy, fields: dict, cls: type, code: str) -> None:
    emu = EdnaEmulator(not_on_whatsapp=("+48500100299",), not_on_viber=("+48500100298",), blocked=("+48500100297",))
    with inprocess_client(emu, policy, api="im") as client, pytest.raises(cls, match=f"code {code}, HTTP 200") as info:
        client.send(Message(**{"to": TO, **fields}))
    assert type(info.value) is Edna.errors[code].exc and info.value.attempts == 1 and emu.accepted_count == 0


@pytest.mark.parametrize(
    ("options", "cls", "code", "status"),
    [
        ({"cascadeId": 999}, ValidationError, "cascade-scheduling-request-not-valid", 400),
        ({"content": {"viberContent": {"contentType": "TEXT", "text": "x"}}}, ValidationError, "cascade-scheduling-request-not-valid", 400),
        ({"startTime": "soon"}, ValidationError, "error-start-time-format", 400),
    ],
)
def test_emulator_pulse_refusals_are_problem_details(policy: RetryPolicy, options: dict, cls: type, code: str, status: int) -> None:
    emu = EdnaEmulator()
    with inprocess_client(emu, policy) as client, pytest.raises(cls, match=f"code {code}, HTTP {status}"):
        client.send(Message(to=TO, text="hi", options=options))
    assert emu.accepted_count == 0


def test_emulator_rate_limit_is_429_with_retry_after(sleeps) -> None:
    emu = EdnaEmulator(rate_limit=(1, 60.0))
    with inprocess_client(emu, RetryPolicy(sleep=sleeps, max_attempts=2)) as client:
        client.send(Message(to=TO, text="one"))
        with pytest.raises(RateLimited, match="HTTP 429") as info:
            client.send(Message(to=TO, text="two"))
    assert info.value.retry_after == 1.0 and sleeps == [1.0] and info.value.attempts == 2


def test_emulator_pulse_cancels_an_identical_message_within_20_minutes(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    with inprocess_client(emu, policy) as client:
        first = client.send(Message(to=TO, text="Sale today"))
        second = client.send(Message(to=TO, text="Sale today"))
        assert second.status is DeliveryStatus.QUEUED  # accepted, then cancelled by edna
        assert client.get_status(first.message_id).status is DeliveryStatus.QUEUED
        report = client.get_status(second.message_id)
    assert report.status is DeliveryStatus.CANCELLED and report.vendor_status == "CANCELLED"


def test_emulator_pulse_failure_reports_carry_the_seed_code(policy: RetryPolicy) -> None:
    emu = EdnaEmulator(not_on_whatsapp=("+48500100299",), blocked=("+48500100297",))
    with inprocess_client(emu, policy) as client:
        unknown = client.send(Message(to="+48500100299", channel="whatsapp", text="Your order 1 is ready for pickup at Main St."))
        blocked = client.send(Message(to="+48500100297", channel="whatsapp", text="Your order 2 is ready for pickup at Main St."))
        free_text = client.send(Message(to=TO, channel="whatsapp", text="Free text outside a session"))
        reports = [client.get_status(r.message_id) for r in (unknown, blocked, free_text)]
    assert [(r.status, r.vendor_status) for r in reports] == [
        (DeliveryStatus.UNDELIVERED, "UNDELIVERED"),
        (DeliveryStatus.FAILED, "FAILED"),
        (DeliveryStatus.REJECTED, "NO_MATCH_TEMPLATE"),
    ]
    errors = [(r.error.error_class, r.error.code) for r in reports if r.error is not None]
    assert errors == [("InvalidRecipient", "not-whatsapp-user"), ("InvalidRecipient", "user-blocked"), ("TemplateError", "NO_MATCH_TEMPLATE")]
    assert reports[0].error is not None and reports[0].error.exception_class is InvalidRecipient


@pytest.mark.parametrize("api", ["pulse", "im"])
def test_emulator_scheduled_send_is_delayed(policy: RetryPolicy, api: str) -> None:
    emu = EdnaEmulator()
    with inprocess_client(emu, policy, api=api) as client:
        result = client.send(Message(to=TO, channel="whatsapp", text="Your order 9 is ready for pickup at Main St.", scheduled_at=NOW + timedelta(hours=3)))
        report = client.get_status(result.message_id)
    assert result.status is DeliveryStatus.SCHEDULED
    assert report.status is DeliveryStatus.SCHEDULED and str(report.vendor_status).lower() == "delayed"


def test_emulator_whatsapp_session_allows_free_text(policy: RetryPolicy) -> None:
    emu = EdnaEmulator(sessions=(TO,))
    with inprocess_client(emu, policy) as client:
        result = client.send(Message(to=TO, channel="whatsapp", text="Thanks for your question!"))
        assert client.get_status(result.message_id).status is DeliveryStatus.QUEUED


def test_emulator_template_send_through_pulse(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    templates = {"order_ready": "Your order {{1}} is ready for pickup at {{2}}."}
    with inprocess_client(emu, policy, templates=templates) as client:
        result = client.send(Message(to=TO, channel="whatsapp", template=Template(name="order_ready", params=["42", "Main St"])))
        assert client.get_status(result.message_id).status is DeliveryStatus.QUEUED
    assert emu.messages[result.message_id].text == "Your order 42 is ready for pickup at Main St."


# -- status lookups --------------------------------------------------------------------------------------------


def test_status_requests(pulse: Edna, im: Edna) -> None:
    request = im.build_status_request("order 1/2")
    assert (request.method, str(request.url)) == ("GET", f"{IM_BASE}/api/imOutMessage/order%201%2F2")
    assert request.headers["x-api-key"] == KEY
    request = pulse.build_status_request("order-1")
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/api/messages/history")
    # Only the filters docs-pulse.edna.io/docs/api/messages/history documents: requestId is not one.
    documented = {"subscriberFilter", "offset", "limit", "channelTypes", "messageId", "direction", "dateFrom", "dateTo", "sort", "trafficTypes", "subjectId"}
    query = body_of(request)
    assert set(query) <= documented and "requestId" not in query
    assert (query["direction"], query["offset"], query["limit"]) == ("OUT", 0, 1000)
    assert query["sort"] == [{"property": "messageId", "direction": "DESC"}]
    window = datetime.fromisoformat(query["dateTo"].replace("Z", "+00:00")) - datetime.fromisoformat(query["dateFrom"].replace("Z", "+00:00"))
    assert timedelta(days=7) <= window <= timedelta(days=7, minutes=2)


def test_im_status_answer(im: Edna) -> None:
    body = {"imOutMessageId": "test-001", "dlvStatus": "undelivered", "dlvStatusAt": "2021-01-15T11:41:20.000+0000", "dlvError": "not-whatsapp-user", "code": "ok"}
    report = im.parse_status(im_answer(body), message_id="test-001")
    assert (report.message_id, report.idempotency_key, report.status, report.vendor_status) == ("test-001", "test-001", DeliveryStatus.UNDELIVERED, "undelivered")
    assert report.error is not None and (report.error.error_class, report.error.code) == ("InvalidRecipient", "not-whatsapp-user")
    assert report.timestamp == datetime(2021, 1, 15, 11, 41, 20, tzinfo=timezone.utc)


def test_pulse_history_picks_the_matching_item(pulse: Edna) -> None:
    items = [
        {"requestId": "other", "messageId": 1, "status": "READ"},
        {"requestId": "order-1", "messageId": 8681748, "status": "DELIVERED", "statusAt": "2025-01-30T11:07:55Z"},
    ]
    for body in (items, {"messages": items}):
        report = pulse.parse_status(httpx.Response(200, json=body), message_id="order-1")
        assert (report.message_id, report.status, report.event_id) == ("order-1", DeliveryStatus.DELIVERED, "8681748:DELIVERED:2025-01-30T11:07:55Z")
    with pytest.raises(NotFound, match="code error-not-found"):
        pulse.parse_status(httpx.Response(200, json=items), message_id="missing")


@respx.mock
def test_pulse_lookup_pages_through_the_history_until_the_request_id(sleeps) -> None:
    others = [{"requestId": f"x-{i}", "messageId": 10_000 - i, "status": "DELIVERED"} for i in range(1000)]
    mine = {"requestId": "order-1", "messageId": 42, "status": "READ", "statusAt": "2025-01-30T11:07:55Z"}
    route = respx.post(f"{BASE}/api/messages/history").mock(
        side_effect=[httpx.Response(200, json=others), httpx.Response(200, json=[mine]), httpx.Response(200, json=[])]
    )
    with Client(Edna(api_key=KEY, cascade_id=1, base_url=BASE), retry=RetryPolicy(sleep=sleeps)) as client:
        report = client.get_status("order-1")
    assert report.status is DeliveryStatus.READ and report.message_id == "order-1"
    assert [body_of(c.request)["offset"] for c in route.calls] == [0, 1000]  # the short page ends it


@respx.mock
def test_pulse_lookup_is_bounded_and_says_how_far_it_looked(sleeps) -> None:
    page = [{"requestId": f"x-{i}", "messageId": i, "status": "SENT"} for i in range(1000)]
    route = respx.post(f"{BASE}/api/messages/history").mock(return_value=httpx.Response(200, json=page))
    with Client(Edna(api_key=KEY, cascade_id=1, base_url=BASE), retry=RetryPolicy(sleep=sleeps)) as client:
        with pytest.raises(NotFound, match=r"newest 10000 outbound messages of the last 7 days"):
            client.get_status("order-1")
    assert route.call_count == 10


# edna Pulse: "You cannot send a duplicate message within 20 minutes. Duplicate messages will be
# canceled." (docs-pulse.edna.io/docs/api/messages/sending). A retry with the same requestId of a
# message that landed therefore leaves a CANCELLED copy beside the delivered one.
def test_a_cancelled_copy_never_hides_the_status_of_the_copy_that_landed(pulse: Edna) -> None:
    items = [
        {"requestId": "order-1", "messageId": 9, "status": "CANCELLED", "statusAt": "2025-01-30T11:08:00Z"},
        {"requestId": "order-1", "messageId": 8, "status": "DELIVERED", "statusAt": "2025-01-30T11:07:55Z"},
    ]
    report = pulse.parse_status(httpx.Response(200, json=items), message_id="order-1")
    assert (report.status, report.vendor_status, report.raw["messageId"]) == (DeliveryStatus.DELIVERED, "DELIVERED", 8)
    alone = pulse.parse_status(httpx.Response(200, json=items[:1]), message_id="order-1")
    assert alone.status is DeliveryStatus.CANCELLED and alone.status.is_final  # every copy cancelled
    (event,) = pulse.parse_webhook(body=json.dumps(PULSE_CALLBACK | {"status": "CANCELLED"}))
    assert event.status is DeliveryStatus.UNKNOWN and not event.status.is_final and event.vendor_status == "CANCELLED"
    # A cancelled repeat names why: edna's code is kept as the reason, whatever the status.
    (why,) = pulse.parse_webhook(body=json.dumps(PULSE_CALLBACK | {"status": "CANCELLED", "error": "error-id-not-unique"}))
    assert why.status is DeliveryStatus.UNKNOWN and why.error is not None
    assert (why.error.error_class, why.error.code) == ("DuplicateMessage", "error-id-not-unique")


def test_emulator_retry_that_edna_cancels_keeps_the_delivered_status(policy: RetryPolicy) -> None:
    emu = EdnaEmulator(repeated_request_id="cancel")
    with inprocess_client(emu, policy) as client:
        first = client.send(Message(to=TO, text="Your code is 1234", idempotency_key="otp-1"))
        emu.deliver("otp-1")
        again = client.send(Message(to=TO, text="Your code is 1234", idempotency_key="otp-1"))  # the re-send
        assert again.message_id == first.message_id == "otp-1"
        # Both copies are in the history under otp-1: the delivered one and the cancelled repeat.
        assert [(r.id, r.status) for r in emu.pulse_log] == [("otp-1", "delivered"), ("otp-1", "cancelled")]
        report = client.get_status("otp-1")
    assert report.status is DeliveryStatus.DELIVERED and report.vendor_status == "DELIVERED"


@pytest.mark.parametrize("api", ["pulse", "im"])
def test_status_of_an_unknown_id_is_not_found(policy: RetryPolicy, api: str) -> None:
    emu = EdnaEmulator()
    with inprocess_client(emu, policy, api=api) as client, pytest.raises(NotFound, match="error-not-found"):
        client.get_status("no-such-id")


# -- webhooks ----------------------------------------------------------------------------------------------------

PULSE_CALLBACK = {
    "requestId": "test-00135",
    "messageId": 8681748,
    "cascadeId": 11,
    "cascadeStageUUID": "001-test001",
    "subject": "test_subject",
    "subjectId": 2,
    "status": "DELIVERED",
    "statusAt": "2025-01-30T11:07:55Z",
    "error": None,
    "comment": None,
}


def test_pulse_status_callback(pulse: Edna) -> None:
    (report,) = pulse.parse_webhook(body=json.dumps(PULSE_CALLBACK).encode(), headers={"content-type": "application/json"})
    assert (report.provider, report.message_id, report.idempotency_key, report.status, report.vendor_status) == (
        "edna",
        "test-00135",
        "test-00135",
        DeliveryStatus.DELIVERED,
        "DELIVERED",
    )
    assert report.timestamp == datetime(2025, 1, 30, 11, 7, 55, tzinfo=timezone.utc)
    assert report.event_id == "8681748:DELIVERED:2025-01-30T11:07:55Z" and report.raw["messageId"] == 8681748
    assert report.error is None


def test_pulse_failed_callback_carries_the_code(pulse: Edna) -> None:
    event = PULSE_CALLBACK | {"status": "FAILED", "error": "error-subject-unknown"}
    (report,) = pulse.parse_webhook(body=json.dumps(event))
    assert report.status is DeliveryStatus.FAILED
    assert report.error is not None and (report.error.error_class, report.error.code) == ("PermissionDenied", "error-subject-unknown")
    assert report.error.message == "The subject is not allowed for this client."


def test_failed_callback_with_an_unknown_code_keeps_it(pulse: Edna) -> None:
    (report,) = pulse.parse_webhook(body=json.dumps(PULSE_CALLBACK | {"status": "FAILED", "error": "carrier-said-no"}))
    assert report.error is not None and (report.error.error_class, report.error.code) == ("DeliveryFailed", "carrier-said-no")


def test_im_callback_and_a_list_of_events(im: Edna) -> None:
    events = [
        {"imOutMessageId": "test-001", "dlvStatus": "read", "dlvStatusAt": "2020-01-10T19:03:52.355+0300", "dlvError": None, "rate": None, "reserveSms": None},
        {"imOutMessageId": "test-002", "dlvStatus": "expired", "dlvStatusAt": "bad date", "dlvError": None},
    ]
    reports = im.parse_webhook(body=json.dumps(events))
    assert [(r.message_id, r.status) for r in reports] == [("test-001", DeliveryStatus.READ), ("test-002", DeliveryStatus.EXPIRED)]
    assert reports[0].timestamp == datetime(2020, 1, 10, 16, 3, 52, 355000, tzinfo=timezone.utc)
    assert reports[1].timestamp is None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "holds no status event"),
        (b'["x"]', "holds no status event"),
        (b'{"status": "DELIVERED"}', "the edna event names no message id"),
    ],
)
def test_malformed_callbacks_are_refused(pulse: Edna, body: bytes, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        pulse.parse_webhook(body=body)


@pytest.fixture
def signed() -> Edna:
    return Edna(api_key=KEY, base_url=BASE, webhook_key=HOOK_KEY)


def test_webhook_key_accepted_in_any_header_case(signed: Edna) -> None:
    for name in ("X-API-KEY", "x-api-key", "X-Api-Key"):
        (report,) = signed.parse_webhook(body=json.dumps(PULSE_CALLBACK), headers={name: HOOK_KEY})
        assert report.status is DeliveryStatus.DELIVERED


@pytest.mark.parametrize(
    ("headers", "match"),
    [({}, "webhook key missing in X-API-KEY"), ({"X-API-KEY": "forged"}, "webhook key wrong in X-API-KEY"), ({"X-API-KEY": KEY}, "wrong")],
    ids=["missing", "forged", "api_key_is_not_the_webhook_key"],
)
def test_forged_or_missing_webhook_key_is_an_auth_error(signed: Edna, headers: dict, match: str) -> None:
    with pytest.raises(WebhookAuthError, match=match) as info:
        signed.parse_webhook(body=json.dumps(PULSE_CALLBACK), headers=headers)
    assert isinstance(info.value, AuthError) and info.value.provider == "edna"
    assert HOOK_KEY not in str(info.value) and HOOK_KEY not in repr(info.value)


def test_webhook_key_is_compared_in_constant_time(signed: Edna, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    signed.parse_webhook(body=json.dumps(PULSE_CALLBACK), headers={"X-API-KEY": HOOK_KEY})
    assert calls == [(HOOK_KEY.encode(), HOOK_KEY.encode())]


def test_webhook_key_header_is_configurable() -> None:
    provider = Edna(api_key=KEY, webhook_key=HOOK_KEY, webhook_key_header="Authorization")
    assert provider.parse_webhook(body=json.dumps(PULSE_CALLBACK), headers={"authorization": HOOK_KEY})
    with pytest.raises(WebhookAuthError, match="missing in Authorization"):
        provider.parse_webhook(body=json.dumps(PULSE_CALLBACK), headers={"X-API-KEY": HOOK_KEY})


def test_without_a_webhook_key_callbacks_are_not_checked(pulse: Edna) -> None:
    assert pulse.parse_webhook(body=json.dumps(PULSE_CALLBACK), headers={"X-API-KEY": "anything"})


# -- over real TCP ----------------------------------------------------------------------------------------------------


@pytest.mark.tcp
@pytest.mark.parametrize("api", ["pulse", "im"])
def test_tcp_send_status_and_signed_delivery_report(http: httpx.Client, serve, policy: RetryPolicy, api: str) -> None:
    emu = EdnaEmulator(webhook_key=HOOK_KEY)
    server = serve(emu)
    provider = emu.make_provider(server.base_url, api=api)
    with Client(provider, retry=policy, http_client=http) as client:
        result = client.send(Message(to=TO, channel="whatsapp", text="Your order 5 is ready for pickup at Main St."))
        assert result.message_id == result.idempotency_key and result.attempts == 1
        assert client.get_status(result.message_id).status is DeliveryStatus.QUEUED
        callback = emu.deliver(result.message_id)
        assert callback["headers"]["X-API-KEY"] == HOOK_KEY
        (report,) = provider.parse_webhook(**callback)
        assert report.status is DeliveryStatus.DELIVERED and report.message_id == result.message_id
        assert client.get_status(result.message_id).status is DeliveryStatus.DELIVERED
        (failed,) = provider.parse_webhook(**emu.deliver(result.message_id, delivered=False))
        assert failed.status is DeliveryStatus.UNDELIVERED and failed.error is not None and failed.error.code == "not-whatsapp-user"
        with pytest.raises(WebhookAuthError, match="webhook key missing"):
            provider.parse_webhook(body=callback["body"])


@pytest.mark.tcp
def test_tcp_typed_error(http: httpx.Client, serve, policy: RetryPolicy) -> None:
    emu = EdnaEmulator(not_on_whatsapp=(TO,))
    server = serve(emu)
    with Client(emu.make_provider(server.base_url, api="im"), retry=policy, http_client=http) as client:
        with pytest.raises(InvalidRecipient, match=r"is not a WhatsApp user\. \(code not-whatsapp-user, HTTP 200\)") as info:
            client.send(Message(to=TO, channel="whatsapp", text="hi"))
    assert info.value.accepted is False and info.value.attempts == 1 and len(emu.requests) == 1


@pytest.mark.tcp
def test_tcp_rate_limit_and_error_system_are_retried_with_the_same_id(http: httpx.Client, serve, sleeps) -> None:
    emu = EdnaEmulator()
    server = serve(emu)
    emu.script(Fault.vendor_error(429), Fault.vendor_error("error-system"))
    with Client(emu.make_provider(server.base_url), retry=RetryPolicy(sleep=sleeps, jitter=False), http_client=http) as client:
        result = client.send(Message(to=TO, text="hi"))
    assert result.attempts == 3 and sleeps == [1.0, 1.0] and emu.accepted_count == 1
    assert {r.json()["requestId"] for r in emu.requests} == {result.idempotency_key}


@pytest.mark.tcp
@pytest.mark.parametrize("api", ["pulse", "im"])
def test_tcp_timeout_after_accept_leaves_exactly_one_message(http: httpx.Client, serve, policy: RetryPolicy, api: str) -> None:
    emu = EdnaEmulator()
    server = serve(emu)
    emu.script(Fault.slow(2.5))
    with Client(emu.make_provider(server.base_url, api=api), retry=policy, timeout=httpx.Timeout(10, read=1.0), http_client=http) as client:
        result = client.send(Message(to=TO, channel="whatsapp", text="Your order 3 is ready for pickup at Main St."))
    assert result.deduplicated and result.attempts == 2
    assert emu.accepted_count == 1 and emu.duplicates() == 0


@pytest.mark.tcp
@pytest.mark.parametrize("fault", [Fault.drop_after_accept(), Fault.reset(), Fault.huge_body()], ids=["drop_after_accept", "reset", "huge_body"])
def test_tcp_connection_faults_end_in_exactly_one_message(http: httpx.Client, serve, policy: RetryPolicy, fault: Fault) -> None:
    emu = EdnaEmulator()
    server = serve(emu)
    emu.script(fault)
    with Client(emu.make_provider(server.base_url), retry=policy, timeout=2.0, http_client=http) as client:
        result = client.send(Message(to=TO, text="hi"))
    assert result.attempts == 2 and emu.accepted_count == 1 and emu.duplicates() == 0


# -- async ------------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_retries_and_dedups(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    emu.script(Fault.vendor_error("error-system"), Fault.drop_after_accept())
    async with inprocess_async_client(emu, policy, api="im") as client:
        result = await client.send(Message(to=TO, channel="viber", text="hi"))
        assert result.attempts == 3 and result.deduplicated
        assert (await client.get_status(result.message_id)).status is DeliveryStatus.QUEUED
        emu.balance = 0
        with pytest.raises(InsufficientBalance, match="error-insufficient-balance"):
            await client.send(Message(to="+48500100201", channel="viber", text="hi"))
    assert emu.accepted_count == 1 and emu.duplicates() == 0


@pytest.mark.anyio
@pytest.mark.tcp
async def test_async_tcp_timeout_after_accept(serve, policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    server = serve(emu)
    emu.script(Fault.slow(2.5))
    async with AsyncClient(emu.make_provider(server.base_url), retry=policy, timeout=httpx.Timeout(10, read=1.0)) as client:
        result = await client.send(Message(to=TO, text="hi"))
    assert result.deduplicated and emu.accepted_count == 1


# The Pulse status callback fields the docs mark "Required" (docs-pulse.edna.io/docs/api/callback/get-status:
# requestId, messageId, cascadeId, cascadeStageUUID, subject, subjectId, status, statusAt).
def test_emulator_pulse_callbacks_carry_every_required_field(policy: RetryPolicy) -> None:
    emu = EdnaEmulator()
    with inprocess_client(emu, policy) as client:
        result = client.send(Message(to=TO, text="hello"))
    event = json.loads(emu.deliver(str(result.message_id))["body"])
    required = {"requestId", "messageId", "cascadeId", "cascadeStageUUID", "subject", "subjectId", "status", "statusAt"}
    assert required <= set(event) and all(event[name] not in (None, "") for name in required)
    assert isinstance(event["subjectId"], int) and str(uuid.UUID(event["cascadeStageUUID"])) == event["cascadeStageUUID"]
    (report,) = client.provider.parse_webhook(body=json.dumps(event))
    assert report.status is DeliveryStatus.DELIVERED
