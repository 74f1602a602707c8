"""Declared constructor settings (``omnisend.providers._settings``): the checks every adapter shares
(choices, URLs, credentials, callback secrets, ``secret_attributes``) and the mechanism itself — the
generated ``__init__`` and its signature, environment fallbacks, the host chosen by settings, subclasses."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from omnisend import ConfigurationError
from omnisend.providers import Edna, Smsapi, Twilio, WebexConnect
from omnisend.providers.base import (
    BaseURL,
    Converted,
    Credential,
    ErrorTable,
    Hosts,
    Provider,
    StatusTable,
    setting,
)

ROOT = Path(__file__).resolve().parent.parent

SID = "AC" + "0" * 31 + "1"


def test_a_choice_names_the_allowed_values_in_their_order_or_sorted() -> None:
    with pytest.raises(ConfigurationError, match=r"^edna: priority must be one of realtime, high, normal, low, got 'urgent'$"):
        Edna(api_key="k", priority="urgent")
    with pytest.raises(ConfigurationError, match=r"^webex_connect: region must be one of au, ca, eu, in, uk, us, us1, got 'mars'$"):
        WebexConnect(service_key="k", region="mars")
    assert Smsapi(token="t", region="com").region == "com"


@pytest.mark.parametrize("url", ["http://me.example/dlr", "https://", "me.example/dlr", ""])
def test_an_https_only_url_setting_is_checked(url: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^webex_connect: notify_url must be an https URL, got '{url}'$"):
        WebexConnect(service_key="k", notify_url=url)
    assert WebexConnect(service_key="k", notify_url="https://me.example/dlr").notify_url == "https://me.example/dlr"


@pytest.mark.parametrize("url", ["ftp://me.example/dlr", "https://", "/dlr"])
def test_an_http_url_setting_is_checked(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^twilio: webhook_url must be an http\(s\) URL"):
        Twilio(account_sid=SID, auth_token="tok", webhook_url=url)
    with pytest.raises(ConfigurationError, match=r"^smsapi: base_url must be an http\(s\) URL"):
        Smsapi(token="t", base_url=url)


def test_secret_attributes_are_the_secrets_that_are_set() -> None:
    assert Smsapi(token="tok-1")._secrets() == ("tok-1",)
    assert Smsapi(token="tok-1", webhook_secret="hook-1")._secrets() == ("tok-1", "hook-1")
    assert set(WebexConnect(bearer_token="jwt-1", webhook_secret="hook-2")._secrets()) == {"jwt-1", "hook-2"}
    assert Edna(api_key="key-1", webhook_key=" hook-3 ")._secrets() == ("key-1", "hook-3")
    shown = repr(Edna(api_key="key-1", webhook_key="hook-3").vendor_error("error-system", vendor_message="hook-3 key-1"))
    assert "hook-3" not in shown and "key-1" not in shown


# -- the mechanism: settings declared on the class (``omnisend.providers._settings``) -----------------

HOSTS = {("v1", "eu"): "https://eu.acme.test", ("v1", "us"): "https://us.acme.test", ("v2", "eu"): "https://v2.acme.test"}


def _cascade(value: object) -> dict[str, int]:
    return {} if value is None else {"sms": int(value)}  # type: ignore[call-overload]


class Acme(Provider):
    """A provider declaring one setting of each kind (what the base class generates ``__init__`` from)."""

    name = "acme"
    display_name = "Acme"
    errors = ErrorTable({})
    statuses = StatusTable({})
    credential_env = "ACME_TEST_KEY"
    hosts = Hosts(HOSTS, "api", "region")

    _key: Credential = setting(default=None, alias="key", credential=True)
    _jwt: str | None = setting(default=None, alias="jwt", credential=True, instead_of="key")
    account: str | None = setting(
        default=None, credential=True, required=False, env="ACME_TEST_ACCOUNT", pattern="AC[0-9]{4}",
        rule="'AC' and 4 digits", secret=False, repr=True,
    )  # fmt: skip
    api: Literal["v1", "v2"] = setting(default="v1", repr=True)
    region: str = setting(default="eu", choices=("eu", "us"))
    base_url: BaseURL = setting(default=None)
    webhook_secret: str | None = setting(default=None, alias="hook_key", callback_secret=True)
    notify_url: str | None = setting(default=None, schemes=("https",))
    window: timedelta = setting(default=timedelta(days=1), positive=True)
    batch: int = setting(default=10, between=(1, 50))
    cascades: Converted[int | None, dict[str, int]] = setting(default=None, alias="cascade", convert=_cascade)
    plain: bool = setting(default=False)

    def __post_init__(self) -> None:
        self.derived = f"{self.api}/{self.region}/{self.cascades}"

    def build_request(self, message: Any, *, idempotency_key: str) -> httpx.Request:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def _no_acme_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_TEST_KEY", raising=False)
    monkeypatch.delenv("ACME_TEST_ACCOUNT", raising=False)


def test_the_generated_signature_is_the_declared_one() -> None:
    signature = inspect.signature(Acme)
    assert list(signature.parameters) == [
        "key", "jwt", "account", "api", "region", "base_url", "hook_key", "notify_url", "window", "batch", "cascade", "plain",
    ]  # fmt: skip
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())
    assert signature.parameters["key"].default is None and signature.parameters["window"].default == timedelta(days=1)
    hints = typing.get_type_hints(Acme.__init__)
    assert hints["key"] == str | None and hints["cascade"] == int | None  # what the constructor takes
    assert hints["api"] == Literal["v1", "v2"] and hints["plain"] is bool and hints["base_url"] == str | None
    assert Acme.__init__.__qualname__ == "Acme.__init__"
    # the base class's own annotated attributes and class variables are not settings
    assert not {"max_recipients", "split_batches", "webhook_check", "webhook_url", "webhook_fields", "name"} & set(
        signature.parameters
    )
    with pytest.raises(TypeError, match=r"Acme\(\) got an unexpected keyword argument 'max_recipients'"):
        Acme(key="k", max_recipients=3)
    with pytest.raises(TypeError, match="positional"):
        Acme("k")  # type: ignore[misc]


def test_values_are_stored_converted_and_derived_then_the_host_is_chosen() -> None:
    acme = Acme(key=" k-1 ", api="v1", region="us", cascade=7, account="AC1234")
    assert acme._key == "k-1" and acme._jwt is None and acme.account == "AC1234"
    assert acme.cascades == {"sms": 7} and acme.derived == "v1/us/{'sms': 7}"
    assert acme.base_url == "https://us.acme.test" and Acme.default_base_url == "https://eu.acme.test"
    assert Acme(key="k", base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"
    assert Acme.batch == 10 and Acme(key="k", batch=50).batch == 50  # the class keeps the default, as dataclasses do


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"^acme: no key\. Pass Acme\(key=\.\.\.\) or set ACME_TEST_KEY\.$"),
        ({"key": "  "}, r"^acme: no key\. Pass"),
        ({"key": "k\u00e9y"}, r"^acme: key contains a non-ASCII or control character"),
        ({"jwt": ""}, r"^acme: no jwt\. Pass Acme\(jwt=\.\.\.\)\.$"),
        ({"key": "k", "account": "AC12"}, r"^acme: account must be 'AC' and 4 digits$"),
        ({"key": "k", "account": " "}, r"^acme: account is empty or contains a non-ASCII or control character"),
        ({"key": "k", "region": "mars"}, r"^acme: region must be one of eu, us, got 'mars'$"),
        ({"key": "k", "api": "v2", "region": "us"}, r"^acme: api must be 'v1' or 'v2' and region 'eu' or 'us', got 'v2', 'us'$"),
        ({"key": "k", "hook_key": " "}, r"^acme: hook_key is empty; pass the secret, or leave it out"),
        ({"key": "k", "notify_url": "http://me.test/dlr"}, r"^acme: notify_url must be an https URL, got 'http://me.test/dlr'$"),
        ({"key": "k", "base_url": "ftp://x"}, r"^acme: base_url must be an http\(s\) URL, got 'ftp://x'$"),
        ({"key": "k", "window": timedelta(0)}, r"^acme: window must be a positive timedelta, got datetime\.timedelta\(0\)$"),
        ({"key": "k", "window": 3}, r"^acme: window must be a positive timedelta, got 3$"),
        ({"key": "k", "batch": 0}, r"^acme: batch must be an int from 1 to 50, got 0$"),
        ({"key": "k", "batch": True}, r"^acme: batch must be an int from 1 to 50, got True$"),
        ({"key": "k", "batch": 51}, r"^acme: batch must be an int from 1 to 50, got 51$"),
    ],
)
def test_each_declared_check_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        Acme(**kwargs)
    assert info.value.provider == "acme"


def test_credentials_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_TEST_KEY", " from-env ")
    monkeypatch.setenv("ACME_TEST_ACCOUNT", "AC0042")
    acme = Acme()
    assert acme._key == "from-env" and acme.account == "AC0042"
    assert Acme(key="given")._key == "given"  # the argument wins
    # an alternative credential replaces the other, which is then neither read nor required
    with_jwt = Acme(jwt="jwt-1")
    assert with_jwt._jwt == "jwt-1" and with_jwt._key is None


def test_secret_settings_are_masked_and_never_shown() -> None:
    assert Acme.secret_attributes == ("_key", "_jwt", "webhook_secret")
    acme = Acme(key="key-0001", hook_key="hook-0002", account="AC1234")
    assert acme._secrets() == ("key-0001", "hook-0002")
    assert repr(acme) == "Acme(account='AC1234', api='v1', base_url='https://eu.acme.test')"
    shown = repr(acme.vendor_error("x", vendor_message="bad key-0001 and hook-0002", raw={"k": "key-0001"}))
    assert "key-0001" not in shown and "hook-0002" not in shown
    with pytest.raises(TypeError, match="cannot be shown in repr"):
        setting(default=None, credential=True, repr=True)


def test_subclasses_inherit_and_extend_the_settings() -> None:
    class Extended(Acme):
        extra: int = setting(default=1, between=(1, 9))

    class Same(Acme):
        def build_request(self, message: Any, *, idempotency_key: str) -> httpx.Request:
            raise NotImplementedError

    assert list(inspect.signature(Extended).parameters)[-1] == "extra"
    extended = Extended(key="k", region="us", extra=2)
    assert extended.extra == 2 and extended.base_url == "https://us.acme.test" and extended.derived == "v1/us/{}"
    assert Extended.secret_attributes == Acme.secret_attributes
    assert inspect.signature(Same) == inspect.signature(Acme) and Same(key="k", batch=3).batch == 3
    with pytest.raises(ConfigurationError, match="extra must be an int from 1 to 9"):
        Extended(key="k", extra=10)


def test_a_provider_with_its_own_init_and_no_declarations_keeps_it() -> None:
    class Own(Provider):
        name = "own"
        display_name = "Own"
        default_base_url = "https://own.test"
        errors = ErrorTable({})
        statuses = StatusTable({})

        def __init__(self, secret: str) -> None:
            self.webhook_secret = secret
            super().__init__()

        def build_request(self, message: Any, *, idempotency_key: str) -> httpx.Request:
            raise NotImplementedError

    own = Own("s-1")
    assert own.webhook_secret == "s-1" and own.base_url == "https://own.test"
    assert list(inspect.signature(Own).parameters) == ["secret"]


def test_a_provider_declaring_nothing_takes_base_url_only() -> None:
    class Bare(Provider):
        name = "bare"
        display_name = "Bare"
        default_base_url = "https://bare.test"
        errors = ErrorTable({})
        statuses = StatusTable({})

        def build_request(self, message: Any, *, idempotency_key: str) -> httpx.Request:
            raise NotImplementedError

    assert str(inspect.signature(Bare)) == "(*, base_url: str | None = None) -> None"
    assert Bare().base_url == "https://bare.test" and Bare(base_url="http://x.test/").base_url == "http://x.test"
    assert repr(Bare()) == "Bare(base_url='https://bare.test')" and Bare.secret_attributes == ()
    with pytest.raises(TypeError, match=r"Bare\(\) got an unexpected keyword argument 'token'"):
        Bare(token="t")  # type: ignore[call-arg]


def test_a_declaration_without_an_annotation_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Bad\.region = setting\(\.\.\.\) needs an annotation"):

        class Bad(Provider):
            region = setting(default="eu")


def test_the_adapters_signatures_are_their_declared_settings() -> None:
    assert str(inspect.signature(Smsapi)) == (
        "(*, token: str | None = None, region: str = 'pl', base_url: str | None = None, test: bool = False, "
        "webhook_secret: str | None = None) -> None"
    )
    assert list(inspect.signature(Edna).parameters) == [
        "api_key", "api", "region", "base_url", "cascade_id", "subject", "priority", "templates", "webhook_key",
        "webhook_key_header", "status_window",
    ]  # fmt: skip
    assert typing.get_type_hints(Edna.__init__)["cascade_id"] == int | Mapping[str, int] | None


MYPY_SNIPPET = """
from omnisend.providers import Edna, Smsapi, Twilio, WebexConnect

Edna(api_key="k", api="im", cascade_id={"sms": 1})
Smsapi()
WebexConnect(bearer_token=None, max_destinations=10)
key: str = Edna(api_key="k")._api_key + Twilio(api_key_sid=None, messaging_service_sid=None).account_sid
Edna(api_key=1)
Edna(api="rest")
Smsapi(tokn="t")
"""


@pytest.mark.slow
def test_type_checkers_see_the_generated_signature(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "uses_settings.py"
    snippet.write_text(MYPY_SNIPPET, encoding="utf-8")
    out, _, status = mypy_api.run([str(snippet), "--strict", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache")])
    errors = sorted(int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line)
    assert errors == [8, 9, 10], out  # exactly the three bad calls
    assert 'incompatible type "int"; expected "str | None"' in out and 'Unexpected keyword argument "tokn"' in out


PICKLED = {
    "smsapi": {"token": "t0ken"},
    "clickatell": {"api_key": "k3y"},
    "edna": {"api_key": "k3y", "api": "im", "subject": "Shop", "webhook_key": "wh"},
    "mobizon": {"api_key": "k3y", "webhook_secret": "wh", "account_timezone": timezone(timedelta(hours=5))},
    "webex_connect": {"service_key": "k3y", "webhook_secret": "wh"},
    "twilio": {"account_sid": "AC" + "a" * 32, "auth_token": "t0ken"},
}


@pytest.mark.parametrize("name", sorted(PICKLED))
def test_every_adapter_pickles_and_copies_with_its_settings(name: str) -> None:
    """A provider crosses processes (multiprocessing, Celery's pickle serializer) and is copied by
    routers: every setting, derived reader (a zone-bound time parser) and secret survives."""
    import copy
    import pickle

    from omnisend.providers import get_provider

    provider = get_provider(name)(**PICKLED[name])
    for twin in (pickle.loads(pickle.dumps(provider)), copy.deepcopy(provider)):
        assert type(twin) is type(provider) and repr(twin) == repr(provider)
        assert twin._secrets() == provider._secrets() and twin.base_url == provider.base_url
        assert vars(twin).keys() == vars(provider).keys()
