"""JSON bodies: the small pieces several vendors' requests and answers need.

Building a request body:

* :func:`merged` — ``Message.options`` merged into a body, nested objects key by key;
* :func:`compact` — a mapping without its ``None`` values;
* :func:`placed` — fields put at paths of keys (``("attachment", "url")``), ``None`` left out;
* :func:`utc_iso` — a moment as ISO 8601 in UTC with ``Z``, to the second or the millisecond;
* :func:`file_name` — the file name a media URL ends with, for vendors that want one.

Reading a value of an answer, whatever JSON type the vendor chose for it:

* :func:`value_at` — the value at a path of keys (``("error", "code")``), ``None`` where the path breaks;
* :func:`as_text` — text, or ``None`` for an absent or empty value (ids written as numbers compare as text);
* :func:`as_float` — a number, or a default for anything that is not one (``NaN`` unless given).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

__all__ = ["as_float", "as_text", "compact", "file_name", "merged", "placed", "utc_iso", "value_at"]


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in (a new dict): nested objects merged key by key, any other
    value of ``extra`` replacing the one of ``base``."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = merged(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return out


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` without the ones whose value is ``None``."""
    return {key: value for key, value in fields.items() if value is not None}


def placed(fields: Mapping[str, Any], paths: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """``fields`` without ``None`` values, each where ``paths`` puts it (a path of keys, so
    ``{"url": ("attachment", "url")}`` nests it), else under its own name."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is not None:
            *outer, key = paths.get(name, (name,))
            node = out
            for step in outer:
                node = node.setdefault(step, {})
            node[key] = value
    return out


def utc_iso(moment: datetime | None, *, millis: bool = False) -> str | None:
    """``2031-01-21T08:00:00Z`` (``millis``: ``2031-01-21T08:00:00.250Z``); ``None`` for ``None``."""
    if moment is None:
        return None
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{utc.microsecond // 1000:03d}" if millis else "") + "Z"


def file_name(url: str, default: str = "attachment") -> str:
    """The last segment of ``url``'s path (``https://cdn.example/a/menu.pdf`` → ``menu.pdf``), else ``default``."""
    return urlsplit(url).path.rsplit("/", 1)[-1] or default


def value_at(obj: object, path: Sequence[str]) -> Any:
    """The value at ``path`` in nested objects (``value_at(body, ("error", "code"))``); ``None`` where
    a key is missing or a value on the way is not an object. Answers (``Answer``) and callbacks
    (``ReportFields``) read their dotted field names through it."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def as_text(value: object) -> str | None:
    """``value`` as text; ``None`` for ``None`` and ``""``."""
    return None if value is None or value == "" else str(value)


def as_float(value: object, default: float = math.nan) -> float:
    """``value`` (a number, or text holding one) as a float; ``default`` for anything else, ``bool`` included."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    return default
