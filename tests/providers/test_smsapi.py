"""SMSAPI: the code table row by row, requests, answers, retries, status, webhooks, the emulator."""

from __future__ import annotations

import pickle
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from omnisend import (
    AuthError,
    Client,
    ConfigurationError,
    DeliveryFailed,
    DeliveryStatus,
    DeliveryUnknown,
    DuplicateMessage,
    InsufficientBalance,
    InvalidRecipient,
    Message,
    NotFound,
    OmnisendError,
    PartialFailure,
    ProviderError,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    Template,
    ValidationError,
)
from omnisend.providers import Smsapi
from omnisend.testing import Fault, SmsapiEmulator
from tests.conftest import inprocess_async_client, inprocess_client, load_codes

TOKEN = "tok-SECRET-0123456789"
BASE = "https://api.smsapi.test"


@pytest.fixture
def smsapi() -> Smsapi:
    return Smsapi(token=TOKEN, base_url=BASE)


def answer(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def ok_body(*numbers: str, status: str = "QUEUE") -> dict[str, object]:
    return {
        "count": len(numbers),
        "list": [
            {"id": f"ID{i}", "number": n.lstrip("+"), "submitted_number": n.lstrip("+"), "status": status, "points": 0.1}
            for i, n in enumerate(numbers, 1)
        ],
    }


# -- the tables --------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "row"), list(Smsapi.errors.items()), ids=[str(c) for c in Smsapi.errors])
def test_every_error_code_raises_its_class(smsapi: Smsapi, code: int, row) -> None:
    with pytest.raises(row.exc, match=r"^smsapi: .+\(code \d+, HTTP 200\)$") as info:
        smsapi.parse_response(answer({"error": code, "message": f"vendor text {code}"}))
    err = info.value
    assert type(err) is row.exc
    assert err.code == code
    assert err.provider == "smsapi"
    assert err.vendor_message == f"vendor text {code}"
    assert err.http_status == 200
    assert err.raw == {"error": code, "message": f"vendor text {code}"}
    assert err.retryable is row.is_retryable
    assert err.accepted is (None if row.ambiguous else False)


@pytest.mark.parametrize("code", [str(c) for c in Smsapi.errors][:5])
def test_codes_that_arrive_as_strings_find_their_row(smsapi: Smsapi, code: str) -> None:
    with pytest.raises(Smsapi.errors[int(code)].exc, match=f"code {code}"):
        smsapi.parse_response(answer({"error": code}))


def test_error_table_covers_every_documented_code() -> None:
    documented = {entry["code"] for entry in load_codes("smsapi")["errors"]}
    assert documented == set(Smsapi.errors)
    assert len(documented) == 125


def test_no_documented_code_falls_to_the_generic_class() -> None:
    assert all(row.exc is not ProviderError for row in Smsapi.errors.values())


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (101, AuthError, False),
        (102, AuthError, False),
        (103, InsufficientBalance, False),
        (202, RateLimited, True),
        (203, RateLimited, True),
        (52, RateLimited, True),
        (8, ServiceUnavailable, True),
        (200, ServiceUnavailable, True),
        (201, ServiceUnavailable, True),
        (999, ServiceUnavailable, True),
        (53, DuplicateMessage, False),
        (13, InvalidRecipient, False),
        (57, InvalidRecipient, False),
        (104, ValidationError, False),
        (301, NotFound, False),
    ],
)
def test_issue_named_codes(code: int, cls: type[OmnisendError], retryable: bool) -> None:
    row = Smsapi.errors[code]
    assert issubclass(row.exc, cls)
    assert row.is_retryable is retryable


def test_code_52_carries_the_documented_wait(smsapi: Smsapi) -> None:
    with pytest.raises(RateLimited, match="code 52") as info:
        smsapi.parse_response(answer({"error": 52}))
    assert info.value.retry_after == 60.0


def test_unknown_code_keeps_the_raw_code(smsapi: Smsapi) -> None:
    with pytest.raises(ProviderError, match="code 31337") as info:
        smsapi.parse_response(answer({"error": 31337, "message": "new"}))
    assert type(info.value) is ProviderError and info.value.code == 31337


def test_status_table_covers_every_documented_status() -> None:
    documented = {entry["code"] for entry in load_codes("smsapi")["statuses"]}
    assert documented <= set(Smsapi.statuses)
    assert {401, 402, 403, 404, 405, 406, 407, 408, 409, 410} <= set(Smsapi.statuses)


@pytest.mark.parametrize(("value", "entry"), list(Smsapi.statuses.items()), ids=[str(v) for v in Smsapi.statuses])
def test_every_status_normalizes(value: object, entry) -> None:
    assert Smsapi.statuses.normalize(value) is entry.status
    if isinstance(value, str):
        assert Smsapi.statuses.normalize(value.lower()) is entry.status
    assert Smsapi.statuses.normalize(str(value)) is entry.status


def test_status_values_match_the_seed() -> None:
    expected = {
        401: DeliveryStatus.UNKNOWN,
        402: DeliveryStatus.EXPIRED,
        403: DeliveryStatus.SENT,
        404: DeliveryStatus.DELIVERED,
        405: DeliveryStatus.UNDELIVERED,
        406: DeliveryStatus.FAILED,
        407: DeliveryStatus.REJECTED,
        408: DeliveryStatus.UNKNOWN,
        409: DeliveryStatus.QUEUED,
        410: DeliveryStatus.SENT,
    }
    assert {code: Smsapi.statuses.normalize(code) for code in expected} == expected


def test_unknown_status_is_unknown_not_keyerror() -> None:
    assert Smsapi.statuses.normalize("BRAND_NEW") is DeliveryStatus.UNKNOWN
    assert Smsapi.statuses.normalize(None) is DeliveryStatus.UNKNOWN


# -- building requests ---------------------------------------------------------------------------


def form_of(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_golden_single_send(smsapi: Smsapi) -> None:
    request = smsapi.build_request(Message(to="+48 500-100-200", text="Zażółć", sender="Shop"), idempotency_key="k1")
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/sms.do"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form_of(request) == {
        "to": "48500100200",
        "message": "Zażółć",
        "from": "Shop",
        "format": "json",
        "encoding": "utf-8",
        "details": "1",
        "idx": "k1",
        "check_idx": "1",
    }


def test_bulk_send_gets_one_idx_per_recipient(smsapi: Smsapi) -> None:
    request = smsapi.build_request(Message(to=["+48500100200", "+48500100201"], text="hi"), idempotency_key="k")
    form = form_of(request)
    assert form["to"] == "48500100200,48500100201"
    assert form["idx"] == "k--1|k--2"


def test_schedule_expiry_template_test_mode_and_options() -> None:
    provider = Smsapi(token=TOKEN, base_url=BASE, test=True)
    when = datetime.now(timezone.utc) + timedelta(days=1)
    message = Message(
        to="+48500100200",
        template=Template(name="otp", params=["1234", "5"]),
        scheduled_at=when,
        validity=timedelta(hours=2),
        options={"normalize": "1"},
    )
    form = form_of(provider.build_request(message, idempotency_key="k"))
    assert form["date"] == str(int(when.timestamp()))
    assert form["expiration_date"] == str(int((when + timedelta(hours=2)).timestamp()))
    assert (form["template"], form["param1"], form["param2"]) == ("otp", "1234", "5")
    assert form["test"] == "1" and form["normalize"] == "1"
    assert "message" not in form


def test_region_selects_the_host() -> None:
    # The official client's platforms (smsapi-python-client smsapi/client.py: SmsApiPlClient,
    # SmsApiComClient, SmsApiBgClient, SmsApiSwedenClient).
    assert Smsapi(token=TOKEN).base_url == "https://api.smsapi.pl"
    assert Smsapi(token=TOKEN, region="com").base_url == "https://api.smsapi.com"
    assert Smsapi(token=TOKEN, region="se").base_url == "https://api.smsapi.se"
    assert Smsapi(token=TOKEN, region="bg").base_url == "https://api.smsapi.bg"
    with pytest.raises(ConfigurationError, match="region must be one of"):
        Smsapi(token=TOKEN, region="de")


def test_code_101_says_a_token_of_another_platform_answers_it() -> None:
    # smsapi-python-client#30 and smsapi-php-client#71: a token made on another platform gets
    # "Authorization failed", code 101, in a 2xx body.
    body = {"error": 101, "message": "Authorization failed"}
    with pytest.raises(AuthError, match=r"Authorization failed; a token of another SMSAPI platform answers 101") as info:
        Smsapi(token=TOKEN, region="com").parse_response(httpx.Response(200, json=body))
    assert "region=" in str(info.value) and info.value.vendor_message == "Authorization failed" and info.value.code == 101


# The SMSAPI Tech FAQ (smsapi.com/blog/tech) allows "& @ + _ ! %" in sender names besides letters,
# digits, space, "." and "-"; names of up to 11 characters.
@pytest.mark.parametrize("sender", ["A&B", "Shop_1", "Pizza!", "Info@", "50%off", "Shop+Co", "Shop.pl", "My-Shop 1"])
def test_sender_names_the_vendor_allows_are_sent(sender: str) -> None:
    request = Smsapi(token=TOKEN).build_request(Message(to="+48500100200", text="hi", sender=sender), idempotency_key="k")
    assert parse_qs(request.content.decode())["from"] == [sender]


# -- bad input: refused before any request --------------------------------------------------------

NOW = datetime.now(timezone.utc)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (dict(to="+48500100200", text="hi", sender="ThisNameIsTooLong"), r"sender .* up to 11 characters"),
        (dict(to="+48500100200", text="hi", sender="Shop#1"), r"sender 'Shop#1' is not allowed"),
        (dict(to="+48500100200", text="x" * 1531), r"needs 11 SMS parts .* at most 10"),
        (dict(to="+48500100200", text="hi", scheduled_at=NOW + timedelta(days=120)), r"more than 3 months \(90 days\) ahead"),
        (dict(to="+48500100200", text="hi", scheduled_at=NOW - timedelta(hours=1)), r"in the past"),
        (dict(to="+48500100200", text="hi", validity=timedelta(minutes=30)), r"a validity outside 1 to 72 hours"),
        (dict(to="+48500100200", text="hi", validity=timedelta(hours=73)), r"a validity outside 1 to 72 hours"),
        (dict(to="+48500100200", text="hi", channel="whatsapp"), r"does not support the 'whatsapp' channel"),
        (dict(to="+48500100200", text="hi", media={"url": "https://x/y.png"}), r"does not support media"),
        (dict(to="+48500100200", template={"name": "t", "params": ["1", "2", "3", "4", "5"]}), r"more than 4 template parameters"),
        (dict(to=["+48500100200", "+48500100201"], text="hi", idempotency_key="k" * 254), r"idx allows 255"),
    ],
)
def test_bad_input_is_refused_before_any_request(smsapi: Smsapi, message: dict, match: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.post(f"{BASE}/sms.do")
        with Client(smsapi) as client, pytest.raises(ValidationError, match=match) as info:
            client.send(Message(**message))
        assert route.call_count == 0
    assert info.value.code is None and info.value.accepted is False


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (dict(to="", text="hi"), r"Message.to: recipient number is empty"),
        (dict(to="500100200", text="hi"), r"not an E.164 number"),
        (dict(to="+48 abc", text="hi"), r"not an E.164 number"),
        (dict(to=[], text="hi"), r"at least one recipient"),
        (dict(to="+48500100200", text="   "), r"text is empty"),
        (dict(to="+48500100200"), r"needs text, a template or media"),
        (dict(to="+48500100200", text="hi", sender=""), r"sender is empty"),
        (dict(to="+48500100200", text="hi", scheduled_at=datetime(2030, 1, 1)), r"must carry a time zone"),
        (dict(to="+48500100200", text="hi", unknown=1), r"Extra inputs are not permitted"),
    ],
)
def test_bad_messages_are_refused_at_construction(fields: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Message(**fields)


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing_token_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    monkeypatch.delenv("OMNISEND_SMSAPI_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match=r"smsapi: no token\. Pass Smsapi\(token=\.\.\.\) or set OMNISEND_SMSAPI_TOKEN"):
        Smsapi(token=token)


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_SMSAPI_TOKEN", "env-token-1234")
    request = Smsapi().build_request(Message(to="+48500100200", text="hi"), idempotency_key="k")
    assert request.headers["authorization"] == "Bearer env-token-1234"


# -- reading answers ---------------------------------------------------------------------------------


def test_success_gives_one_result_per_recipient(smsapi: Smsapi) -> None:
    message = Message(to=["+48500100200", "+48500100201"], text="hi")
    result = smsapi.parse_response(answer(ok_body("+48500100200", "+48500100201")), message=message, idempotency_key="k")
    assert result.message_id == "ID1"
    assert [(r.to, r.message_id, r.status) for r in result.recipients] == [
        ("+48500100200", "ID1", DeliveryStatus.QUEUED),
        ("+48500100201", "ID2", DeliveryStatus.QUEUED),
    ]
    assert result.failed == () and result.raise_for_failures() is result


def test_invalid_numbers_in_a_success_are_per_recipient_failures(smsapi: Smsapi) -> None:
    message = Message(to=["+48500100200", "+48990000000"], text="hi")
    body = ok_body("+48500100200") | {
        "invalid_numbers": [{"number": "48990000000", "submitted_number": "48990000000", "message": "Invalid phone number"}]
    }
    result = smsapi.parse_response(answer(body), message=message, idempotency_key="k")
    (bad,) = result.failed
    assert bad.to == "+48990000000" and isinstance(bad.error, InvalidRecipient) and bad.error.code == 13
    with pytest.raises(PartialFailure, match="1 of 2 recipients rejected") as info:
        result.raise_for_failures()
    assert info.value.failed == [bad]


def test_all_rejected_raises_invalid_recipient_with_the_numbers(smsapi: Smsapi) -> None:
    body = {
        "error": 13,
        "message": "No correct phone numbers",
        "invalid_numbers": [{"number": "48990000000", "submitted_number": "48990000000", "message": "Invalid"}],
    }
    with pytest.raises(InvalidRecipient, match="No correct phone numbers") as info:
        smsapi.parse_response(answer(body))
    assert info.value.raw == body


def test_scheduled_send_reports_scheduled(smsapi: Smsapi) -> None:
    message = Message(to="+48500100200", text="hi", scheduled_at=datetime.now(timezone.utc) + timedelta(days=1))
    result = smsapi.parse_response(answer(ok_body("+48500100200")), message=message)
    assert result.status is DeliveryStatus.SCHEDULED


@pytest.mark.parametrize(
    ("response", "cls", "match"),
    [
        (httpx.Response(200, text=""), OmnisendError, r"the answer is empty"),
        (httpx.Response(200, text='{"count": 1, "li'), OmnisendError, r"not valid JSON"),
        (httpx.Response(200, text="<html>oops</html>", headers={"content-type": "text/html"}), OmnisendError, "not valid JSON"),
        (httpx.Response(200, json=[1, 2, 3]), OmnisendError, "unexpected answer shape"),
        (httpx.Response(200, json={"list": "nope"}), OmnisendError, "unexpected answer shape"),
        (httpx.Response(401, text="<html>401</html>"), AuthError, "HTTP 401"),
        (httpx.Response(403, text=""), ProviderError, "HTTP 403"),
        (httpx.Response(402, text=""), InsufficientBalance, "HTTP 402"),
        (httpx.Response(429, text="", headers={"Retry-After": "7"}), RateLimited, "HTTP 429"),
        (httpx.Response(500, text="<html>boom</html>"), ServiceUnavailable, "HTTP 500"),
        (httpx.Response(503, text="down"), ServiceUnavailable, "HTTP 503"),
        (httpx.Response(418, text="teapot"), ProviderError, "HTTP 418"),
    ],
)
def test_any_answer_becomes_a_typed_error(smsapi: Smsapi, response: httpx.Response, cls: type, match: str) -> None:
    with pytest.raises(cls, match=match) as info:
        smsapi.parse_response(response)
    assert isinstance(info.value, OmnisendError)
    assert pickle.loads(pickle.dumps(info.value)).http_status == response.status_code


def test_429_keeps_retry_after(smsapi: Smsapi) -> None:
    with pytest.raises(RateLimited, match="HTTP 429") as info:
        smsapi.parse_response(httpx.Response(429, headers={"Retry-After": "7"}))
    assert info.value.retry_after == 7.0


def test_vendor_code_wins_over_http_status(smsapi: Smsapi) -> None:
    with pytest.raises(InsufficientBalance, match="code 103, HTTP 400"):
        smsapi.parse_response(httpx.Response(400, json={"error": 103, "message": "no credits"}))


def test_token_never_appears_in_errors_or_reprs(smsapi: Smsapi) -> None:
    body = {"error": 101, "message": f"bad token {TOKEN}", "echo": {"auth": f"Bearer {TOKEN}"}}
    with pytest.raises(AuthError, match=r"bad token \*\*\*") as info:
        smsapi.parse_response(answer(body))
    err = info.value
    for text in (str(err), repr(err), repr(err.raw), repr(pickle.loads(pickle.dumps(err)).__dict__), repr(smsapi)):
        assert TOKEN not in text
    assert TOKEN not in repr(Client(smsapi))


# -- status lookup and webhooks ----------------------------------------------------------------------


def test_status_lookup(smsapi: Smsapi) -> None:
    request = smsapi.build_status_request("ID7")
    assert request.method == "GET" and request.url.params["status"] == "ID7" and request.url.params["format"] == "json"
    body = {"count": 1, "list": [{"id": "ID7", "number": "48500100200", "status": "DELIVERED", "idx": "k", "date_sent": 1700000000}]}
    report = smsapi.parse_status(answer(body), message_id="ID7")
    assert (report.message_id, report.status, report.vendor_status, report.recipient, report.idempotency_key) == (
        "ID7",
        DeliveryStatus.DELIVERED,
        "DELIVERED",
        "+48500100200",
        "k",
    )
    assert report.timestamp == datetime.fromtimestamp(1700000000, tz=timezone.utc)


def test_status_of_unknown_id_is_not_found(smsapi: Smsapi) -> None:
    with pytest.raises(NotFound, match="code 301"):
        smsapi.parse_status(answer({"error": 301, "message": "Not exists ID message"}), message_id="nope")


def test_webhook_batch_with_comma_separated_fields(smsapi: Smsapi) -> None:
    query = {
        "MsgId": "A1,A2,A3",
        "status": "404,405,999",
        "idx": "k-1,k-2,",
        "donedate": "1700000000,1700000005,bad",
        "to": "48500100200,48500100201,48500100202",
        "username": "me",
    }
    reports = smsapi.parse_webhook(query=query)
    assert [(r.message_id, r.status, r.vendor_status, r.idempotency_key) for r in reports] == [
        ("A1", DeliveryStatus.DELIVERED, 404, "k-1"),
        ("A2", DeliveryStatus.UNDELIVERED, 405, "k-2"),
        ("A3", DeliveryStatus.UNKNOWN, 999, None),
    ]
    # "UNDELIVERED: Message is undelivered (invalid number, roaming error etc)" (SMSAPI status
    # codes): the vendor took the message and the network could not deliver it.
    assert reports[1].error is not None and reports[1].error.error_class == "DeliveryFailed"
    assert reports[1].error.exception_class is DeliveryFailed
    assert reports[0].timestamp == datetime.fromtimestamp(1700000000, tz=timezone.utc)
    assert reports[2].timestamp is None
    assert reports[0].recipient == "+48500100200"


def test_webhook_as_form_body(smsapi: Smsapi) -> None:
    (report,) = smsapi.parse_webhook(body=b"MsgId=A1&status=407&idx=k")
    assert report.status is DeliveryStatus.REJECTED and report.error is not None


@pytest.mark.parametrize("query", [{}, {"status": "404"}, {"MsgId": ""}])
def test_webhook_without_message_id_is_refused(smsapi: Smsapi, query: dict) -> None:
    with pytest.raises(ValidationError, match="without MsgId"):
        smsapi.parse_webhook(query=query)


# -- the client with respx: retries, idempotency ----------------------------------------------------------


def test_203_then_success_retries_once_with_the_same_idx(smsapi: Smsapi, policy: RetryPolicy, sleeps) -> None:
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{BASE}/sms.do").mock(
            side_effect=[answer({"error": 203, "message": "Too many requests"}), answer(ok_body("+48500100200"))]
        )
        with Client(smsapi, retry=policy) as client:
            result = client.send(Message(to="+48500100200", text="hi"))
    assert route.call_count == 2 and result.attempts == 2 and len(sleeps) == 1
    idx = [form_of(call.request)["idx"] for call in route.calls]
    assert idx[0] == idx[1] == result.idempotency_key


def test_53_on_a_retry_means_the_first_attempt_landed(smsapi: Smsapi, policy: RetryPolicy) -> None:
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{BASE}/sms.do").mock(
            side_effect=[httpx.ReadTimeout("slow"), answer({"error": 53, "message": "Not unique idx"})]
        )
        with Client(smsapi, retry=policy) as client:
            result = client.send(Message(to="+48500100200", text="hi"))
    assert route.call_count == 2
    assert result.deduplicated is True and result.status is DeliveryStatus.QUEUED and result.attempts == 2


def test_53_on_a_first_attempt_with_a_fresh_key_is_an_error(smsapi: Smsapi, policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{BASE}/sms.do").mock(return_value=answer({"error": 53}))
        with Client(smsapi, retry=policy) as client, pytest.raises(DuplicateMessage, match="code 53") as info:
            client.send(Message(to="+48500100200", text="hi"))
    assert info.value.attempts == 1


def test_53_with_a_callers_key_is_success(smsapi: Smsapi, policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{BASE}/sms.do").mock(return_value=answer({"error": 53}))
        with Client(smsapi, retry=policy) as client:
            result = client.send(Message(to="+48500100200", text="hi", idempotency_key="order-17"))
    assert result.deduplicated and result.idempotency_key == "order-17"


@pytest.mark.parametrize("code", [101, 103, 13, 14, 104, 11])
def test_non_retryable_codes_are_sent_once(smsapi: Smsapi, policy: RetryPolicy, code: int) -> None:
    with respx.mock() as router:
        route = router.post(f"{BASE}/sms.do").mock(return_value=answer({"error": code}))
        with Client(smsapi, retry=policy) as client, pytest.raises(Smsapi.errors[code].exc, match=f"code {code}") as info:
            client.send(Message(to="+48500100200", text="hi"))
    assert route.call_count == 1 and info.value.attempts == 1 and info.value.idempotency_key


# -- the emulator, in-process and over TCP -----------------------------------------------------------------


def test_emulator_credits_run_out(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(balance=0.25, price=0.1)
    with inprocess_client(emu, policy) as client:
        client.send(Message(to="+48500100200", text="hi"))
        client.send(Message(to="+48500100201", text="hi"))
        with pytest.raises(InsufficientBalance, match="code 103"):
            client.send(Message(to="+48500100202", text="hi"))
    assert emu.accepted_count == 2


def test_emulator_per_number_rate_limit_is_52(sleeps) -> None:
    emu = SmsapiEmulator(rate_limit=(2, 60.0))
    with inprocess_client(emu, RetryPolicy(sleep=sleeps, max_retry_after=10)) as client:
        client.send(Message(to="+48500100200", text="1"))
        client.send(Message(to="+48500100200", text="2"))
        with pytest.raises(RateLimited, match="code 52") as info:
            client.send(Message(to="+48500100200", text="3"))
    assert info.value.retry_after == 60.0 and info.value.attempts == 1 and sleeps == []


def test_emulator_blacklist_is_57(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(blacklist=("+48500100299",))
    with inprocess_client(emu, policy) as client, pytest.raises(InvalidRecipient, match="code 57"):
        client.send(Message(to="+48500100299", text="hi"))


def test_emulator_partial_invalid_numbers(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    with inprocess_client(emu, policy) as client:
        result = client.send(Message(to=["+48500100200", "+48990000001"], text="hi"))
    assert [r.ok for r in result.recipients] == [True, False]
    with pytest.raises(PartialFailure, match="1 of 2"):
        result.raise_for_failures()


def test_emulator_test_mode_stores_nothing(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    with inprocess_client(emu, policy, test=True) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
    assert result.message_id and emu.accepted_count == 0


@pytest.mark.tcp
def test_tcp_203_then_success_exactly_one_retry_same_idx(serve, policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    server = serve(emu)
    emu.script(Fault.vendor_error(203))
    with Client(emu.make_provider(server.base_url), retry=policy) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
    assert result.attempts == 2 and emu.accepted_count == 1
    sends = [r for r in emu.requests if r.method == "POST"]
    assert len(sends) == 2 and sends[0].form["idx"] == sends[1].form["idx"] == result.idempotency_key


@pytest.mark.tcp
def test_tcp_timeout_after_accept_leaves_exactly_one_message(serve, policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    server = serve(emu)
    emu.script(Fault.slow(2.5))
    # A 1 s read limit, 10 s for the whole call: the retry fits in the deadline.
    with Client(emu.make_provider(server.base_url), retry=policy, timeout=httpx.Timeout(10, read=1.0)) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
    assert result.deduplicated and result.attempts == 2
    assert emu.accepted_count == 1 and emu.duplicates() == 0


@pytest.mark.tcp
@pytest.mark.parametrize(
    "fault",
    [Fault.drop_after_accept(), Fault.truncated(), Fault.http_error(502, accept=True), Fault.reset(), Fault.huge_body()],
    ids=["drop_after_accept", "truncated", "502_after_accept", "reset", "huge_body"],
)
def test_tcp_ambiguous_faults_end_in_exactly_one_message(serve, policy: RetryPolicy, fault: Fault) -> None:
    emu = SmsapiEmulator()
    server = serve(emu)
    emu.script(fault)
    with Client(emu.make_provider(server.base_url), retry=policy, timeout=2.0) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
    assert result.attempts == 2 and emu.accepted_count == 1 and emu.duplicates() == 0


@pytest.mark.tcp
def test_tcp_connection_refused_is_retried_then_typed(policy: RetryPolicy, sleeps) -> None:
    provider = Smsapi(token=TOKEN, base_url="http://127.0.0.1:9")  # discard port: nothing listens
    with Client(provider, retry=policy, timeout=1.0) as client, pytest.raises(OmnisendError, match="could not connect") as info:
        client.send(Message(to="+48500100200", text="hi"))
    assert info.value.accepted is False and info.value.attempts == 3 and len(sleeps) == 2


@pytest.mark.tcp
def test_tcp_status_and_delivery_report(serve, policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    server = serve(emu)
    provider = emu.make_provider(server.base_url)
    with Client(provider, retry=policy) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
        assert result.message_id is not None
        assert client.get_status(result.message_id).status is DeliveryStatus.QUEUED
        (report,) = provider.parse_webhook(**emu.deliver(result.message_id))
        assert report.status is DeliveryStatus.DELIVERED and report.idempotency_key == result.idempotency_key
        assert client.get_status(result.message_id).status is DeliveryStatus.DELIVERED
        with pytest.raises(NotFound, match="code 301"):
            client.get_status("missing")


@pytest.mark.tcp
def test_tcp_retry_none_sends_once(serve) -> None:
    emu = SmsapiEmulator()
    server = serve(emu)
    emu.script(Fault.vendor_error(203))
    with Client(emu.make_provider(server.base_url), retry=None) as client, pytest.raises(RateLimited, match="code 203"):
        client.send(Message(to="+48500100200", text="hi"))
    assert len(emu.requests) == 1


@pytest.mark.anyio
async def test_async_client_same_behaviour(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    emu.script(Fault.vendor_error(202), Fault.drop_after_accept())
    async with inprocess_async_client(emu, policy) as client:
        result = await client.send(Message(to="+48500100200", text="hi"))
        assert result.attempts == 3 and result.deduplicated
        emu.balance = 0
        with pytest.raises(InsufficientBalance, match="code 103"):
            await client.send(Message(to="+48500100201", text="hi"))
    assert emu.accepted_count == 1 and emu.duplicates() == 0


@pytest.mark.anyio
@pytest.mark.tcp
async def test_async_tcp_timeout_after_accept(serve, policy: RetryPolicy) -> None:
    from omnisend import AsyncClient

    emu = SmsapiEmulator()
    server = serve(emu)
    emu.script(Fault.slow(2.5))
    async with AsyncClient(emu.make_provider(server.base_url), retry=policy, timeout=httpx.Timeout(10, read=1.0)) as client:
        result = await client.send(Message(to="+48500100200", text="hi"))
    assert result.deduplicated and emu.accepted_count == 1


def test_ambiguous_failure_after_retries_exhausted_is_delivery_unknown(smsapi: Smsapi, policy: RetryPolicy) -> None:
    with respx.mock() as router:
        router.post(f"{BASE}/sms.do").mock(side_effect=httpx.ReadTimeout("slow"))
        with Client(smsapi, retry=policy) as client, pytest.raises(DeliveryUnknown, match="may have reached") as info:
            client.send(Message(to="+48500100200", text="hi", idempotency_key="order-9"))
    assert info.value.idempotency_key == "order-9" and info.value.attempts == 3 and info.value.accepted is None


def test_more_than_1000_recipients_are_split_with_distinct_idx_per_chunk(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(balance=10_000)
    numbers = [f"+4850{n:07d}" for n in range(2500)]
    emu.script(Fault.vendor_error(201), Fault.drop_after_accept())  # the first two requests misbehave
    with inprocess_client(emu, policy) as client:
        result = client.send(Message(to=numbers, text="sale", idempotency_key="camp-7"))
    sends = [r for r in emu.requests if r.method == "POST"]
    sizes = [len(r.form["to"].split(",")) for r in sends]
    assert sizes == [1000, 1000, 1000, 1000, 500]  # chunk 1 retried after 201, chunk 2 after the drop
    assert sends[0].form["idx"].split("|")[0] == "camp-7--1" and sends[4].form["idx"].split("|")[-1] == "camp-7--2500"
    assert len(result.recipients) == 2500 and result.failed == () and result.idempotency_key == "camp-7"
    assert emu.accepted_count == 2500 and emu.duplicates() == 0


def test_a_later_chunk_failure_is_per_recipient(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(balance=100.05, price=0.1)  # enough for the first 1000 only
    with inprocess_client(emu, policy) as client:
        result = client.send(Message(to=[f"+4850{n:07d}" for n in range(1500)], text="sale"))
    assert len(result.succeeded) == 1000 and len(result.failed) == 500
    assert all(isinstance(r.error, InsufficientBalance) for r in result.failed)
    with pytest.raises(PartialFailure, match="500 of 1500 recipients rejected"):
        result.raise_for_failures()


@given(
    status=st.sampled_from(["QUEUE", "queue", "SENT", " DELIVERED ", "NOT_FOUND", "who-knows"]) | st.integers(400, 410),
    message_id=st.none() | st.just("") | st.text(alphabet="0123456789abcdef", min_size=1, max_size=12) | st.integers(1, 10**9),
    scheduled=st.sampled_from([None, timedelta(hours=2), timedelta(seconds=-30)]),
    numbered=st.booleans(),
)
def test_the_one_recipient_shortcut_reads_an_answer_as_the_general_path_does(
    status: object, message_id: object, scheduled: timedelta | None, numbered: bool
) -> None:
    provider = Smsapi(token=TOKEN, base_url=BASE)
    when = None if scheduled is None else datetime.now(timezone.utc) + scheduled
    item: dict[str, object] = {"id": message_id, "status": status, "points": 0.16}
    if numbered:
        item["number"] = "48500100200"
    response = httpx.Response(200, json={"count": 1, "list": [item]})
    single = Message(to="+48500100200", text="hi", scheduled_at=when)  # the shortcut
    listed = Message(to=["+48500100200"], text="hi", scheduled_at=when)  # the general loop
    assert provider.parse_response(response, message=single, idempotency_key="k") == provider.parse_response(
        response, message=listed, idempotency_key="k"
    )


# -- the emulator speaks the vendor's protocol ---------------------------------------------------


def test_emulator_dates_are_unix_seconds(policy: RetryPolicy) -> None:
    # date_sent and donedate are Unix seconds (smsapi-python-client fixtures: 1460969712; php
    # SmsFactory reads "@" . date_sent), so reports from the emulator are dated now, not 1970.
    emu = SmsapiEmulator()
    with inprocess_client(emu, policy) as client:
        result = client.send(Message(to="+48500100200", text="hi"))
        (item,) = result.raw["list"]
        report = client.get_status(str(result.message_id))
    now = datetime.now(timezone.utc)
    assert abs(item["date_sent"] - now.timestamp()) < 60
    (callback,) = client.provider.parse_webhook(**emu.deliver(str(result.message_id)))
    assert callback.timestamp is not None and abs(callback.timestamp - now) < timedelta(minutes=1)
    assert abs(report.raw["date_sent"] - now.timestamp()) < 60


def test_emulator_takes_json_bodies_as_the_js_and_go_clients_send_them(serve) -> None:
    # smsapi-go sms.go (LegacyPost of a JSON Sms: "to", "message", "from", "idx" as a number,
    # "check_idx"/"details"/"test" as booleans) and the JS client's JSON.stringify body.
    emu = SmsapiEmulator()
    server = serve(emu)
    body = {"to": "48500100200", "message": "Hello", "idx": 77, "check_idx": True, "details": True, "test": False}
    headers = {"Authorization": f"Bearer {emu.credentials[0]}"}
    with httpx.Client() as http:
        first = http.post(f"{server.base_url}/sms.do?format=json", json=body, headers=headers).json()
        again = http.post(f"{server.base_url}/sms.do?format=json", json=body, headers=headers).json()
        many = http.post(
            f"{server.base_url}/sms.do", json={"to": ["48500100201", "48500100202"], "message": "Hi"}, headers=headers
        ).json()
    assert first["count"] == 1 and first["list"][0]["idx"] == "77" and first["list"][0]["number"] == "48500100200"
    assert again["error"] == 53  # check_idx=true was read
    assert [item["number"] for item in many["list"]] == ["48500100201", "48500100202"]


def test_the_official_client_parses_every_emulator_answer(serve) -> None:
    smsapi_client = pytest.importorskip("smsapi.client", reason="the bench extra (smsapi-client) is not installed")
    from smsapi.exception import SendException

    emu = SmsapiEmulator(balance=1.0, price=0.2)
    server = serve(emu)
    official = smsapi_client.Client(f"{server.base_url}/", access_token=emu.credentials[0])
    sent = official.sms.send(to="48500100200", message="Hello", idx="k-1", check_idx=True)
    (item,) = list(sent)
    assert item.id and item.status == "QUEUE" and item.idx == "k-1" and abs(item.date_sent - time.time()) < 60
    answers = []
    for kwargs in (
        {"to": "48500100200", "message": "Hello", "idx": "k-1", "check_idx": True},  # 53
        {"to": "48990000000", "message": "Hello"},  # 13 with invalid_numbers
        {"to": "48500100201", "message": "x" * 2000},  # 103: more parts than credit
    ):
        with pytest.raises(SendException) as info:
            official.sms.send(**kwargs)
        answers.append(info.value.code)
    assert answers == [53, 13, 103]
    with pytest.raises(SendException) as info:
        smsapi_client.Client(f"{server.base_url}/", access_token="wrong").sms.send(to="48500100200", message="x")
    assert info.value.code == 101
