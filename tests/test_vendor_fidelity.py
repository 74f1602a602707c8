"""What the vendors' own SDKs, fixtures and docs say, across every adapter (issue 17).

Per-vendor details live in tests/providers/; here are the rules that hold for every vendor: typed
delivery failures in every table, and HTTP 429 read as throttling whatever code the body holds.
"""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import pytest
import respx

from omnisend import Client, DeliveryFailed, Message, ProviderError, RateLimited, RetryPolicy
from omnisend._docs import available
from omnisend.providers import Clickatell, Edna, Mobizon, Smsapi, Twilio, WebexConnect
from omnisend.providers.base import ErrorTable, Provider, StatusTable

SMS = Message(to="+48500100200", text="hello")


def _tables(cls: type[Provider]) -> list[tuple[str, ErrorTable | StatusTable]]:
    """Every code and status table a vendor module declares (public ones, and DOC_TABLES)."""
    module = importlib.import_module(cls.__module__)
    found: dict[int, tuple[str, ErrorTable | StatusTable]] = {}
    for name, value in vars(module).items():
        if isinstance(value, (ErrorTable, StatusTable)):
            found[id(value)] = (name, value)
    for title, table in getattr(module, "DOC_TABLES", []):
        found.setdefault(id(table), (title, table))
    return list(found.values())


PROVIDERS = available()  # every registered vendor, those added later included


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.name)
def test_no_table_row_maps_to_the_bare_provider_error(cls: type[Provider]) -> None:
    # Issue 17 (2): a code or status with a known meaning gets a specific class; the bare
    # ProviderError is kept only where the vendor's own words say the outcome is unknown
    # (Webex Connect 7200 "Unknown Status", 7518 "Unknown", ...), which are marked ambiguous.
    bare = []
    for name, table in _tables(cls):
        for code, row in table.items():
            if isinstance(table, ErrorTable) and row.exc is ProviderError and not row.ambiguous:
                bare.append((name, code))
            if isinstance(table, StatusTable) and row.error is ProviderError:
                bare.append((name, code))
        for prefix, row in getattr(table, "families", {}).items():
            if row.error is ProviderError:
                bare.append((name, prefix))
    assert bare == []


# One answer per vendor with a code its table does not know, in the vendor's own error shape:
# SMSAPI {"error": int, "message"} (smsapi-python-client fixtures), Clickatell One API
# {"error": {"code", "description"}} (farrel/clickatell-rust-tools message_response.rs), edna Pulse
# problem details {"title", "status", "detail"} (docs.edna.io cascade-verification-errors), Mobizon
# {"code", "data", "message"} (mobizon-php), Webex Connect {"response": {"code", "description"}}
# (help.webexconnect.io api-codes).
UNKNOWN_CODE_429: list[tuple[Provider, dict[str, Any], object]] = [
    (Smsapi(token="t", base_url="https://smsapi.test"), {"error": 9999, "message": "slow down"}, 9999),
    (
        Clickatell(api_key="k", base_url="https://clickatell.test"),
        {"messages": [], "error": {"code": 999, "description": "slow down"}},
        999,
    ),
    (
        Edna(api_key="k", cascade_id=1, base_url="https://edna.test"),
        {"title": "too-many-requests-now", "status": 429, "detail": "slow down"},
        "too-many-requests-now",
    ),
    (Mobizon(api_key="k", base_url="https://mobizon.test"), {"code": 777, "data": [], "message": "slow down"}, 777),
    (
        WebexConnect(service_key="k", base_url="https://webex.test"),
        {"response": {"code": "7999", "description": "slow down"}},
        "7999",
    ),
    # Twilio's error resource {"code", "message", "more_info", "status"} (twilio-python's TwilioRestException).
    (
        Twilio(account_sid="AC" + "0" * 32, auth_token="t" * 32, base_url="https://twilio.test"),
        {"code": 99999, "message": "slow down", "more_info": "https://www.twilio.com/docs/errors/99999", "status": 429},
        99999,
    ),
]


@pytest.mark.parametrize(("provider", "body", "code"), UNKNOWN_CODE_429, ids=lambda v: getattr(v, "name", ""))
def test_http_429_with_an_unknown_code_is_rate_limited_with_retry_after(
    provider: Provider, body: dict[str, Any], code: object
) -> None:
    response = httpx.Response(429, json=body, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited, match="slow down") as info:
        provider.parse_response(response, message=SMS, idempotency_key="k")
    error = info.value
    assert (error.code, error.http_status, error.retry_after) == (code, 429, 7.0)
    assert error.retryable and error.accepted is False


def test_http_429_with_a_known_code_of_another_class_is_still_rate_limited() -> None:
    # "any HTTP 429 is at least RateLimited": the vendor's code and words are kept.
    response = httpx.Response(429, json={"error": 11, "message": "bad message"}, headers={"Retry-After": "2"})
    with pytest.raises(RateLimited, match="bad message") as info:
        Smsapi(token="t").parse_response(response, message=SMS, idempotency_key="k")
    assert info.value.code == 11 and info.value.retry_after == 2.0


@respx.mock
def test_http_429_with_an_unknown_code_is_retried_after_the_wait() -> None:
    sleeps: list[float] = []
    ok = {"response": [{"code": "1001", "description": "Queued", "transid": "t-1"}]}
    route = respx.post("https://webex.test/resources/v1/messaging").mock(
        side_effect=[
            httpx.Response(
                429, json={"response": {"code": "7999", "description": "slow"}}, headers={"Retry-After": "3"}
            ),
            httpx.Response(200, json=ok),
        ]
    )
    with Client(
        WebexConnect(service_key="k", base_url="https://webex.test"), retry=RetryPolicy(sleep=sleeps.append)
    ) as client:
        result = client.send(SMS)
    assert result.message_id == "t-1" and route.call_count == 2 and sleeps == [3.0]


def test_a_report_reason_no_table_knows_is_a_delivery_failure() -> None:
    # A failed receipt whose reason code is new: the vendor took the message, so the reason is at
    # least a DeliveryFailed (edna Pulse callback fields, docs-pulse.edna.io callback/get-status).
    body = b'{"requestId": "r-1", "messageId": 7, "status": "UNDELIVERED", "error": "brand-new-reason"}'
    (report,) = Edna(api_key="k", cascade_id=1).parse_webhook(body=body)
    assert report.error is not None and report.error.exception_class is DeliveryFailed
    assert report.error.code == "brand-new-reason"
