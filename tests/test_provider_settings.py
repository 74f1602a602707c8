"""The settings checks every adapter's ``__init__`` shares (``_choice``, ``_checked_url``, ``secret_attributes``)."""

from __future__ import annotations

import pytest

from omnisend import ConfigurationError
from omnisend.providers import Edna, Smsapi, Twilio, WebexConnect

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
