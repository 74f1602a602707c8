"""The base ``parse_webhook`` template and its declared parts, on a vendor made up for the test.

Each strategy is checked on its own (a genuine callback passes, each kind of forgery is refused),
then the template's order (authenticate, decode, events, one report each) and the declarative
``ReportFields`` reading (alternatives, joined texts, numbers from forms, failure-only reasons,
event statuses that read differently, reason codes that refine a failure).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx
import pytest

from omnisend import (
    ConfigurationError,
    DeliveryFailed,
    DeliveryStatus,
    Message,
    SendResult,
    Unsupported,
    ValidationError,
    WebhookAuthError,
)
from omnisend.providers._webhook import (
    BodyHmac,
    CallbackAuth,
    First,
    HeaderKey,
    Joined,
    ReportFields,
    Shapes,
    SharedSecret,
    SignedFields,
    SignedUrl,
    as_number,
)
from omnisend.providers.base import ErrorCode, ErrorTable, Provider, StatusEntry, StatusTable
from omnisend.webhooks import url_signature

SECRET = "hook-secret-5e1d"
_S = DeliveryStatus

STATUSES = StatusTable(
    {
        "ok": StatusEntry(_S.DELIVERED, "delivered"),
        "bad": StatusEntry(_S.UNDELIVERED, "not delivered", DeliveryFailed),
        "gone": StatusEntry(_S.CANCELLED, "cancelled"),
        "2": StatusEntry(_S.DELIVERED, "delivered (as a number)"),
    }
)
REASONS = ErrorTable({"e-full": ErrorCode(DeliveryFailed, "Handset memory full")})

FIELDS = ReportFields(
    message_id=First("ours", "theirs"),
    status="info.state",
    recipient="info.to",
    idempotency_key="ours",
    timestamp="info.at",
    error_code="info.code",
    error_message=Joined(" - ", "info.text", "info.more", skip_empty=True),
    event_id=Joined(":", "theirs", "info.state", "info.code"),
    time=lambda value: datetime.fromtimestamp(int(value), tz=timezone.utc) if value else None,
    error_table=REASONS,
    failure_codes_only=True,
)


class Acme(Provider):
    """A vendor of JSON callbacks, one event per list item; the strategy is given per instance."""

    name = "acme"
    display_name = "Acme"
    default_base_url = "https://acme.test"
    errors = ErrorTable({})
    statuses = STATUSES
    webhook_fields = FIELDS

    def __init__(self, check: CallbackAuth | None, secret: str | None = SECRET, **attributes: Any) -> None:
        self.webhook_check, self.webhook_secret = check, secret
        for name, value in attributes.items():
            setattr(self, name, value)
        super().__init__()

    def _secrets(self) -> tuple[str, ...]:
        return (self.webhook_secret,) if self.webhook_secret else ()

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        raise NotImplementedError

    def parse_response(
        self, response: httpx.Response, *, message: Message | None = None, idempotency_key: str | None = None
    ) -> SendResult:
        raise NotImplementedError


class FormAcme(Acme):
    webhook_format: ClassVar = "query"
    webhook_fields = ReportFields(message_id="id", status="state", error_code="code", numbers=True)


EVENT = {"ours": "k-1", "theirs": 77, "info": {"state": "ok", "to": "48500100200", "at": 1700000000}}
BODY = json.dumps([EVENT]).encode()


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"user:{password}".encode()).decode()}


# -- the strategies ------------------------------------------------------------------------------


def test_shared_secret_in_the_query_or_basic_auth_and_left_out_of_form_payloads() -> None:
    acme = FormAcme(SharedSecret(param="key"))
    query = {"id": "m1", "state": "2", "key": SECRET}
    (report,) = acme.parse_webhook(query=query)
    assert report.status is _S.DELIVERED and report.vendor_status == 2 and "key" not in (report.raw or {})
    assert acme.parse_webhook(query={"id": "m1", "state": "2"}, headers=basic(SECRET))
    with pytest.raises(WebhookAuthError, match="acme: webhook has no shared secret"):
        acme.parse_webhook(query={"id": "m1", "state": "2"})
    with pytest.raises(WebhookAuthError, match="does not match"):
        acme.parse_webhook(query={**query, "key": "guess"})


def test_a_url_given_whole_is_read_like_its_query() -> None:
    acme = FormAcme(SharedSecret(param="key"))
    (report,) = acme.parse_webhook(url=f"https://me.example/dlr?id=m1&state=2&key={SECRET}")
    assert report.message_id == "m1" and "key" not in (report.raw or {})
    with pytest.raises(WebhookAuthError, match="does not match"):
        acme.parse_webhook(url="https://me.example/dlr?id=m1&state=2&key=guess", query={"key": SECRET})


def test_header_key_is_required_when_configured_whatever_the_header_case() -> None:
    acme = Acme(HeaderKey("X-Hook-Key"))
    assert acme.parse_webhook(body=BODY, headers={"x-hook-key": f" {SECRET} "})
    with pytest.raises(WebhookAuthError, match="webhook key missing in X-Hook-Key: the callback is not from Acme"):
        acme.parse_webhook(body=BODY)
    with pytest.raises(WebhookAuthError, match="webhook key wrong in X-Hook-Key"):
        acme.parse_webhook(body=BODY, headers={"X-Hook-Key": "guess"})
    assert Acme(HeaderKey("X-Hook-Key"), secret=None).parse_webhook(body=BODY), "no key configured: not checked"


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
@pytest.mark.parametrize("prefixed", [True, False])
def test_body_hmac_reads_the_algorithm_from_the_prefix_or_the_length(algorithm: str, prefixed: bool) -> None:
    acme = Acme(BodyHmac("X-Sig", algorithms=("sha256", "sha1")))
    digest = hmac.new(SECRET.encode(), BODY, algorithm).hexdigest()
    (report,) = acme.parse_webhook(body=BODY, headers={"x-sig": f"{algorithm}={digest}" if prefixed else digest})
    assert report.message_id == "k-1"


@pytest.mark.parametrize(
    ("signature", "match"),
    [
        (None, "callback without X-Sig"),
        ("sha256=" + hmac.new(b"other", BODY, "sha256").hexdigest(), "X-Sig does not match the callback"),
        ("sha256=" + hmac.new(SECRET.encode(), BODY + b" ", "sha256").hexdigest(), "does not match"),
        ("md5=" + hmac.new(SECRET.encode(), BODY, "md5").hexdigest(), "does not match"),  # not a declared algorithm
        ("sha512=" + hmac.new(SECRET.encode(), BODY, "sha512").hexdigest(), "does not match"),
        ("md5=" + hmac.new(SECRET.encode(), BODY, "sha256").hexdigest(), "does not match"),  # prefix names no algorithm
    ],
    ids=["missing", "wrong-secret", "other-body", "undeclared-md5", "undeclared-sha512", "unknown-prefix"],
)
def test_body_hmac_refuses_forgeries_before_reading_the_body(signature: str | None, match: str) -> None:
    acme = Acme(BodyHmac("X-Sig", algorithms=("sha256", "sha1")))
    with pytest.raises(WebhookAuthError, match=match):
        acme.parse_webhook(body=BODY, headers={"X-Sig": signature} if signature else {})
    with pytest.raises(WebhookAuthError):
        acme.parse_webhook(body=b"not json", headers={"X-Sig": signature} if signature else {})


def _signed(event: dict[str, Any], secret: str = SECRET) -> bytes:
    text = f"{event.get('theirs')}|{event.get('ours')}|{secret}"
    return json.dumps({**event, "sig": hashlib.sha1(text.encode()).hexdigest()}).encode()


def test_signed_fields_are_read_from_the_decoded_payload() -> None:
    acme = Acme(SignedFields(("theirs", "ours"), signature="sig"))
    (report,) = acme.parse_webhook(body=_signed(EVENT))
    assert report.event_id == "77:ok:None"
    with pytest.raises(WebhookAuthError, match="webhook sig is missing or does not match"):
        acme.parse_webhook(body=_signed(EVENT, "other"))
    with pytest.raises(WebhookAuthError, match="sig is missing"):
        acme.parse_webhook(body=json.dumps(EVENT))
    with pytest.raises(ValidationError, match="not JSON"):  # the payload is decoded first: a 400, not a 401
        acme.parse_webhook(body=b"sig=1")


def test_signed_url_checks_the_url_called_and_needs_a_secret_and_a_url() -> None:
    url = "https://me.example/hook?ref=9"
    form = {"id": "m1", "state": "ok"}
    acme = Acme(SignedUrl("X-Signed", secret_hint="secret= (say where)"), webhook_format="form")
    headers = {"X-Signed": url_signature(SECRET, url, form.items())}
    body = "id=m1&state=ok"
    fields = ReportFields(message_id="id", status="state")
    acme.webhook_fields = fields
    (report,) = acme.parse_webhook(body=body, headers=headers, url=url)
    assert report.message_id == "m1"
    acme.webhook_url = "https://me.example/hook"
    assert acme.parse_webhook(body=body, headers=headers, query={"ref": "9"}), "webhook_url + query is the URL"
    with pytest.raises(WebhookAuthError, match=r"X-Signed does not match \(checked against https://me.example/hook\)"):
        acme.parse_webhook(body=body, headers=headers)
    with pytest.raises(
        ConfigurationError, match=r"checking X-Signed needs parse_webhook\(url=\.\.\.\) or Acme\(webhook_url"
    ):
        Acme(SignedUrl("X-Signed"), webhook_format="form").parse_webhook(body=body, headers=headers)
    with pytest.raises(ConfigurationError, match=r"needs secret= \(say where\)"):
        Acme(SignedUrl("X-Signed", secret_hint="secret= (say where)"), secret=None).parse_webhook(body=body, url=url)


# -- the template ---------------------------------------------------------------------------------


def test_a_provider_without_a_strategy_has_no_webhooks() -> None:
    with pytest.raises(Unsupported, match="Acme does not support delivery-report webhooks"):
        Acme(None).parse_webhook(body=BODY)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[]", "holds no status event"),
        (b"[1]", "holds no status event"),
    ],
)
def test_unreadable_payloads_are_validation_errors(body: bytes, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Acme(HeaderKey(), secret=None).parse_webhook(body=body)


def test_a_hook_that_fails_on_an_odd_shape_is_a_validation_error_not_a_crash() -> None:
    with pytest.raises(ValidationError, match="unexpected shape"):
        Acme(HeaderKey(), secret=None).parse_webhook(body=json.dumps({**EVENT, "info": {"state": "ok", "at": "x"}}))


def test_form_payload_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ValidationError, match="not UTF-8"):
        FormAcme(SharedSecret(), secret=None).parse_webhook(body=b"id=\xff")


def test_secrets_echoed_in_a_payload_are_masked_in_raw() -> None:
    acme = Acme(HeaderKey())
    (report,) = acme.parse_webhook(body=json.dumps([{**EVENT, "echo": SECRET}]), headers={"X-API-KEY": SECRET})
    assert SECRET not in repr(report.raw)


def test_only_events_of_the_declared_type_carry_reports() -> None:
    acme = Acme(HeaderKey(), secret=None, webhook_event_type=("kind", "status"))
    events = [{**EVENT, "kind": "status"}, {**EVENT, "kind": "inbound", "ours": "k-2"}, {**EVENT, "ours": "k-3"}]
    assert [r.message_id for r in acme.parse_webhook(body=json.dumps(events))] == ["k-1"]
    assert acme.parse_webhook(body=json.dumps({**EVENT, "kind": "inbound"})) == []
    assert len(Acme(HeaderKey(), secret=None).parse_webhook(body=json.dumps(events))) == 3  # none declared: all


def test_an_event_naming_no_message_id_beside_others_is_skipped_not_the_whole_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One unreadable event must not make the vendor re-deliver the whole batch forever: the others
    are read, the skip is logged; a callback whose every event names no id is still refused."""
    unnamed = {**EVENT, "ours": None, "theirs": None}
    with caplog.at_level("WARNING", logger="omnisend"):
        reports = Acme(HeaderKey(), secret=None).parse_webhook(body=json.dumps([unnamed, EVENT, unnamed]))
    assert [r.message_id for r in reports] == ["k-1"]
    assert [r.getMessage() for r in caplog.records] == [
        "acme: a callback event names no message id; its other events were read"
    ]
    with pytest.raises(ValidationError, match="names no message id") as info:
        Acme(HeaderKey(), secret=None).parse_webhook(body=json.dumps([unnamed, unnamed]))
    assert info.value.field == "webhook.message_id"


def test_an_event_naming_no_message_id_is_a_validation_error() -> None:
    for event in ({**EVENT, "ours": None, "theirs": None}, {"info": {"state": "ok"}}):
        with pytest.raises(ValidationError, match="the Acme event names no message id"):
            Acme(HeaderKey(), secret=None).parse_webhook(body=json.dumps(event))


# -- ReportFields ---------------------------------------------------------------------------------


def test_report_fields_read_paths_alternatives_and_times() -> None:
    (report,) = Acme(HeaderKey(), secret=None).parse_webhook(body=BODY)
    assert (report.message_id, report.idempotency_key, report.recipient) == ("k-1", "k-1", "+48500100200")
    assert report.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert report.event_id == "77:ok:None" and report.raw == EVENT and report.error is None
    (theirs,) = Acme(HeaderKey(), secret=None).parse_webhook(body=json.dumps({**EVENT, "ours": ""}))
    assert theirs.message_id == "77" and theirs.idempotency_key is None


def test_a_reason_code_is_read_for_failures_only_when_declared() -> None:
    acme = Acme(HeaderKey(), secret=None)
    info = {"to": "1", "code": "e-full", "text": "memory", "more": "retry later"}
    (failed,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {**info, "state": "bad"}}))
    assert failed.status is _S.UNDELIVERED and failed.error is not None
    assert (failed.error.error_class, failed.error.code, failed.error.message) == (
        "DeliveryFailed",
        "e-full",
        "memory - retry later",
    )
    (delivered,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {**info, "state": "ok"}}))
    assert delivered.status is _S.DELIVERED and delivered.error is None
    (terse,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {**info, "state": "bad", "more": None}}))
    assert terse.error is not None and terse.error.message == "memory", "missing parts are left out of the text"
    acme.webhook_fields = dataclasses.replace(FIELDS, failure_codes_only=False)
    (kept,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {**info, "state": "gone"}}))
    assert kept.status is _S.CANCELLED and kept.error is not None and kept.error.code == "e-full"


def test_event_statuses_and_reasons_refine_the_status() -> None:
    overrides = StatusTable({"gone": StatusEntry(_S.UNKNOWN, "not final here")})
    expiry = StatusTable({"e-late": StatusEntry(_S.EXPIRED, "too late")})
    acme = Acme(HeaderKey(), secret=None)
    acme.webhook_fields = ReportFields(
        message_id="ours", status="info.state", error_code="info.code", statuses=overrides, reasons=expiry
    )
    (gone,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {"state": "gone"}}))
    assert gone.status is _S.UNKNOWN and gone.vendor_status == "gone"
    (late,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {"state": "bad", "code": "e-late"}}))
    (other,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {"state": "bad", "code": "e-x"}}))
    assert (late.status, other.status) == (_S.EXPIRED, _S.UNDELIVERED)
    (delivered,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {"state": "ok", "code": "e-late"}}))
    assert delivered.status is _S.DELIVERED, "a reason refines failures only"


def test_form_payloads_read_digits_as_numbers_and_json_keeps_codes_as_text() -> None:
    (form,) = FormAcme(SharedSecret(), secret=None).parse_webhook(body="id=m1&state=2&code=30")
    assert form.vendor_status == 2 and form.status is _S.DELIVERED
    acme = Acme(HeaderKey(), secret=None)
    (text,) = acme.parse_webhook(body=json.dumps({**EVENT, "info": {"state": "bad", "code": 30}}))
    assert text.error is not None and text.error.code == "30"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("48500100200", "+48500100200"),
        ("+48 500-100-200", "+48500100200"),
        ("whatsapp:+48500100200", "+48500100200"),
        (48500100200, "+48500100200"),
        ("Shop", "Shop"),
        ("", None),
        (None, None),
    ],
)
def test_as_number(value: object, expected: str | None) -> None:
    assert as_number(value) == expected


def test_shapes_read_each_event_by_the_fields_of_its_shape() -> None:
    other = ReportFields(message_id="msg", status="state")
    acme = Acme(HeaderKey(), secret=None, webhook_fields=Shapes({"msg": other}, default=FIELDS))
    theirs, ours = acme.parse_webhook(body=json.dumps([{"msg": "m-9", "state": "bad"}, EVENT]))
    assert (theirs.message_id, theirs.status, theirs.recipient) == ("m-9", _S.UNDELIVERED, None)
    assert (ours.message_id, ours.status, ours.recipient) == ("k-1", _S.DELIVERED, "+48500100200")
