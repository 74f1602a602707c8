"""Keeping credentials out of errors, reprs and log records.

Providers register their credential values when created. :func:`scrub` replaces them in any
decoded vendor payload before it is stored on an error or a result, and :class:`RedactingFilter`
(installed on the ``httpx`` and ``httpcore`` loggers and on ``omnisend``'s own) masks them in log
records — httpx logs every request URL at INFO, and some vendors take the key in the URL.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Final

MASK: Final = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False

#: Loggers whose records may carry a request URL or header.
LOGGERS: Final = (
    "omnisend",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


def register(*secrets: str) -> None:
    """Remember credential values so logs and payloads can be scrubbed of them."""
    new = {s for s in secrets if s and len(s) >= 4}
    if not new:
        return
    with _lock:
        _secrets.update(new)
    install()


def scrub(value: object, secrets: tuple[str, ...] | None = None) -> object:
    """``value`` with every known secret replaced by ``***`` (strings, lists and dicts, deeply).

    Returns ``value`` itself when no secret occurs in it.
    """
    found = tuple(s for s in (secrets if secrets is not None else tuple(_secrets)) if s)
    if not found:
        return value
    if absent(value, found):
        return value
    return _scrub(value, found)


def absent(value: object, secrets: tuple[str, ...]) -> bool:
    """True when no string inside ``value`` (a decoded payload) can contain a secret, found in one
    C-speed pass instead of a walk; False means "maybe" (the caller walks).

    JSON text keeps every string verbatim except ``"``, ``\\`` and control characters, so a
    secret without those characters that occurs in any string (key or value) of ``value`` occurs
    in its JSON text. Anything JSON cannot encode means "don't know" (the full walk runs).
    """
    if not isinstance(value, (dict, list)) or not all(_verbatim_in_json(s) for s in secrets):
        return False
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return not any(s in text for s in secrets)


def _verbatim_in_json(secret: str) -> bool:
    return '"' not in secret and "\\" not in secret and all(ch >= " " for ch in secret)


def scrub_text(text: str) -> str:
    """``text`` with every registered secret masked."""
    result = _scrub(text, tuple(_secrets))
    return result if isinstance(result, str) else text


def _scrub(value: object, secrets: tuple[str, ...]) -> object:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub(v, secrets) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """Masks registered secrets in a record's message and arguments (URLs included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = tuple(_secrets)
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        if any(s in message for s in secrets):
            record.msg = _scrub(message, secrets)
            record.args = None
        return True


def install() -> None:
    """Attach :class:`RedactingFilter` to the loggers that may print a URL (idempotent)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        flt = RedactingFilter()
        for name in LOGGERS:
            logging.getLogger(name).addFilter(flt)
        _installed = True
