"""The shared send-answer pipeline (providers/_answers.py): a vendor that only declares its answer.

``Acme`` below has no ``parse_response`` of its own: it declares an :class:`Answer` and its code
table, as the module docstring shows, and every behaviour here comes from the base class.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from omnisend import DeliveryStatus, Message
from omnisend.errors import (
    AuthError,
    DeliveryFailed,
    DeliveryUnknown,
    DuplicateMessage,
    InvalidRecipient,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    ValidationError,
)
from omnisend.providers import Smsapi, WebexConnect
from omnisend.providers._answers import refused_status
from omnisend.providers.base import Answer, ErrorCode, ErrorTable, Provider, StatusEntry, StatusTable
from omnisend.testing import strict_adapters

ERRORS = ErrorTable(
    {
        "AUTH": ErrorCode(AuthError, "Bad key"),
        "BAD_TO": ErrorCode(InvalidRecipient, "No such number"),
        "GONE": ErrorCode(DeliveryFailed, "Handset gone"),
        "BUSY": ErrorCode(ServiceUnavailable, "Busy, maybe taken", ambiguous=True),
        "SLOW": ErrorCode(RateLimited, "Slow down"),
    }
)
STATUSES = StatusTable(
    {"queued": StatusEntry(DeliveryStatus.QUEUED, "Queued"), "sent": StatusEntry(DeliveryStatus.SENT, "Sent")}
)


class Acme(Provider):
    name = "acme"
    display_name = "Acme"
    default_base_url = "https://acme.test"
    errors = ERRORS
    statuses = STATUSES
    max_recipients = 2
    answer = Answer(
        code="error.code",
        text=("error.message",),
        items="messages",
        recipient=("to",),
        message_id=("id",),
        status="status",
        item_code=("error",),
        item_text=("reason",),
    )

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        return self.build_http_request("POST", "/send", json={"to": list(message.recipients)})


TO = ["+48500100200", "+48500100201"]


def ok(number: str, n: int = 1, status: str = "queued") -> dict[str, Any]:
    return {"to": number.lstrip("+"), "id": f"m-{n}", "status": status}


def parse(body: object, *, status: int = 200, to: list[str] | None = TO, **fields: Any) -> Any:
    message = None if to is None else Message(to=to, text="hi", **fields)
    return Acme().parse_response(httpx.Response(status, json=body), message=message, idempotency_key="k")


def test_every_recipient_is_matched_by_the_number_its_item_names() -> None:
    result = parse({"messages": [ok(TO[1], 2, "sent"), ok(TO[0], 1)]})
    assert [(r.to, r.message_id, r.status) for r in result.recipients] == [
        (TO[0], "m-1", DeliveryStatus.QUEUED),
        (TO[1], "m-2", DeliveryStatus.SENT),
    ]
    assert (result.message_id, result.status, result.idempotency_key) == ("m-1", DeliveryStatus.QUEUED, "k")


def test_items_that_name_no_number_follow_the_recipients_order_when_as_many() -> None:
    result = parse({"messages": [{"id": "a", "status": "queued"}, {"id": "b", "status": "sent"}]})
    assert [r.message_id for r in result.recipients] == ["a", "b"]


def test_a_refused_item_is_a_per_recipient_error_with_the_status_its_class_implies() -> None:
    refused = {"to": TO[1][1:], "error": "BAD_TO", "reason": "not a number"}
    result = parse({"messages": [ok(TO[0]), refused]})
    (failed,) = result.failed
    assert failed.to == TO[1] and failed.status is DeliveryStatus.REJECTED
    assert isinstance(failed.error, InvalidRecipient) and failed.error.vendor_message == "not a number"
    gone = parse({"messages": [ok(TO[0]), {"to": TO[1][1:], "error": "GONE"}]}).failed[0]
    busy = parse({"messages": [ok(TO[0]), {"to": TO[1][1:], "error": "BUSY"}]}).failed[0]
    assert gone.status is DeliveryStatus.FAILED and busy.status is DeliveryStatus.UNKNOWN


def test_none_accepted_raises_the_first_recipients_error() -> None:
    body = {"messages": [{"to": TO[0][1:], "error": "BAD_TO"}, {"to": TO[1][1:], "error": "GONE"}]}
    with pytest.raises(InvalidRecipient, match="No such number") as info:
        parse(body)
    assert info.value.code == "BAD_TO" and info.value.raw == body


def test_a_recipient_the_answer_does_not_list_is_unknown() -> None:
    result = parse({"messages": [ok(TO[0])]})
    missing = result.recipients[1]
    assert missing.status is DeliveryStatus.UNKNOWN and isinstance(missing.error, DeliveryUnknown)


def test_an_error_of_the_whole_request_is_raised_as_its_class_even_with_http_200() -> None:
    with pytest.raises(AuthError, match="key revoked") as info:
        parse({"error": {"code": "AUTH", "message": "key revoked"}})
    assert info.value.code == "AUTH" and info.value.http_status == 200


@pytest.mark.parametrize(
    ("status", "body", "cls", "match"),
    [
        (401, {"error": {"message": "who are you"}}, AuthError, "who are you"),
        (429, {"nothing": "here"}, RateLimited, "HTTP 429"),
        (503, ["not", "an", "object"], ServiceUnavailable, "HTTP 503"),
    ],
)
def test_a_non_2xx_answer_without_a_code_is_its_http_status(status: int, body: object, cls: type, match: str) -> None:
    with pytest.raises(cls, match=match) as info:
        parse(body, status=status)
    assert info.value.code is None


def test_a_non_2xx_answer_listing_items_is_read_item_by_item() -> None:
    result = parse({"messages": [ok(TO[0]), {"to": TO[1][1:], "error": "BAD_TO"}]}, status=207)
    assert [type(r.error) for r in result.recipients] == [type(None), InvalidRecipient]
    assert result.failed[0].error is not None and result.failed[0].error.http_status == 207


@pytest.mark.parametrize("body", [{"messages": []}, {"other": 1}, {"messages": "queued"}, [1]])
def test_a_2xx_answer_that_lists_nobody_may_have_landed(body: object) -> None:
    with pytest.raises(TransportError, match="unexpected answer shape") as info:
        parse(body)
    assert info.value.accepted is None


def test_queued_for_a_message_scheduled_ahead_reads_scheduled() -> None:
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert parse({"messages": [ok(TO[0])]}, to=[TO[0]], scheduled_at=later).status is DeliveryStatus.SCHEDULED
    assert parse({"messages": [ok(TO[0])]}, to=[TO[0]]).status is DeliveryStatus.QUEUED


def test_without_the_message_the_recipients_are_the_numbers_the_items_name() -> None:
    result = parse({"messages": [ok(TO[0]), ok(TO[1], 2)]}, to=None)
    assert [r.to for r in result.recipients] == TO


def test_the_shared_parse_response_is_guarded_like_an_adapters_own() -> None:
    class Broken(Acme):
        def item_error(self, item: Any) -> tuple[object, object] | None:
            raise KeyError("oops")

    response = httpx.Response(200, json={"messages": [ok(TO[0])]})
    with pytest.raises(TransportError, match="unexpected answer shape") as info:
        Broken().parse_response(response, message=Message(to=TO[0], text="hi"))
    assert info.value.accepted is None
    with strict_adapters(), pytest.raises(KeyError):
        Broken().parse_response(response, message=Message(to=TO[0], text="hi"))


def test_an_accepted_item_without_an_id_is_unreadable_where_ids_are_required() -> None:
    class Strict(Acme):
        answer = Answer(items="messages", recipient="to", message_id="id", id_required=True)

    response = httpx.Response(200, json={"messages": [{"to": TO[0][1:]}]})
    with pytest.raises(TransportError, match="the answer names no message id") as info:
        Strict().parse_response(response, message=Message(to=TO[0], text="hi"))
    assert info.value.accepted is None


def test_success_codes_when_declared_are_the_only_acceptance() -> None:
    class Coded(Acme):
        answer = Answer(
            items="messages",
            item_code="code",
            accepted=StatusTable({"OK": StatusEntry(DeliveryStatus.SENT, "ok")}),
        )

    response = httpx.Response(200, json={"messages": [{"code": "OK"}, {}]})
    result = Coded().parse_response(response, message=Message(to=TO, text="hi"))
    assert result.recipients[0].status is DeliveryStatus.SENT and result.recipients[1].error is not None


def test_refused_status_reads_the_error() -> None:
    assert refused_status(InvalidRecipient("x")) is DeliveryStatus.REJECTED
    assert refused_status(DeliveryFailed("x")) is DeliveryStatus.FAILED
    assert refused_status(ServiceUnavailable("x", accepted=None)) is DeliveryStatus.UNKNOWN


# -- the four adapters on the pipeline: what changed in their reading -------------------------


def test_smsapi_a_list_item_with_its_own_error_code_is_refused() -> None:
    body = {
        "count": 2,
        "list": [
            {"id": "1", "number": "48500100200", "status": "QUEUE", "error": None},
            {"id": "2", "number": "48500100201", "status": "QUEUE", "error": 13},
        ],
    }
    result = Smsapi(token="t0ken-1234").parse_response(
        httpx.Response(200, json=body), message=Message(to=TO, text="hi")
    )
    (failed,) = result.failed
    assert failed.to == TO[1] and isinstance(failed.error, InvalidRecipient)


def test_smsapi_a_recipient_missing_from_the_answer_is_unknown_not_rejected() -> None:
    body = {"count": 1, "list": [{"id": "1", "number": "48500100200", "status": "QUEUE"}]}
    result = Smsapi(token="t0ken-1234").parse_response(
        httpx.Response(200, json=body), message=Message(to=TO, text="hi")
    )
    missing = result.recipients[1]
    assert missing.status is DeliveryStatus.UNKNOWN and isinstance(missing.error, DeliveryUnknown)


def test_split_batches_off_sends_one_request_that_build_request_refuses() -> None:
    provider = WebexConnect(service_key="key-1234", max_destinations=1, split_batches=False)
    flow = provider.send_flow(Message(to=TO, text="hi"), idempotency_key="k")
    with pytest.raises(ValidationError, match="at most 1 destinations per request"):
        next(flow)
    split = WebexConnect(service_key="key-1234", max_destinations=1).send_flow(
        Message(to=TO, text="hi"), idempotency_key="k"
    )
    assert [r.to for r in _drive(split, {"response": [{"code": "1001", "transid": "t"}]})] == TO


def test_a_later_chunk_that_failed_after_the_vendor_took_it_reads_failed() -> None:
    flow = WebexConnect(service_key="key-1234", max_destinations=1).send_flow(
        Message(to=TO, text="hi"), idempotency_key="k"
    )
    step = next(flow)
    step = flow.send(step.parse(httpx.Response(200, json={"response": [{"code": "1001", "transid": "t"}]})))
    try:
        step.parse(httpx.Response(200, json={"response": {"code": "7201", "description": "failed at operator"}}))
    except DeliveryFailed as exc:
        with pytest.raises(StopIteration) as stop:
            flow.throw(exc)
    result = stop.value.value
    assert [r.status for r in result.recipients] == [DeliveryStatus.QUEUED, DeliveryStatus.FAILED]
    assert isinstance(result.recipients[1].error, DeliveryFailed)


def _drive(flow: Any, body: object) -> Any:
    step = next(flow)
    try:
        while True:
            step = flow.send(step.parse(httpx.Response(200, json=body)))
    except StopIteration as stop:
        return stop.value.recipients


# -- declarations for problem details, success codes and vendors that keep our id ----------------


class Problem(Acme):
    """A vendor like edna: ``{"code": ...}`` (``ok`` is success) or RFC 9457 problem details whose
    ``title`` is the code on an error status only; the message keeps the id we send."""

    answer = Answer(
        code="code", failure_code="title", text=("detail", "message"), ok_codes=("ok",), message_id="id", id_is_key=True
    )


def problem_parse(body: object, status: int = 200, key: str | None = "k-1") -> Any:
    return Problem().parse_response(
        httpx.Response(status, json=body), message=Message(to=TO[0], text="hi"), idempotency_key=key
    )


def test_a_problem_title_is_the_code_on_an_error_status_only() -> None:
    with pytest.raises(AuthError, match=r"revoked \(code AUTH, HTTP 401\)") as info:
        problem_parse({"title": "AUTH", "status": 401, "detail": "revoked"}, 401)
    assert info.value.code == "AUTH" and info.value.vendor_message == "revoked"
    # A title on a success is a name, not a code; with no code the HTTP status speaks.
    assert problem_parse({"title": "Scheduled", "id": "v-9"}).message_id == "k-1"
    with pytest.raises(ValidationError, match=r"^acme: bad body \(HTTP 400\)$") as bad:
        problem_parse({"detail": "bad body"}, 400)
    assert bad.value.code is None


@pytest.mark.parametrize("code", ["ok", "OK", " ok "])
def test_declared_ok_codes_are_success_whatever_their_case(code: str) -> None:
    result = problem_parse({"code": code, "id": "v-1"})
    assert result.status is DeliveryStatus.QUEUED and result.recipients[0].error is None
    with pytest.raises(AuthError, match="code AUTH"):  # a code beside an ok-less body is still read
        problem_parse({"code": " AUTH ", "detail": "no"})


def test_a_vendor_that_keeps_our_id_names_the_message_by_the_key() -> None:
    result = problem_parse({"code": "ok", "id": "v-1"})
    assert result.message_id == result.recipients[0].message_id == "k-1"
    assert problem_parse({"code": "ok", "id": "v-1"}, key=None).message_id == "v-1"  # no key: the answer's id
    duplicate = DuplicateMessage("seen", provider="acme")
    again = Problem().duplicate_result(duplicate, message=Message(to=TO, text="hi"), idempotency_key="k-1")
    assert again.deduplicated and again.message_id == "k-1" and {r.message_id for r in again.recipients} == {"k-1"}
    plain = Acme().duplicate_result(duplicate, message=Message(to=TO, text="hi"), idempotency_key="k-1")
    assert plain.message_id is None and {r.message_id for r in plain.recipients} == {None}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, [{"id": 1}, {"id": 2}], [{"id": 1}, {"id": 2}]),
        (200, {"messages": [{"id": 1}]}, [{"id": 1}]),
        (200, {"content": [{"id": 3}], "messages": []}, [{"id": 3}]),
        (200, {"total": 0}, []),
    ],
)
def test_read_list_reads_a_list_body_or_the_first_listing_field(status: int, body: object, expected: list[Any]) -> None:
    assert Acme().read_list(httpx.Response(status, json=body), "messages", "content") == expected


@pytest.mark.parametrize(
    ("status", "body", "cls", "match"),
    [
        (200, {"error": {"code": "AUTH"}}, AuthError, "code AUTH"),
        (503, [{"id": 1}], ServiceUnavailable, "HTTP 503"),
        (200, [1, 2], TransportError, "expected messages to be a list of objects"),
        (200, {"messages": "none"}, TransportError, "expected messages to be a list of objects"),
    ],
)
def test_read_list_raises_errors_as_read_answer_does(status: int, body: object, cls: type, match: str) -> None:
    with pytest.raises(cls, match=match):
        Acme().read_list(httpx.Response(status, json=body), "messages")
