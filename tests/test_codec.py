"""Outcomes travel as JSON (omnisend._codec): every error class and result comes back typed and whole."""

from __future__ import annotations

import json

import httpx
import pytest

from omnisend import _codec, errors
from omnisend.errors import (
    DeliveryUnknown,
    InvalidRecipient,
    OmnisendError,
    PartialFailure,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)
from omnisend.models import DeliveryStatus, RecipientResult, SendResult

CLASSES = [
    cls for name in errors.__all__ if isinstance(cls := getattr(errors, name), type) and issubclass(cls, OmnisendError)
]


def round_trip_error(error: BaseException) -> BaseException:
    return _codec.error_from_data(json.loads(_codec.dumps(_codec.error_to_data(error))))


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_every_error_class_comes_back_as_itself_with_its_fields(cls: type[OmnisendError]) -> None:
    error = cls(
        "boom",
        provider="smsapi",
        code=103,
        vendor_message="Insufficient credits",
        http_status=200,
        raw={"error": 103, "message": "Insufficient credits"},
        idempotency_key="key-1",
        attempts=2,
        request_id="rq-1",
        accepted=None,
        retryable=True,
    )
    back = round_trip_error(error)
    assert type(back) is cls
    assert str(back) == str(error) == "smsapi: boom (code 103, HTTP 200)"
    for name in ("code", "vendor_message", "raw", "retryable", "accepted", "idempotency_key", "attempts", "request_id"):
        assert getattr(back, name) == getattr(error, name), name
    assert back.args == ("boom",)


def test_class_specific_fields_and_causes_survive() -> None:
    limited = RateLimited("slow down", provider="clickatell", code=43, retry_after=2.5, accepted=False)
    back = round_trip_error(limited)
    assert isinstance(back, RateLimited) and back.retry_after == 2.5 and back.accepted is False and back.retryable

    invalid = ValidationError("bad sender", field="sender")
    assert round_trip_error(invalid).field == "sender"  # type: ignore[attr-defined]

    cause = ServiceUnavailable("upstream", provider="smsapi", http_status=502)
    unknown = DeliveryUnknown.from_error(cause, "may have landed", retryable=False)
    rebuilt = round_trip_error(unknown)
    assert isinstance(rebuilt, DeliveryUnknown) and isinstance(rebuilt.__cause__, ServiceUnavailable)
    assert rebuilt.__cause__.http_status == 502

    transport = DeliveryUnknown("no answer", provider="smsapi")
    transport.__cause__ = httpx.ReadTimeout("timed out")
    foreign = round_trip_error(transport).__cause__
    assert isinstance(foreign, _codec.ForeignError) and foreign.type_name == "ReadTimeout" and str(foreign) == "timed out"


def test_an_unknown_class_name_comes_back_as_its_nearest_known_ancestor() -> None:
    data = _codec.error_to_data(RateLimited("x", provider="p"))
    data["class"] = "SomethingNewer"
    data["classes"] = ["SomethingNewer", *data["classes"][1:]]  # a newer writer's subclass of ProviderError
    back = _codec.error_from_data(data)
    assert type(back) is errors.ProviderError and back.provider == "p"


def test_a_class_name_outside_omnisend_is_never_looked_up() -> None:
    back = _codec.error_from_data({"class": "os.system", "classes": ["os.system", "system"], "message": "x"})
    assert isinstance(back, _codec.ForeignError) and back.type_name == "os.system"


def test_a_result_comes_back_with_recipients_errors_and_route_errors() -> None:
    failed = RecipientResult("+48500100201", None, DeliveryStatus.REJECTED, InvalidRecipient("bad", code=13))
    result = SendResult(
        "smsapi",
        "1",
        DeliveryStatus.QUEUED,
        (RecipientResult("+48500100200", "1", DeliveryStatus.QUEUED), failed),
        idempotency_key="k",
        attempts=2,
        raw={"count": 1, "list": [{"id": "1"}]},
        deduplicated=True,
        metadata={"campaign": "c1"},
        segments=1,
        route_errors=(ServiceUnavailable("down", provider="clickatell"),),
    )
    back = _codec.result_from_data(json.loads(_codec.dumps(_codec.result_to_data(result))))
    assert back.status is DeliveryStatus.QUEUED and back.message_id == "1" and back.raw == result.raw
    assert (back.idempotency_key, back.attempts, back.deduplicated, dict(back.metadata), back.segments) == (
        "k",
        2,
        True,
        {"campaign": "c1"},
        1,
    )
    assert [r.to for r in back.failed] == ["+48500100201"] and isinstance(back.failed[0].error, InvalidRecipient)
    assert back.failed[0].error.code == 13
    assert [type(e) for e in back.route_errors] == [ServiceUnavailable]


def test_partial_failure_keeps_its_result() -> None:
    failed = RecipientResult("+48500100201", None, DeliveryStatus.REJECTED, InvalidRecipient("bad", code=13))
    result = SendResult("smsapi", "1", DeliveryStatus.QUEUED, (RecipientResult("+48500100200", "1", DeliveryStatus.QUEUED), failed))
    with pytest.raises(PartialFailure, match="1 of 2") as info:
        result.raise_for_failures()
    back = round_trip_error(info.value)
    assert isinstance(back, PartialFailure) and [r.to for r in back.failed] == ["+48500100201"]


def test_a_status_this_version_does_not_know_reads_as_unknown() -> None:
    data = _codec.result_to_data(SendResult("smsapi", "1", DeliveryStatus.QUEUED, ()))
    data["status"] = "teleported"
    data["new_field"] = 1
    back = _codec.result_from_data(data)
    assert back.status is DeliveryStatus.UNKNOWN
