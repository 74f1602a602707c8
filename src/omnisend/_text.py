"""Pre-flight helpers shared by every adapter: phone numbers, SMS encoding and segments.

``sms_segments`` and ``Segments`` are public (``omnisend.sms_segments``).

These run before any request is built, so a bad message costs no HTTP call and the error
names the field and the limit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
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
    """How an SMS text travels on the wire: its encoding, the parts it is split into, its length.

    Example:
        >>> sms_segments("Your code is 1234")
        Segments(encoding='gsm7', parts=1, characters=17)
    """

    encoding: str
    """``"gsm7"`` (GSM 03.38, 7-bit) or ``"ucs2"`` (UTF-16, for any character outside GSM 03.38)."""
    parts: int
    """Number of SMS parts the network sends (what the vendor bills per recipient)."""
    characters: int
    """Length on the wire: septets for GSM-7 (an extension character such as ``€`` counts 2),
    UTF-16 code units for UCS-2 (a character outside the BMP, such as an emoji, counts 2)."""


_GSM7: Final = GSM7_BASIC | GSM7_EXTENDED
#: Room in one SMS and in each part of a concatenated one (the rest of a part holds the UDH).
_ROOM: Final = {"gsm7": (160, 153), "ucs2": (70, 67)}


def sms_segments(text: str) -> Segments:
    """The encoding, SMS parts and wire length of ``text``.

    One SMS holds 160 GSM-7 septets or 70 UCS-2 units; a longer text is split into parts of 153
    septets or 67 units. A character that takes two (a GSM-7 escape such as ``€``, ``[``, ``{``; a
    UTF-16 surrogate pair such as an emoji) is never split across parts: when only one place is
    left in a part, it moves whole to the next, so such texts can need one part more than their
    length divided by 153 (or 67) says.

    Example:
        >>> sms_segments("a" * 152 + "€" + "a" * 152).parts
        3
    """
    if GSM7_BASIC.issuperset(text):
        return _segments("gsm7", len(text), 0)
    if _GSM7.issuperset(text):
        doubles = sum(text.count(ch) for ch in GSM7_EXTENDED)
        if doubles == 0 or len(text) + doubles <= 160:
            return _segments("gsm7", len(text) + doubles, 0)
        return _segments("gsm7", len(text) + doubles, _parts(text, GSM7_EXTENDED.__contains__, 153))
    units = len(text.encode("utf-16-le")) // 2
    if units == len(text) or units <= 70:
        return _segments("ucs2", units, 0)
    return _segments("ucs2", units, _parts(text, _astral, 67))


def _astral(ch: str) -> bool:
    """Whether ``ch`` is outside the BMP (a surrogate pair in UTF-16)."""
    return ord(ch) > 0xFFFF


def _parts(text: str, double: Callable[[str], bool], room: int) -> int:
    """Parts of ``room`` places each, a two-place character never split across two parts."""
    parts, used = 1, 0
    for ch in text:
        width = 2 if double(ch) else 1
        if used + width > room:
            parts, used = parts + 1, 0
        used += width
    return parts


@functools.lru_cache(maxsize=4096)
def _segments(encoding: str, characters: int, parts: int) -> Segments:
    """``parts == 0``: no two-place character can fall on a boundary, so the count is arithmetic."""
    single, multi = _ROOM[encoding]
    if not parts:
        parts = 1 if characters <= single else -(-characters // multi)
    return Segments(encoding=encoding, parts=parts, characters=characters)


def check_sms_length(text: str, *, max_parts: int, provider: str) -> Segments:
    """Raise :class:`ValidationError` when ``text`` needs more than ``max_parts`` SMS parts."""
    seg = sms_segments(text)
    if seg.parts > max_parts:
        raise ValidationError(
            f"text needs {seg.parts} SMS parts ({seg.characters} {seg.encoding} characters); "
            f"{provider} allows at most {max_parts}",
            field="text",
            provider=provider,
        )
    return seg
