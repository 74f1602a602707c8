"""``omnisend.sms_segments`` against an independent reference, and ``SendResult.segments``.

The reference is smsutil (a test-only dependency): it encodes the text (GSM 03.38 or UTF-16) and
splits the bytes into parts without cutting an escape sequence or a surrogate pair, the way the
network does. omnisend counts without encoding; both must agree on every text.
"""

from __future__ import annotations

import smsutil
from hypothesis import example, given, settings
from hypothesis import strategies as st

import omnisend
from omnisend import Message, RetryPolicy, sms_segments
from omnisend._text import GSM7_BASIC, GSM7_EXTENDED
from omnisend.testing import SmsapiEmulator
from tests.conftest import inprocess_client

BASIC = sorted(GSM7_BASIC)
EXTENDED = sorted(GSM7_EXTENDED)
#: Characters outside GSM 03.38 inside the BMP (one UTF-16 unit) and outside it (two: emoji).
BMP = ["ą", "ż", "Ж", "中", "ç", "’", "…"]
ASTRAL = ["😀", "👍", "🚀", "𝄞"]


def reference(text: str) -> tuple[str, int, int]:
    """(encoding, parts, characters) as smsutil splits ``text``."""
    split = smsutil.split(text)
    if split.encoding == "gsm0338":
        return "gsm7", len(split.parts), sum(part.bytes for part in split.parts)
    return "ucs2", len(split.parts), sum(part.bytes for part in split.parts) // 2


def texts(*alphabets: list[str]) -> st.SearchStrategy[str]:
    """Texts around the part boundaries (up to 4 parts and a little more), from these alphabets."""
    return st.lists(st.sampled_from([ch for alphabet in alphabets for ch in alphabet]), min_size=1, max_size=700).map(
        "".join
    )


def runs(filler: list[str], doubles: list[str]) -> st.SearchStrategy[str]:
    """A run of one-place characters, then a two-place one, repeated: a double lands on each offset."""
    run = st.tuples(st.integers(0, 160), st.sampled_from(filler), st.sampled_from(doubles))
    return st.lists(run, min_size=1, max_size=5).map(lambda items: "".join(f * n + d for n, f, d in items))


@settings(max_examples=400, deadline=None)
@given(st.one_of(texts(BASIC), texts(BASIC, EXTENDED), runs(BASIC, EXTENDED)))
@example("a" * 152 + "€" + "a" * 152)
@example("€" * 80)
@example("€" * 81)
def test_gsm7_texts_agree_with_the_reference(text: str) -> None:
    seg = sms_segments(text)
    assert (seg.encoding, seg.parts, seg.characters) == reference(text)


@settings(max_examples=400, deadline=None)
@given(st.one_of(texts(BASIC, BMP), texts(BASIC, BMP, ASTRAL), texts(ASTRAL), runs(BMP, ASTRAL)))
@example("a" * 66 + "😀" + "a" * 66)
@example("😀" * 35)
@example("😀" * 36)
def test_ucs2_texts_agree_with_the_reference(text: str) -> None:
    seg = sms_segments(text)
    assert (seg.encoding, seg.parts, seg.characters) == reference(text)


def test_sms_segments_is_public() -> None:
    assert omnisend.sms_segments is sms_segments and "sms_segments" in omnisend.__all__
    assert "Segments" in omnisend.__all__ and isinstance(sms_segments("hi"), omnisend.Segments)


def test_send_result_reports_the_parts_per_recipient(policy: RetryPolicy) -> None:
    text = "a" * 152 + "€" + "a" * 152  # 3 parts on the wire, not 2
    with inprocess_client(SmsapiEmulator(), policy) as client:
        result = client.send(Message(to=["+48500100200", "+48500100201"], text=text))
        assert result.segments == 3
        assert client.send(Message(to="+48500100200", text="hi")).segments == 1
        outcomes = list(client.send_many([Message(to="+48500100202", text=text)]))
        assert outcomes[0].result is not None and outcomes[0].result.segments == 3


def test_segments_is_none_without_an_sms_text() -> None:
    from omnisend.testing import ClickatellEmulator

    template = omnisend.Template(name="otp", params=["1234"])
    with inprocess_client(ClickatellEmulator(), RetryPolicy(sleep=lambda _: None)) as client:
        assert client.send(Message(to="+48500100200", channel="whatsapp", template=template)).segments is None
        assert client.send(Message(to="+48500100200", channel="whatsapp", text="hi")).segments is None
