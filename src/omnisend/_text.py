"""Pre-flight helpers shared by every adapter: phone numbers, SMS encoding and segments.

These run before any request is built, so a bad message costs no HTTP call and the error
names the field and the limit.
"""

from __future__ import annotations

import functools
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
        if not _is_possible(pn, cleaned):
            raise InvalidRecipient(
                f"recipient {_mask(number)!r} is not a possible phone number for its country code "
                "(wrong length or unknown country code)",
                field=field,
            )
    return cleaned


def _parse_possible(pn: Any, number: str) -> bool:
    """libphonenumber's answer: ``is_possible_number(parse(number))`` for an E.164 ``number``."""
    try:
        return bool(pn.is_possible_number(pn.parse(number, None)))
    except pn.NumberParseException:
        return False


# What makes the libphonenumber check cheap to repeat. For an E.164 number (``+`` then digits,
# as ``normalize_e164`` has checked), ``parse`` takes the country code (the 1-3 leading digits
# that are a known code), then strips a national prefix from the rest only when the region's
# ``national_prefix_for_parsing`` pattern matches at its start; ``is_possible_number`` then
# checks the length of what is left against the region's possible lengths. So when that pattern
# is absent or does not match, the answer depends on (country code, national length) alone, and
# is remembered; any other number (a prefix that matches, an unknown code) is parsed in full.
# ``tests/test_text.py`` checks both paths agree on numbers from every country code.
_POSSIBLE: dict[tuple[int, int], bool] = {}
_NATIONAL_PREFIX: dict[int, re.Pattern[str] | None] = {}


def _national_prefix(pn: Any, code: int) -> re.Pattern[str] | None:
    if code not in _NATIONAL_PREFIX:
        region = pn.region_code_for_country_code(code)
        metadata = pn.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        pattern = getattr(metadata, "national_prefix_for_parsing", None) if metadata is not None else None
        _NATIONAL_PREFIX[code] = re.compile(pattern) if pattern else None
    return _NATIONAL_PREFIX[code]


def _is_possible(pn: Any, number: str) -> bool:
    """``_parse_possible(pn, number)``, answered from ``_POSSIBLE`` where that is exact (see above)."""
    try:
        codes = pn.COUNTRY_CODE_TO_REGION_CODE
        digits = number[1:]
        for size in (1, 2, 3):
            code = int(digits[:size])
            if code in codes:
                break
        else:
            return _parse_possible(pn, number)
        national = digits[size:]
        prefix = _national_prefix(pn, code)
    except (AttributeError, TypeError):  # pragma: no cover - a phonenumbers without these names
        return _parse_possible(pn, number)
    if prefix is not None and prefix.match(national):
        return _parse_possible(pn, number)
    key = (code, len(national))
    possible = _POSSIBLE.get(key)
    if possible is None:
        possible = _POSSIBLE[key] = _parse_possible(pn, number)
    return possible


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
    if GSM7_BASIC.issuperset(text):
        return _segments("gsm7", len(text))
    if _GSM7.issuperset(text):
        return _segments("gsm7", len(text) + sum(text.count(ch) for ch in GSM7_EXTENDED))
    return _segments("ucs2", len(text.encode("utf-16-le")) // 2)


@functools.lru_cache(maxsize=4096)
def _segments(encoding: str, units: int) -> Segments:
    single, multi = (160, 153) if encoding == "gsm7" else (70, 67)
    return Segments(encoding=encoding, units=units, count=1 if units <= single else -(-units // multi))


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
