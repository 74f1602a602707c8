"""Configuration by URL: omnisend.from_url, Client.from_url / from_env, for every vendor."""

from __future__ import annotations

import pickle
from datetime import timezone
from zoneinfo import ZoneInfo

import pytest

import omnisend
from omnisend import AsyncClient, Client, ConfigurationError, Message
from omnisend.providers import PROVIDERS, Clickatell, Edna, Mobizon, Smsapi, WebexConnect
from omnisend.testing import EMULATORS, get_emulator

SECRET = "s3cr3t-T0KEN"


@pytest.mark.parametrize(
    ("url", "cls", "credential"),
    [
        ("smsapi://TOKEN@default", Smsapi, ("_token", "TOKEN")),
        ("clickatell://KEY@default", Clickatell, ("_api_key", "KEY")),
        ("edna://KEY@default?cascade_id=101", Edna, ("_api_key", "KEY")),
        ("mobizon://KEY@default", Mobizon, ("_key", "KEY")),
        ("webex-connect://KEY@default", WebexConnect, ("_key", "KEY")),
        ("webex_connect://KEY@default", WebexConnect, ("_key", "KEY")),
        ("SMSAPI://TOKEN@default", Smsapi, ("_token", "TOKEN")),
    ],
)
def test_each_vendor_has_a_scheme(url: str, cls: type, credential: tuple[str, str]) -> None:
    provider = omnisend.from_url(url)
    assert type(provider) is cls
    assert getattr(provider, credential[0]) == credential[1]
    assert provider.base_url == cls(**{_arg(cls): "x"}).base_url  # default means the vendor's own host


def _arg(cls: type) -> str:
    from omnisend._url import URL_CREDENTIALS

    return URL_CREDENTIALS[cls.name][0]


def test_every_registered_provider_has_a_url_credential_entry() -> None:
    from omnisend._url import URL_CREDENTIALS

    assert set(PROVIDERS) <= set(URL_CREDENTIALS)


def test_host_sets_base_url_and_tls_0_means_http() -> None:
    assert omnisend.from_url("smsapi://t@127.0.0.1:8080?tls=0").base_url == "http://127.0.0.1:8080"
    assert omnisend.from_url("smsapi://t@api.smsapi.com").base_url == "https://api.smsapi.com"
    assert omnisend.from_url("mobizon://k@api.mobizon.uz/").base_url == "https://api.mobizon.uz"
    assert omnisend.from_url("clickatell://k@proxy.local:8443/clickatell?tls=1").base_url == "https://proxy.local:8443/clickatell"


def test_credentials_are_percent_decoded() -> None:
    provider = omnisend.from_url("smsapi://a%40b%3Ac%2Fd%3F%25@default")
    assert isinstance(provider, Smsapi)
    assert provider._token == "a@b:c/d?%"


def test_query_items_are_typed_provider_options() -> None:
    smsapi = omnisend.from_url("smsapi://t@default?region=com&test=1&webhook_secret=whs")
    assert isinstance(smsapi, Smsapi)
    assert (smsapi.region, smsapi.test, smsapi.webhook_secret) == ("com", True, "whs")
    assert smsapi.base_url == "https://api.smsapi.com"
    edna = omnisend.from_url("edna://k@default?cascade_id=sms:101,whatsapp:102&api=im&priority=high")
    assert isinstance(edna, Edna)
    assert edna.cascades == {"sms": 101, "whatsapp": 102} and edna.api == "im" and edna.priority == "high"
    edna_one = omnisend.from_url("edna://k@default?cascade_id=101")
    assert isinstance(edna_one, Edna)
    assert set(edna_one.cascades.values()) == {101}
    mobizon = omnisend.from_url("mobizon://k@default?account_timezone=Asia/Almaty&follow_domain_redirect=false")
    assert isinstance(mobizon, Mobizon)
    assert mobizon.account_timezone == ZoneInfo("Asia/Almaty") and mobizon.follow_domain_redirect is False
    assert omnisend.from_url("mobizon://k@default").account_timezone is timezone.utc  # type: ignore[attr-defined]
    webex = omnisend.from_url("webex-connect://k@default?region=eu&whatsapp_app_id=app1")
    assert isinstance(webex, WebexConnect)
    assert webex.base_url == "https://api.eu.webexconnect.io" and webex.whatsapp_app_id == "app1"


def test_missing_credential_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_SMSAPI_TOKEN", "from-env")
    assert omnisend.from_url("smsapi://default")._token == "from-env"  # type: ignore[attr-defined]
    monkeypatch.delenv("OMNISEND_SMSAPI_TOKEN")
    with pytest.raises(ConfigurationError, match=r"no token\. Pass Smsapi\(token=\.\.\.\) or set OMNISEND_SMSAPI_TOKEN"):
        omnisend.from_url("smsapi://default")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        (f"smsapi://{SECRET}@default?bogus=1", r"unknown option 'bogus' for smsapi \(options: region, test, webhook_secret"),
        (f"smsapi:/{SECRET}@default", r"expected SCHEME://CREDENTIAL@HOST"),
        (f"{SECRET}", r"expected SCHEME://CREDENTIAL@HOST"),
        (f"nosuch://{SECRET}@default", r"unknown provider scheme 'nosuch'; known: smsapi, clickatell, edna, mobizon, webex-connect"),
        (f"smsapi://{SECRET}@", r"no host: write @default"),
        (f"smsapi://{SECRET}@default?test=maybe", r"test must be 1 or 0 \(true or false\), got 'maybe'"),
        (f"smsapi://{SECRET}@default?region=xx", r"region must be one of"),
        (f"smsapi://{SECRET}@default?token=abc", r"token goes in the URL itself"),
        (f"smsapi://{SECRET}@default?tls=0", r"tls= needs a host"),
        (f"smsapi://{SECRET}@default?webhook_secret={SECRET}&webhook_secret=x", r"webhook_secret=\*\*\*.*webhook_secret is given twice"),
        (f"edna://{SECRET}@default?cascade_id=abc", r"cascade_id must be one of: int, Mapping; got 'abc'"),
        (f"mobizon://{SECRET}@default?account_timezone=Mars/Base", r"IANA time zone"),
        (f"smsapi://{SECRET}@default?weight=3", r"weight only make sense inside failover"),
        (f"smsapi://{SECRET}@default?name=%ZZ&&", r"NAME=VALUE"),
        (f"smsapi://{SECRET}@default/api", r"a path needs a host"),
        (f"smsapi://{SECRET}@-bad host-", r"bad host .-bad host-.: expected default"),
        (f"nosuchrouter(smsapi://{SECRET}@default)", r"unknown router 'nosuchrouter'"),
        (f"failover(smsapi://{SECRET}@default", r"failover\( is not closed with \)"),
        ("failover()", r"failover\(\) needs at least one provider URL"),
        (f"failover(smsapi://{SECRET}@default) extra", r"unexpected text after the closing parenthesis"),
        (f"roundrobin(smsapi://{SECRET}@default?weight=-1)", r"weight must be a finite number >= 0"),
        (f"roundrobin(smsapi://{SECRET}@default?weight=x)", r"weight must be a number, got 'x'"),
        (f"failover(nosuch://{SECRET}@default)", r"unknown provider scheme 'nosuch'"),
        (f"failover(smsapi://{SECRET}@default?name=a smsapi://{SECRET}2@default?name=a)", r"name"),
    ],
)
def test_bad_urls_are_configuration_errors_without_the_secret(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        omnisend.from_url(url)
    for text in (str(caught.value), repr(caught.value), repr(pickle.loads(pickle.dumps(caught.value)))):
        assert SECRET not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_non_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a str, got int"):
        omnisend.from_url(42)  # type: ignore[arg-type]


def test_client_from_url_passes_client_options() -> None:
    with Client.from_url("smsapi://t@default", retry=None, timeout=3.0) as client:
        assert isinstance(client.provider, Smsapi)
        assert client.timeout.read == 3.0 and client.retry.max_attempts == 1


def test_from_env_reads_omnisend_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_URL", "clickatell://k@127.0.0.1:9?tls=0")
    with Client.from_env() as client:
        assert isinstance(client.provider, Clickatell) and client.provider.base_url == "http://127.0.0.1:9"
    assert isinstance(AsyncClient.from_env().provider, Clickatell)
    monkeypatch.delenv("OMNISEND_URL")
    with pytest.raises(ConfigurationError, match="OMNISEND_URL is not set"):
        Client.from_env()


@pytest.mark.tcp
@pytest.mark.parametrize("name", list(EMULATORS))
def test_an_emulators_url_sends_through_it(name: str) -> None:
    emulator = get_emulator(name)()
    with emulator.serve() as server:
        url = emulator.url(server.base_url)
        assert url.startswith(f"{name.replace('_', '-')}://") and "tls=0" in url
        with Client.from_url(url, retry=None) as client:
            result = client.send(emulator.demo_message("+48500100200", "hello"))
    assert result.message_id is not None
    assert emulator.accepted_count == 1


@pytest.mark.tcp
@pytest.mark.anyio
async def test_async_client_from_url_sends() -> None:
    emulator = get_emulator("smsapi")()
    with emulator.serve() as server:
        async with AsyncClient.from_url(emulator.url(server.base_url), retry=None) as client:
            result = await client.send(Message(to="+48500100200", text="hi"))
    assert result.provider == "smsapi" and emulator.accepted_count == 1


def test_twilio_takes_sid_and_token() -> None:
    from omnisend.providers import Twilio

    sid = "AC" + "0" * 31 + "1"
    provider = omnisend.from_url(f"twilio://{sid}:to%3Aken@default?messaging_service_sid=MG{'0' * 31}1")
    assert isinstance(provider, Twilio)
    assert provider.account_sid == sid and provider._auth_token == "to:ken"
    assert provider.base_url == "https://api.twilio.com"
    with pytest.raises(ConfigurationError, match=r"twilio wants ACCOUNT_SID:AUTH_TOKEN before the @") as caught:
        omnisend.from_url(f"twilio://{SECRET}@default")
    assert SECRET not in str(caught.value)


# -- routers ---------------------------------------------------------------------------------


def test_failover_and_roundrobin_build_routers() -> None:
    from omnisend.routing import Failover, RoundRobin

    failover = omnisend.from_url("failover(smsapi://a@default  clickatell://b@default?name=backup&sender=15551234567)")
    assert isinstance(failover, Failover)
    assert [(r.name, r.sender) for r in failover.routes] == [("smsapi", None), ("backup", "15551234567")]
    assert isinstance(failover.routes[1].provider, Clickatell)
    weighted = omnisend.from_url("roundrobin(smsapi://a@default?weight=3 mobizon://k@default?weight=0.5)")
    assert isinstance(weighted, RoundRobin) and [r.weight for r in weighted.routes] == [3, 0.5]
    nested = omnisend.from_url(" FAILOVER( roundrobin(smsapi://a@default mobizon://k@default) clickatell://b@default ) ")
    assert isinstance(nested, Failover) and isinstance(nested.routes[0].provider, RoundRobin)


def test_a_single_url_with_a_sender_is_a_one_route_router() -> None:
    from omnisend.routing import Failover

    provider = omnisend.from_url("smsapi://TOKEN@default?sender=Shop")
    assert isinstance(provider, Failover)
    (route,) = provider.routes
    assert route.sender == "Shop" and isinstance(route.provider, Smsapi)


@pytest.mark.tcp
def test_a_failover_url_fails_over_between_emulators() -> None:
    first, second = get_emulator("smsapi")(balance=0), get_emulator("mobizon")()
    with first.serve() as a, second.serve() as b:
        with Client.from_url(f"failover({first.url(a.base_url)} {second.url(b.base_url)})", retry=None) as client:
            result = client.send(Message(to="+48500100200", text="hi"))
    assert result.provider == "mobizon" and [type(e).__name__ for e in result.route_errors] == ["InsufficientBalance"]
    assert first.accepted_count == 0 and second.accepted_count == 1
