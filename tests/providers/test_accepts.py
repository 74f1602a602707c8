"""Declared message capabilities (``omnisend.providers._accepts``): each kind of rule refuses what
it should, with the error class and field it should, accepts at its edges, and is checked by the base
before any request (``build_request`` and a send flow both go through ``check_message``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from omnisend import InvalidRecipient, Media, Message, Template, Unsupported, ValidationError
from omnisend.providers import PROVIDERS, get_provider
from omnisend.providers._accepts import (
    E164,
    NOT_PAST,
    Accepts,
    Longest,
    Matches,
    OneOf,
    PerRequest,
    Refused,
    Required,
    Url,
    Within,
    Without,
    describe,
)
from omnisend.providers.base import ErrorTable, Provider, StatusTable

TO = "+48500100200"
HOUR = timedelta(hours=1)


class Acme(Provider):
    """A vendor whose declaration each test gives; its request only says the message got through."""

    name = "acme"
    display_name = "Acme"
    default_base_url = "https://acme.test"
    channels = frozenset({"sms", "whatsapp"})
    errors = ErrorTable({})
    statuses = StatusTable({})
    max_recipients = 2

    def __init__(self, accepts: Accepts, **settings: Any) -> None:
        self.declared = accepts
        for name, value in settings.items():
            setattr(self, name, value)
        super().__init__()

    def accepts_for(self, message: Message) -> Accepts:
        return self.declared

    def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
        return self.build_http_request("POST", "/send", json={"to": list(message.recipients)})


def build(accepts: Accepts, message: Message, key: str = "k", **settings: Any) -> httpx.Request:
    return Acme(accepts, **settings).build_request(message, idempotency_key=key)


def refused(
    accepts: Accepts, message: Message, cls: type[Exception], field: str | None, match: str, **settings: Any
) -> None:
    """``message`` is refused by ``build_request`` and by a send flow, before any step, as ``cls`` on ``field``."""
    provider = Acme(accepts, **settings)
    with pytest.raises(cls, match=match) as info:
        provider.build_request(message, idempotency_key="k")
    assert type(info.value) is cls and info.value.field == field and info.value.provider == "acme"
    with pytest.raises(cls, match=match):
        next(provider.send_flow(message, idempotency_key="k"))


def sms(**fields: Any) -> Message:
    return Message(**{"to": TO, "text": "hi", **fields})


# -- each kind ------------------------------------------------------------------------------------


def test_refused_is_unsupported_with_the_vendors_reason_and_the_field() -> None:
    accepts = Accepts(media=Refused("media (use the panel)"), validity=Refused("validity here", invalid=True))
    refused(
        accepts,
        sms(media=Media(url="https://x.test/a.png")),
        Unsupported,
        "media",
        r"^acme: Acme does not support media \(use the panel\)$",
    )
    refused(accepts, sms(validity=HOUR), ValidationError, "validity", r"^acme: validity here$")
    assert build(accepts, sms())  # absent: nothing to refuse


def test_refused_is_lifted_by_the_setting_it_names_and_may_refuse_one_part() -> None:
    accepts = Accepts(
        scheduled_at=Refused("scheduled_at without a service", unless="service"),
        template=Refused("Template.language", part="language"),
    )
    later = sms(scheduled_at=datetime.now(timezone.utc) + HOUR)
    refused(accepts, later, Unsupported, "scheduled_at", "without a service", service=None)
    assert build(accepts, later, service="MG1")
    refused(
        accepts,
        sms(text=None, template=Template(name="t", language="en")),
        Unsupported,
        "template.language",
        "Template.language",
    )
    assert build(accepts, sms(text=None, template=Template(name="t")))


def test_required_unless_another_field_or_a_setting_stands_in() -> None:
    accepts = Accepts(
        text=Required("text is required", instead="template"),
        sender=Required("needs a sender or Acme(default_sender=...)", default="default_sender"),
        template=Required("free-form text", invalid=False),
    )
    with_template = sms(template=Template(name="t"), sender="Shop")
    assert build(accepts, with_template) and build(accepts, replace_text(with_template, None))
    refused(
        accepts, sms(template=Template(name="t")), ValidationError, "sender", r"needs a sender", default_sender=None
    )
    assert build(accepts, sms(template=Template(name="t")), default_sender="Shop")
    refused(accepts, sms(sender="Shop"), Unsupported, "template", r"does not support free-form text")
    refused(
        Accepts(text=Required("text is required")),
        sms(text=None, media=Media(url="https://x/a.png")),
        ValidationError,
        "text",
        "^acme: text is required$",
    )


def replace_text(message: Message, text: str | None) -> Message:
    return message.model_copy(update={"text": text})


def test_without_refuses_two_fields_together() -> None:
    accepts = Accepts(text=Without("template", "give text or a template, not both"))
    refused(accepts, sms(template=Template(name="t")), ValidationError, "text", "not both")
    assert build(accepts, sms()) and build(accepts, sms(text=None, template=Template(name="t")))


def test_within_a_duration_accepts_both_edges_and_refuses_beyond() -> None:
    accepts = Accepts(validity=Within(HOUR, 72 * HOUR, why="a validity outside 1 to 72 hours"))
    for edge in (HOUR, 72 * HOUR):
        assert build(accepts, sms(validity=edge))
    for beyond in (HOUR - timedelta(seconds=1), 72 * HOUR + timedelta(seconds=1)):
        refused(
            accepts,
            sms(validity=beyond),
            Unsupported,
            "validity",
            r"Acme does not support a validity outside 1 to 72 hours",
        )
    seconds = Accepts(
        validity=Within(
            timedelta(seconds=1),
            timedelta(seconds=10),
            why="validity must be 1 to 10 seconds, got {seconds}",
            invalid=True,
        )
    )
    refused(
        seconds,
        sms(validity=timedelta(seconds=11)),
        ValidationError,
        "validity",
        r"^acme: validity must be 1 to 10 seconds, got 11$",
    )


def test_within_for_a_moment_is_how_far_ahead_of_now() -> None:
    accepts = Accepts(
        scheduled_at=(
            NOT_PAST,
            Within(HOUR, timedelta(days=14), why="scheduled_at less than 1 hour or more than 14 days ahead"),
        )
    )
    now = datetime.now(timezone.utc)
    assert build(accepts, sms(scheduled_at=now + HOUR + timedelta(minutes=1)))
    assert build(accepts, sms(scheduled_at=now + timedelta(days=14) - timedelta(minutes=1)))
    refused(accepts, sms(scheduled_at=now + timedelta(minutes=30)), Unsupported, "scheduled_at", "less than 1 hour")
    refused(
        accepts, sms(scheduled_at=now + timedelta(days=14, minutes=1)), Unsupported, "scheduled_at", "more than 14 days"
    )
    # The past is a ValidationError (no vendor could send it), checked first; 5 minutes of clock skew pass.
    refused(
        accepts,
        sms(scheduled_at=now - timedelta(minutes=6)),
        ValidationError,
        "scheduled_at",
        "^acme: scheduled_at is in the past$",
    )
    assert build(Accepts(scheduled_at=NOT_PAST), sms(scheduled_at=now - timedelta(minutes=4)))


def test_matches_refuses_a_sender_outside_the_pattern_and_may_refuse_a_kind_as_unsupported() -> None:
    accepts = Accepts(
        sender=(
            Matches(r"\+*\d+", "alphanumeric sender ids", invalid=False),
            Matches(r"\+?[0-9]{3,15}", "3 to 15 digits"),
        )
    )
    assert build(accepts, sms(sender="+123")) and build(accepts, sms(sender="1" * 15))
    refused(accepts, sms(sender="Shop"), Unsupported, "sender", r"does not support alphanumeric sender ids$")
    refused(accepts, sms(sender="12"), ValidationError, "sender", r"^acme: sender '12' is not allowed: 3 to 15 digits$")
    refused(accepts, sms(sender="1" * 16), ValidationError, "sender", "is not allowed")


def test_longest_counts_characters_or_utf8_bytes() -> None:
    accepts = Accepts(
        text=Longest(5), idempotency_key=Longest(4, "{field} is {length} {unit}; at most {most} {unit}", in_bytes=True)
    )
    assert build(accepts, sms(text="x" * 5), key="kkkk")
    refused(
        accepts, sms(text="x" * 6), ValidationError, "text", r"^acme: text has 6 characters; acme allows at most 5$"
    )
    with pytest.raises(ValidationError, match=r"idempotency_key is 6 bytes; at most 4 bytes") as info:
        build(accepts, sms(), key="ééé")
    assert info.value.field == "idempotency_key"


def test_one_of_refuses_a_value_or_its_part_naming_it_and_the_channel() -> None:
    accepts = Accepts(
        channel=OneOf(("whatsapp",), "the {value!r} channel on this API"),
        on={"whatsapp": Accepts(media=OneOf(("image",), "{value} media on {channel}", part="type"))},
    )
    refused(accepts, sms(), Unsupported, None, r"does not support the 'sms' channel on this API$")
    whatsapp = sms(channel="whatsapp")
    assert build(accepts, whatsapp.model_copy(update={"media": Media(url="https://x/a.png")}))
    video = whatsapp.model_copy(update={"media": Media(url="https://x/a.mp4", type="video")})
    refused(accepts, video, Unsupported, "media", r"does not support video media on whatsapp$")


def test_url_requires_one_of_the_schemes() -> None:
    accepts = Accepts(media=Url(("https",), "media.url must be an https:// URL"))
    assert build(accepts, sms(media=Media(url="https://x.test/a.png")))
    for media in (Media(url="http://x.test/a.png"), Media.model_construct(url="https:/a.png", type="image")):
        refused(accepts, sms(media=media), ValidationError, "media.url", "must be an https:// URL")


def test_per_request_limits_a_built_request_to_max_recipients() -> None:
    accepts = Accepts(recipients=PerRequest())
    assert build(accepts, sms(to=[TO, "+48500100201"]))
    three = sms(to=[TO, "+48500100201", "+48500100202"])
    with pytest.raises(ValidationError, match=r"^acme: 3 recipients: at most 2 recipients per request$") as info:
        build(accepts, three)
    assert info.value.field == "to"
    steps = Acme(accepts).send_flow(three, idempotency_key="k")  # the flow splits instead
    assert next(steps).request.url.path == "/send"


def test_e164_checks_a_message_built_without_validation() -> None:
    unchecked = Message.model_construct(to="phone", text="hi")
    with pytest.raises(InvalidRecipient, match="not an E.164 number"):
        build(Accepts(recipients=E164()), unchecked)
    assert build(Accepts(recipients=E164()), sms())


def test_channel_rules_come_first_then_the_general_ones() -> None:
    accepts = Accepts(text=Longest(10, "general"), on={"whatsapp": Accepts(text=Longest(3, "whatsapp"))})
    assert accepts.rules("text", "whatsapp") == (Longest(3, "whatsapp"), Longest(10, "general"))
    refused(accepts, sms(channel="whatsapp", text="x" * 11), ValidationError, "text", "^acme: whatsapp$")
    refused(accepts, sms(text="x" * 11), ValidationError, "text", "^acme: general$")
    assert build(accepts, sms(text="x" * 10))


def test_a_channel_the_provider_does_not_list_is_refused_by_the_base() -> None:
    refused(Accepts(), sms(channel="viber"), Unsupported, None, r"does not support the 'viber' channel$")


# -- the six adapters declare what they accept ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_every_adapter_declares_what_it_accepts(name: str) -> None:
    cls = get_provider(name)
    assert cls.accepts != Accepts(), f"{name} declares nothing"
    assert "accepts_for" in cls.__dict__ or cls.__dict__.get("accepts") is not None


def test_a_declaration_is_checked_before_the_adapter_builds() -> None:
    """Refusals come from the base: an adapter's build_request is never reached with a refused message."""
    reached: list[Message] = []

    class Recorder(Acme):
        def build_request(self, message: Message, *, idempotency_key: str) -> httpx.Request:
            reached.append(message)
            return super().build_request(message, idempotency_key=idempotency_key)

    provider = Recorder(Accepts(validity=Refused("validity")))
    with pytest.raises(Unsupported):
        provider.build_request(sms(validity=HOUR), idempotency_key="k")
    assert reached == [] and provider.build_request(sms(), idempotency_key="k") and len(reached) == 1


def test_the_words_of_every_declared_refusal_are_informative() -> None:
    """Every declared reason of the six adapters says something (no empty ``why``)."""
    for name in PROVIDERS:
        cls = get_provider(name)
        for accepts in [cls.accepts, *cls.accepts.on.values()]:
            for field in (
                "channel",
                "text",
                "template",
                "media",
                "sender",
                "scheduled_at",
                "validity",
                "idempotency_key",
            ):
                for rule in accepts.rules(field):
                    why = getattr(rule, "why", None) or getattr(rule, "rule", None)
                    assert why is None or re.search(r"\w{3}", why), (name, field, rule)


def test_a_declaration_describes_itself_for_the_docs_page() -> None:
    accepts = Accepts(
        media=Refused("media on SMS"),
        text=Required("text is required", instead="template"),
        sender=Matches(r"[A-Z]{1,3}", "up to 3 capitals"),
        scheduled_at=(NOT_PAST, Within(most=timedelta(days=90), why="more than 90 days ahead")),
        validity=Within(timedelta(minutes=60), timedelta(hours=72), why="a validity outside 1 to 72 hours"),
        idempotency_key=Longest(50, "{field} is {length} bytes", in_bytes=True),
        on={"whatsapp": Accepts(media=OneOf(("image",), "{value} media on {channel}", part="type"))},
    )
    assert describe(accepts) == [
        "- `media`: refused, `Unsupported`: media on SMS",
        "- `text`: required (unless `template` given), `ValidationError`: text is required",
        "- `sender`: matches `[A-Z]{1,3}`, else `ValidationError`: up to 3 capitals",
        "- `scheduled_at`: not more than 5 minutes in the past, else `ValidationError`: scheduled_at is in the past",
        "- `scheduled_at`: at most 90 days ahead, else `Unsupported`: more than 90 days ahead",
        "- `validity`: 1 hour to 3 days, else `Unsupported`: a validity outside 1 to 72 hours",
        "- `idempotency_key`: at most 50 UTF-8 bytes, else `ValidationError`",
        "- `media` on whatsapp: `type` one of `image`, else `Unsupported`: <value> media on <channel>",
    ]
    assert describe(Accepts()) == ["- every field, as the message gives it"]
