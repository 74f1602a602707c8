"""Checks on what callers hand omnisend, shared by :class:`~omnisend.Message` and the adapters.

Everything here is pure and raises plain ``ValueError`` (``Message`` turns it into
:class:`~omnisend.ValidationError` naming the field); adapters call :func:`owned_option`.

Vendor ids. A send to several recipients, or split into several requests, gives each recipient
(or request) an id derived from the idempotency key: ``<key>--<n>``. A caller's key may not end in
``--<digits>``, so a derived id never equals a key a caller can choose, and two different keys
never derive the same id (the key is what comes before the last ``--``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any, Final

__all__ = ["derive_id", "json_options", "new_key", "owned_option", "recipient_ids", "reserved_key", "text_problem"]

#: What separates a key from the number of the recipient (or request) an id is derived for.
SEPARATOR: Final = "--"
_RESERVED: Final = re.compile(r"--[0-9]+\Z")
_BAD_TEXT: Final = re.compile("[\x00\ud800-\udfff]")  # NUL, and any lone surrogate (never valid text)
_MAX_DEPTH: Final = 32


def new_key() -> str:
    """A random UUID4 as 32 hex digits, like ``uuid.uuid4().hex`` without building the UUID object."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def derive_id(key: str, n: int) -> str:
    """The vendor id of recipient (or request) ``n`` (from 1) of the send with ``key``."""
    return f"{key}{SEPARATOR}{n}"


def recipient_ids(key: str, count: int) -> tuple[str, ...]:
    """The vendor id of each of ``count`` recipients: the key itself for one, ``<key>--<n>`` for several.

    The same message, sent alone or as part of a ``send_many`` batch, gets the same ids, so a
    re-send with the same key is recognised by a vendor that de-duplicates per recipient.
    """
    return (key,) if count == 1 else tuple(derive_id(key, n) for n in range(1, count + 1))


def reserved_key(key: str) -> bool:
    """Whether ``key`` has the form of a derived id (``…--<digits>``), which callers may not use."""
    return _RESERVED.search(key) is not None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as text (a NUL or a lone surrogate), or ``None``."""
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    char = found.group()
    return "contains a NUL character" if char == "\x00" else f"contains a lone surrogate (U+{ord(char):04X})"


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an idempotency key, or ``None``."""
    if not key.isprintable():
        bad = next(ch for ch in key if not ch.isprintable())
        return f"contains a control or unprintable character (U+{ord(bad):04X})"
    if key != key.strip():
        return "starts or ends with whitespace"
    if reserved_key(key):
        return (
            f"ends in '{SEPARATOR}<digits>', the form of the ids omnisend derives for each recipient of a "
            f"send (<key>{SEPARATOR}1, <key>{SEPARATOR}2, ...); choose a key that does not end that way"
        )
    return None


def json_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as plain JSON values: datetimes and dates become ISO 8601 text, the rest is refused.

    Raises ``ValueError`` naming the option for what JSON cannot carry (``NaN``, infinities, sets,
    bytes, naive datetimes, arbitrary objects), NUL characters and lone surrogates.
    """
    return {_text_key(key, "options"): _json(value, f"options.{key}", 0) for key, value in options.items()}


def _text_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"{where} has a {type(key).__name__} key ({key!r}); keys must be text")
    problem = text_problem(key)
    if problem is not None:
        raise ValueError(f"a key of {where} {problem}")
    return str.__str__(key)


#: The values :func:`_json_scalar` takes.
_SCALARS: Final = (type(None), bool, str, int, float, date)


def _json(value: object, where: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, _SCALARS):
        return _json_scalar(value, where)
    if isinstance(value, Mapping):
        return {_text_key(k, where): _json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    kind = "a time of day" if isinstance(value, time) else f"of type {type(value).__name__}"
    raise ValueError(
        f"{where} is {kind}, which JSON cannot carry: use text, numbers, booleans, None, lists, "
        "mappings, or timezone-aware datetimes (sent as ISO 8601)"
    )


def _json_scalar(value: None | bool | str | int | float | date, where: str) -> Any:
    """One plain value as JSON carries it: a subclass (an enum) as its base value, a date or an aware
    datetime as ISO 8601 text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"{where} {problem}")
        return str.__str__(value)  # a str subclass (an enum) as its plain text
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}, which JSON cannot carry")
        return float(value)
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{where} is a datetime without a time zone; give it one (ISO 8601 is sent)")
    return value.isoformat()


def _path(key: str) -> tuple[str, ...]:
    """An option name as a field path: ``"params[name]"`` and ``"params.name"`` are ``("params", "name")``."""
    return tuple(part for part in re.split(r"[\[\].]+", key.lower()) if part)


def _leaves(value: object, prefix: tuple[str, ...]) -> Iterable[tuple[str, ...]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves(item, prefix + _path(str(key)))
    else:
        yield prefix


def owned_option(options: Mapping[str, Any], owned: Iterable[str]) -> str | None:
    """The first option that would set or replace one of the ``owned`` fields, or ``None``.

    ``owned`` names fields as dotted paths (``"params.name"``); an option matches whatever its
    spelling (``{"params": {"name": ..}}``, ``"params[name]"``, any letter case), and an option that
    replaces a parent of an owned field (``{"params": "x"}``) matches too.
    """
    paths = [_path(field) for field in owned]
    for key, value in options.items():
        for leaf in _leaves(value, _path(str(key))):
            for path in paths:
                size = min(len(leaf), len(path))
                if size and leaf[:size] == path[:size]:
                    return ".".join(path)
    return None
