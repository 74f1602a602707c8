"""The public surface: names, __all__, the module rewrite, the registries."""

from __future__ import annotations

import importlib

import omnisend
from omnisend import providers, testing

DESIGN_NAMES = {
    "Client", "AsyncClient", "Message", "SendResult", "DeliveryReport", "DeliveryStatus", "RetryPolicy",
    "OmnisendError", "ConfigurationError", "ProviderError", "AuthError", "PermissionDenied",
    "InsufficientBalance", "RateLimited", "ValidationError", "InvalidRecipient", "TemplateError",
    "NotFound", "DuplicateMessage", "ServiceUnavailable", "TransportError", "DeliveryUnknown", "PartialFailure",
}  # fmt: skip


def test_all_is_sorted_and_complete() -> None:
    for name in omnisend.__all__:  # the clients and models load on first use
        getattr(omnisend, name)
    public = {name for name in vars(omnisend) if not name.startswith(("_", "@"))} - {  # "@py_*": pytest rewrites a plugin's package
        "annotations", "client", "errors", "models", "retry", "providers", "testing", "cli", "webhooks", "transports", "events", "routing",
        "celery", "stores", "otel",  # optional-extra submodules, imported by other tests
    }  # fmt: skip
    assert set(omnisend.__all__) - {"__version__"} == public
    assert omnisend.__all__ == sorted(omnisend.__all__, key=str.casefold) or omnisend.__all__ == sorted(omnisend.__all__)


def test_design_names_are_exported() -> None:
    assert DESIGN_NAMES <= set(omnisend.__all__)
    errors = importlib.import_module("omnisend.errors")
    for name in errors.__all__:
        assert getattr(errors, name) is getattr(omnisend, name)
    assert len(errors.__all__) == 20


def test_provider_classes_import_from_omnisend_providers() -> None:
    for name, spec in providers.PROVIDERS.items():
        module, cls = spec.split(":")
        assert module == name
        assert cls in providers.__all__


def test_emulators_are_registered_for_every_provider() -> None:
    assert set(testing.EMULATORS) == set(providers.PROVIDERS)


def test_py_typed_ships() -> None:
    from pathlib import Path

    assert (Path(omnisend.__file__).parent / "py.typed").exists()
