"""Webhook security: shared secrets for vendors that do not sign, replay protection."""

from __future__ import annotations

import base64
import threading
from datetime import datetime, timezone

import pytest

from omnisend import DeliveryReport, DeliveryStatus, WebhookAuthError
from omnisend.providers import Clickatell, Smsapi
from omnisend.webhooks import ReplayGuard, hmac_hex, verify_shared_secret

SECRET = "hook-secret-8f2a"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    ("headers", "query"),
    [({}, {"token": SECRET}), (basic("omnisend", SECRET), {}), (basic("", SECRET), {"token": "wrong"})],
    ids=["query", "basic", "basic-wins-over-a-wrong-query"],
)
def test_shared_secret_accepted(headers: dict, query: dict) -> None:
    verify_shared_secret(SECRET, headers=headers, query=query)


@pytest.mark.parametrize(
    ("headers", "query", "match"),
    [
        ({}, {}, "has no shared secret"),
        ({}, {"token": ""}, "has no shared secret"),
        ({}, {"token": SECRET + "x"}, "does not match"),
        ({}, {"token": SECRET[:-1]}, "does not match"),
        (basic("u", "nope"), {}, "does not match"),
        ({"Authorization": "Basic %%%"}, {}, "has no shared secret"),
        ({"Authorization": f"Bearer {SECRET}"}, {}, "has no shared secret"),
    ],
)
def test_shared_secret_refused(headers: dict, query: dict, match: str) -> None:
    with pytest.raises(WebhookAuthError, match=match) as info:
        verify_shared_secret(SECRET, headers=headers, query=query, provider="acme")
    assert info.value.provider == "acme" and SECRET not in str(info.value)


SMSAPI_QUERY = {"MsgId": "A1", "status": "404", "idx": "k", "donedate": "1700000000"}


def test_smsapi_refuses_a_callback_without_the_secret() -> None:
    provider = Smsapi(token="tok-123456", webhook_secret=SECRET)
    with pytest.raises(WebhookAuthError, match=r"smsapi: webhook has no shared secret"):
        provider.parse_webhook(query=SMSAPI_QUERY)
    with pytest.raises(WebhookAuthError, match="does not match"):
        provider.parse_webhook(query={**SMSAPI_QUERY, "token": "guess"})
    (report,) = provider.parse_webhook(query={**SMSAPI_QUERY, "token": SECRET})
    assert report.status is DeliveryStatus.DELIVERED and "token" not in (report.raw or {})


def test_smsapi_without_a_secret_checks_nothing() -> None:
    assert len(Smsapi(token="tok-123456").parse_webhook(query=SMSAPI_QUERY)) == 1


CLICKATELL_BODY = (
    b'{"integrationId": "i1", "event": {"messageStatusUpdate": [{"messageId": "m1", "status": "DEVICE_ACK",'
    b' "statusCode": 5, "timestamp": 1700000000000, "channel": "sms", "to": "48500100200"}]}}'
)


def test_clickatell_refuses_a_forged_callback() -> None:
    provider = Clickatell(api_key="key-123456", webhook_secret=SECRET)
    with pytest.raises(WebhookAuthError, match="clickatell: webhook has no shared secret"):
        provider.parse_webhook(body=CLICKATELL_BODY)
    (report,) = provider.parse_webhook(body=CLICKATELL_BODY, headers=basic("clickatell", SECRET))
    assert report.message_id == "m1" and report.status is DeliveryStatus.DELIVERED


def report(event_id: str | None = "e1", status: str = "404", message_id: str = "m1") -> DeliveryReport:
    return DeliveryReport(
        provider="smsapi",
        message_id=message_id,
        status=DeliveryStatus.DELIVERED,
        vendor_status=status,
        event_id=event_id,
        timestamp=datetime(2026, 11, 22, tzinfo=timezone.utc),
    )


def test_replay_guard_drops_repeats_within_the_window() -> None:
    now = [0.0]
    guard = ReplayGuard(window=60, clock=lambda: now[0])
    assert guard.filter([report(), report("e2"), report()]) == [report(), report("e2")]
    assert guard.seen(report()) is True
    now[0] = 61.0
    assert guard.seen(report()) is False


def test_replay_guard_without_event_ids_uses_the_report_content() -> None:
    guard = ReplayGuard()
    assert guard.seen(report(None)) is False
    assert guard.seen(report(None)) is True
    assert guard.seen(report(None, status="405")) is False


def test_replay_guard_memory_is_bounded() -> None:
    guard = ReplayGuard(max_entries=100)
    for n in range(1000):
        guard.seen(report(f"e{n}"))
    assert len(guard) == 100
    assert guard.seen(report("e999")) is True and guard.seen(report("e0")) is False


def test_replay_guard_is_thread_safe() -> None:
    guard = ReplayGuard()
    fresh: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for n in range(500):
            if not guard.seen(report(f"e{n}")):
                with lock:
                    fresh.append(n)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(fresh) == list(range(500))


def test_hmac_hex() -> None:
    fox = b"The quick brown fox jumps over the lazy dog"
    assert hmac_hex("key", fox) == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert hmac_hex(b"key", fox, "sha512").startswith("b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb")


def test_webhook_header_names_are_case_insensitive() -> None:
    provider = Smsapi(token="tok-123456", webhook_secret=SECRET)
    auth = basic("u", SECRET)["Authorization"]
    for name in ("Authorization", "authorization", "AUTHORIZATION"):
        assert len(provider.parse_webhook(query=SMSAPI_QUERY, headers={name: auth})) == 1


# -- every vendor: a genuine callback passes, a forged one is refused ------------------------------


def _without(mapping: dict | None, *names: str) -> dict:
    return {k: v for k, v in (mapping or {}).items() if k.lower() not in names}


def _forge_mobizon(cb: dict) -> dict:
    import json

    event = json.loads(cb["body"])
    event["sign"] = "0" * 40
    return {**cb, "body": json.dumps(event).encode()}


def _tamper_body(cb: dict) -> dict:
    body = cb["body"] if isinstance(cb["body"], bytes) else cb["body"].encode()
    return {**cb, "body": body.replace(b"}", b' , "x": 1}', 1) if b'"x"' not in body else body + b" "}


VENDORS = {
    # name: (emulator options, provider options, make the genuine callback carry the secret, forgeries)
    "smsapi": ({}, {"webhook_secret": SECRET}, lambda cb: {**cb, "query": {**cb["query"], "token": SECRET}},
               [lambda cb: cb, lambda cb: {**cb, "query": {**cb["query"], "token": "guess"}}]),
    "clickatell": ({}, {"webhook_secret": SECRET}, lambda cb: {**cb, "headers": basic("clickatell", SECRET)},
                   [lambda cb: cb, lambda cb: {**cb, "headers": basic("clickatell", "guess")}]),
    "edna": ({"webhook_key": SECRET}, {}, lambda cb: cb,
             [lambda cb: {**cb, "headers": _without(cb.get("headers"), "x-api-key")},
              lambda cb: {**cb, "headers": {**_without(cb.get("headers"), "x-api-key"), "X-API-KEY": "guess"}}]),
    "mobizon": ({"webhook_secret": SECRET}, {}, lambda cb: cb, [_forge_mobizon]),
    "webex_connect": ({"webhook_secret": SECRET}, {}, lambda cb: cb,
                      [lambda cb: {**cb, "headers": _without(cb.get("headers"), "x-hub-signature")}, _tamper_body]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(VENDORS))
def test_forged_callbacks_are_refused_for_every_vendor(name: str) -> None:
    from omnisend import Client
    from omnisend.testing import get_emulator
    from tests.conftest import inprocess_client

    emulator_options, provider_options, genuine, forgeries = VENDORS[name]
    emulator = get_emulator(name)(**emulator_options)
    with inprocess_client(emulator, None, **provider_options) as client:
        assert isinstance(client, Client)
        result = client.send(emulator.demo_message("+48500100200", "hello"))
    assert result.message_id is not None
    callback = emulator.deliver(result.message_id)
    reports = client.provider.parse_webhook(**genuine(callback))
    assert [r.status for r in reports] == [DeliveryStatus.DELIVERED]
    for forge in forgeries:
        with pytest.raises(WebhookAuthError, match=name):
            client.provider.parse_webhook(**forge(callback))
