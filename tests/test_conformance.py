"""What every provider and its emulator must do, run against each adapter that exists.

A vendor module joins these tests by being registered in ``omnisend.providers.PROVIDERS`` and
``omnisend.testing.EMULATORS``; nothing here names a vendor code.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import httpx
import pytest

from omnisend import (
    Client,
    ConfigurationError,
    DeliveryStatus,
    DeliveryUnknown,
    InsufficientBalance,
    InvalidRecipient,
    OmnisendError,
    RetryPolicy,
    ValidationError,
)
from omnisend._docs import available, index, render
from omnisend.providers import PROVIDERS, Provider
from omnisend.testing import Emulator, Fault, get_emulator
from tests.conftest import inprocess_client

PROVIDER_CLASSES = available()
IDS = [cls.name for cls in PROVIDER_CLASSES]
DOCS = Path(__file__).parent.parent / "docs" / "providers"


def emulator_for(cls: type[Provider]) -> Emulator:
    return get_emulator(cls.name)()


@pytest.fixture(params=PROVIDER_CLASSES, ids=IDS)
def provider_cls(request: pytest.FixtureRequest) -> type[Provider]:
    cls: type[Provider] = request.param
    return cls


def test_registry_names_match_modules() -> None:
    for cls in PROVIDER_CLASSES:
        assert cls.__module__ == f"omnisend.providers.{cls.name}"
        assert PROVIDERS[cls.name].endswith(f":{cls.__name__}")


def test_missing_credential_is_a_configuration_error(provider_cls: type[Provider], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(provider_cls.credential_env, raising=False)
    with pytest.raises(ConfigurationError, match=rf"{provider_cls.name}: no .+ Pass {provider_cls.__name__}\("):
        provider_cls()
    assert provider_cls.credential_env.startswith("OMNISEND_")


def test_bad_base_url_is_a_configuration_error(provider_cls: type[Provider]) -> None:
    emulator = emulator_for(provider_cls)
    with pytest.raises(ConfigurationError, match="base_url must be an http"):
        emulator.make_provider("ftp://example")


def test_secret_is_in_no_repr(provider_cls: type[Provider]) -> None:
    emulator = emulator_for(provider_cls)
    provider = emulator.make_provider("http://emulator.test")
    secret = emulator.credentials[0]
    with Client(provider) as client:
        assert secret not in repr(provider) and secret not in repr(client) and secret not in str(vars(client))


def test_docs_page_is_fresh(provider_cls: type[Provider]) -> None:
    page = DOCS / f"{provider_cls.name}.md"
    assert page.read_text(encoding="utf-8") == render(provider_cls), "run `make docs`"


def test_every_table_row_is_documented(provider_cls: type[Provider]) -> None:
    page = render(provider_cls)
    for code in provider_cls.errors:
        assert f"| `{code}` |" in page
    for value in provider_cls.statuses:
        assert f"| `{value}` |" in page


def test_unknown_status_is_unknown(provider_cls: type[Provider]) -> None:
    assert provider_cls.statuses.normalize("SOMETHING-NEW-2031") is DeliveryStatus.UNKNOWN


@pytest.mark.parametrize("_", [0])
def test_every_error_row_builds_a_picklable_error(provider_cls: type[Provider], _: int) -> None:
    for code, row in provider_cls.errors.items():
        err = provider_cls.errors.error(code, provider=provider_cls.name)
        assert type(err) is row.exc and err.code == code
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is row.exc and back.code == code and str(back) == str(err)


# -- the emulator scenarios the demo shows, in-process --------------------------------------------


def test_send_invalid_recipient_balance_and_report(provider_cls: type[Provider], policy: RetryPolicy) -> None:
    emulator = emulator_for(provider_cls)
    with inprocess_client(emulator, policy) as client:
        result = client.send(emulator.demo_message("+48500100200", "hello"))
        assert result.provider == provider_cls.name and result.message_id and result.attempts == 1
        assert result.status in {DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.SCHEDULED}
        if emulator.refuses_invalid_number:
            with pytest.raises(InvalidRecipient, match=provider_cls.name) as bad:
                client.send(emulator.demo_message(emulator.invalid_number, "hello"))
            assert bad.value.retryable is False and bad.value.accepted is False
        else:  # taken, then a failed delivery report names the recipient as the reason
            taken = client.send(emulator.demo_message(emulator.invalid_number, "hello"))
            (failed,) = client.provider.parse_webhook(**emulator.deliver(str(taken.message_id)))
            assert failed.status.is_final and failed.error is not None
            assert failed.error.exception_class is InvalidRecipient
        emulator.balance = 0
        with pytest.raises(InsufficientBalance, match=provider_cls.name):
            client.send(emulator.demo_message("+48500100201", "hello"))
    reports = client.provider.parse_webhook(**emulator.deliver(result.message_id))
    assert [r.status for r in reports] == [DeliveryStatus.DELIVERED]
    assert reports[0].message_id == result.message_id and reports[0].provider == provider_cls.name
    failed = client.provider.parse_webhook(**emulator.deliver(result.message_id, delivered=False))
    assert failed[0].status.is_final and failed[0].status is not DeliveryStatus.DELIVERED


def test_rate_limit_is_retried_into_success(provider_cls: type[Provider], policy: RetryPolicy, sleeps) -> None:
    emulator = emulator_for(provider_cls)
    assert emulator.rate_limit_code is not None
    emulator.script(Fault.vendor_error(emulator.rate_limit_code))
    with inprocess_client(emulator, policy) as client:
        result = client.send(emulator.demo_message("+48500100200", "hello"))
    assert result.attempts == 2 and len(sleeps) == 1 and emulator.accepted_count == 1


@pytest.mark.parametrize("fault", [Fault.refuse(), Fault.http_error(503)], ids=["refused", "503"])
def test_faults_where_nothing_was_sent_are_retried(provider_cls: type[Provider], policy: RetryPolicy, fault: Fault) -> None:
    emulator = emulator_for(provider_cls)
    emulator.script(fault)
    with inprocess_client(emulator, policy) as client:
        result = client.send(emulator.demo_message("+48500100200", "hello"))
    assert result.attempts == 2 and emulator.accepted_count == 1


@pytest.mark.parametrize(
    "fault",
    [Fault.drop_after_accept(), Fault.truncated(), Fault.slow(5.0), Fault.http_error(500, accept=True)],
    ids=["drop_after_accept", "truncated", "slow", "500_after_accept"],
)
def test_ambiguous_faults_never_send_twice(provider_cls: type[Provider], policy: RetryPolicy, fault: Fault) -> None:
    emulator = emulator_for(provider_cls)
    emulator.script(fault)
    with inprocess_client(emulator, policy) as client:
        client.timeout = None
        message = emulator.demo_message("+48500100200", "hello")
        if provider_cls.deduplicates:
            result = client.send(message, timeout=httpx.Timeout(10, read=0.05))
            assert result.attempts == 2
        else:
            with pytest.raises(DeliveryUnknown, match=provider_cls.name) as info:
                client.send(message, timeout=httpx.Timeout(10, read=0.05))
            assert info.value.attempts == 1 and info.value.idempotency_key and info.value.retryable is False
    assert emulator.accepted_count == 1 and emulator.duplicates() == 0


def test_no_secret_in_any_debug_log_record(provider_cls: type[Provider], policy: RetryPolicy, caplog: pytest.LogCaptureFixture) -> None:
    emulator = emulator_for(provider_cls)
    secret = emulator.credentials[0]
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "omnisend"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    emulator.script(Fault.http_error(503))
    with inprocess_client(emulator, policy) as client:
        result = client.send(emulator.demo_message("+48500100200", "hello"))
        assert result.message_id is not None
        emulator.balance = 0
        with pytest.raises(OmnisendError, match=provider_cls.name) as info:
            client.send(emulator.demo_message("+48500100201", "hello"))
    assert caplog.records, "expected log records at DEBUG"
    for record in caplog.records:
        assert secret not in record.getMessage(), record.name
    for text in (str(info.value), repr(info.value), repr(info.value.raw), repr(result), repr(result.raw)):
        assert secret not in text


def test_an_sms_over_the_vendor_limit_is_refused_before_any_request(provider_cls: type[Provider], policy: RetryPolicy) -> None:
    if "sms" not in provider_cls.channels:
        pytest.skip(f"{provider_cls.name} sends no SMS")
    emulator = emulator_for(provider_cls)
    long_text = "x" * 10_000  # 66 GSM-7 parts: over every vendor's limit
    with inprocess_client(emulator, policy) as client, pytest.raises(ValidationError, match=r"SMS parts|at most|too long|limit") as info:
        client.send(emulator.demo_message("+48500100200", long_text))
    assert info.value.code is None and info.value.field == "text"
    assert emulator.requests == []


def test_feature_matrix_is_fresh() -> None:
    assert (DOCS / "index.md").read_text(encoding="utf-8") == index(PROVIDER_CLASSES), "run `make docs`"
    assert len(PROVIDER_CLASSES) == len(PROVIDERS)


def test_status_lookup_flag_matches_behaviour(provider_cls: type[Provider], policy: RetryPolicy) -> None:
    emulator = emulator_for(provider_cls)
    with inprocess_client(emulator, policy) as client:
        result = client.send(emulator.demo_message("+48500100200", "hello"))
        assert result.message_id is not None
        if provider_cls.status_lookup:
            assert client.get_status(result.message_id).message_id == result.message_id
        else:
            requests_before = len(emulator.requests)
            with pytest.raises(ValidationError, match="status lookups"):
                client.get_status(result.message_id)
            assert len(emulator.requests) == requests_before
