"""The exception tree: shape, attributes, str/repr format, pickling, no secrets."""

from __future__ import annotations

import pickle

import pytest

import omnisend
from omnisend import errors
from omnisend.errors import (
    AuthError,
    ConfigurationError,
    DeliveryUnknown,
    DuplicateMessage,
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
    WebhookAuthError,
)
from omnisend.models import DeliveryStatus, RecipientResult, SendResult

TREE = {
    ConfigurationError: OmnisendError,
    ProviderError: OmnisendError,
    AuthError: ProviderError,
    PermissionDenied: ProviderError,
    InsufficientBalance: ProviderError,
    RateLimited: ProviderError,
    ValidationError: ProviderError,
    InvalidRecipient: ValidationError,
    TemplateError: ValidationError,
    NotFound: ProviderError,
    DuplicateMessage: ProviderError,
    ServiceUnavailable: ProviderError,
    TransportError: OmnisendError,
    DeliveryUnknown: TransportError,
    PartialFailure: OmnisendError,
    WebhookAuthError: AuthError,
}
ALL = [OmnisendError, *TREE]


@pytest.mark.parametrize(("cls", "parent"), list(TREE.items()), ids=[c.__name__ for c in TREE])
def test_tree_shape(cls: type, parent: type) -> None:
    assert cls.__bases__[0] is parent
    assert cls.__doc__ and "\n" not in cls.__doc__.strip()[:20]


def test_tree_is_drawn_in_the_module_docstring() -> None:
    for cls in ALL:
        assert cls.__name__ in (errors.__doc__ or "")


@pytest.mark.parametrize("cls", ALL, ids=[c.__name__ for c in ALL])
def test_every_class_pickles_with_its_attributes(cls: type[OmnisendError]) -> None:
    err = cls(
        "boom",
        provider="smsapi",
        code=103,
        vendor_message="Insufficient credits",
        http_status=200,
        raw={"error": 103},
        idempotency_key="key-1",
        attempts=2,
        request_id="rq",
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err) == "smsapi: boom (code 103, HTTP 200)"
    for name in ("provider", "code", "vendor_message", "http_status", "raw", "retryable", "accepted", "idempotency_key", "attempts"):
        assert getattr(back, name) == getattr(err, name), name
    assert back.args == ("boom",)


def test_rate_limited_pickles_retry_after() -> None:
    back = pickle.loads(pickle.dumps(RateLimited("slow down", provider="x", retry_after=2.5)))
    assert back.retry_after == 2.5 and back.retryable is True


def test_partial_failure_pickles_its_result() -> None:
    failed = RecipientResult("+48500100201", None, DeliveryStatus.REJECTED, InvalidRecipient("bad", code=13))
    result = SendResult("smsapi", "1", DeliveryStatus.QUEUED, (RecipientResult("+48500100200", "1", DeliveryStatus.QUEUED), failed))
    with pytest.raises(PartialFailure, match="1 of 2 recipients rejected") as info:
        result.raise_for_failures()
    back = pickle.loads(pickle.dumps(info.value))
    (restored,) = back.failed
    assert (restored.to, restored.status, type(restored.error), restored.error.code) == (
        failed.to,
        DeliveryStatus.REJECTED,
        InvalidRecipient,
        13,
    )
    assert back.accepted is True


@pytest.mark.parametrize(
    ("cls", "retryable", "accepted"),
    [
        (AuthError, False, False),
        (InsufficientBalance, False, False),
        (ValidationError, False, False),
        (PermissionDenied, False, False),
        (NotFound, False, False),
        (RateLimited, True, False),
        (ServiceUnavailable, True, False),
        (TransportError, True, False),
        (DeliveryUnknown, False, None),
    ],
)
def test_retryability_follows_the_class(cls: type[OmnisendError], retryable: bool, accepted: bool | None) -> None:
    err = cls()
    assert err.retryable is retryable and err.accepted is accepted


def test_str_without_code_or_status() -> None:
    assert str(AuthError(provider="edna")) == "edna: authentication failed"
    assert str(ValidationError("text is empty", field="text")) == "text is empty"
    assert str(OmnisendError()) == "omnisend error"


def test_repr_shows_the_essentials() -> None:
    err = InsufficientBalance("no credit", provider="smsapi", code=103, http_status=200)
    assert repr(err) == "InsufficientBalance('no credit', provider='smsapi', code=103, http_status=200, retryable=False, accepted=False)"


def test_public_module_name() -> None:
    assert AuthError.__module__ == "omnisend"
    assert omnisend.AuthError is AuthError


def test_builtin_bases_for_value_errors() -> None:
    assert issubclass(ValidationError, ValueError) and issubclass(ConfigurationError, ValueError)


def test_delivery_unknown_from_an_error_keeps_everything_and_the_cause() -> None:
    cause = ServiceUnavailable("boom", provider="clickatell", code=18, vendor_message="v", http_status=500, raw={"a": 1}, idempotency_key="k", attempts=2)
    unknown = DeliveryUnknown.from_error(cause, "lost", retryable=False)
    assert (unknown.code, unknown.vendor_message, unknown.http_status, unknown.raw, unknown.idempotency_key, unknown.attempts) == (18, "v", 500, {"a": 1}, "k", 2)
    assert unknown.__cause__ is cause and unknown.accepted is None and unknown.retryable is False
    assert str(unknown) == "clickatell: lost (code 18, HTTP 500)"
