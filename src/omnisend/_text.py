"""Pre-flight helpers shared by every adapter: phone numbers, SMS encoding and segments.

These run before any request is built, so a bad message costs no HTTP call and the error
names the field and the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from .errors import InvalidRecipient, ValidationError

_SEPARATORS: Final = re.compile(r"[\s\-().]")
_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")

#: GSM 03.38 basic character set (one septet each).
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table (two septets each: escape + char).
GSM7_EXTENDED: Final = frozenset("^{}\\[~]|€\f")


def _phonenumbers() -> Any:
    """The ``phonenumbers`` module when the ``omnisend[phonenumbers]`` extra is installed, else None."""
    global _PN
    if _PN is _UNLOADED:
        try:
            import phonenumbers

            _PN = phonenumbers
        except ImportError:  # pragma: no cover - depends on the extra
            _PN = None
    return _PN


_UNLOADED: Final = object()
_PN: Any = _UNLOADED


def normalize_e164(number: str, *, field: str = "to") -> str:
    """Return ``number`` in E.164 form (``+48500100200``), or raise :class:`InvalidRecipient`.

    Spaces, dashes, dots and parentheses are dropped; a leading ``00`` becomes ``+``. With the
    ``phonenumbers`` extra installed, the number must also be *possible* for its country (a
    length check from Google's libphonenumber metadata); whether it is allocated is left to the
    vendor, which knows its own routes.
    """
    if not isinstance(number, str) or not number.strip():
        raise InvalidRecipient("recipient number is empty", field=field)
    cleaned = _SEPARATORS.sub("", number)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not _E164.fullmatch(cleaned):
        raise InvalidRecipient(
            f"recipient {_mask(number)!r} is not an E.164 number: expected '+' and 7 to 15 digits, "
            "country code first (e.g. +48500100200)",
            field=field,
        )
    pn = _phonenumbers()
    if pn is not None:
        try:
            parsed = pn.parse(cleaned, None)
            possible = pn.is_possible_number(parsed)
        except pn.NumberParseException:
            possible = False
        if not possible:
            raise InvalidRecipient(
                f"recipient {_mask(number)!r} is not a possible phone number for its country code "
                "(wrong length or unknown country code)",
                field=field,
            )
    return cleaned


def _mask(number: str) -> str:
    """Keep a number recognisable in an error without printing all of it (PII)."""
    text = str(number)
    return text if len(text) <= 6 else text[:4] + "…" + text[-2:]


@dataclass(frozen=True, slots=True)
class Segments:
    """How an SMS text will be split on the wire."""

    encoding: str
    """``"gsm7"`` or ``"ucs2"``."""
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    count: int
    """Number of SMS parts."""


_GSM7: Final = GSM7_BASIC | GSM7_EXTENDED


def sms_segments(text: str) -> Segments:
    """Count the SMS parts ``text`` needs: 160/153 GSM-7 septets or 70/67 UCS-2 units."""
    if _GSM7.issuperset(text):
        units = len(text) + sum(text.count(ch) for ch in GSM7_EXTENDED)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "ucs2"
    count = 1 if units <= single else -(-units // multi)
    return Segments(encoding=encoding, units=units, count=count)


def check_sms_length(text: str, *, max_parts: int, provider: str) -> Segments:
    """Raise :class:`ValidationError` when ``text`` needs more than ``max_parts`` SMS parts."""
    seg = sms_segments(text)
    if seg.count > max_parts:
        raise ValidationError(
            f"text needs {seg.count} SMS parts ({seg.units} {seg.encoding} units); "
            f"{provider} allows at most {max_parts}",
            field="text",
            provider=provider,
        )
    return seg


def check_sender(sender: str, *, pattern: str, rule: str, provider: str) -> None:
    """Raise :class:`ValidationError` when ``sender`` does not fully match the vendor's ``pattern``."""
    if not re.fullmatch(pattern, sender):
        raise ValidationError(f"sender {sender!r} is not allowed: {rule}", field="sender", provider=provider)
