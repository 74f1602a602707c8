"""Keeping credentials out of errors, reprs and log records.

Each provider registers the spellings of its credentials when created (:func:`spellings`: as
written, percent-encoded, ``quote_plus``-encoded, JSON-escaped, and the HTTP Basic base64 of a
``user:password`` pair). The registry is scoped to the provider: its entry goes when the provider
is garbage-collected, and an adapter masks its own payloads with its own spellings. :func:`scrub`
replaces them in any decoded vendor payload before it is stored on an error or a result, and
:class:`RedactingFilter` (installed on the ``httpx`` and ``httpcore`` loggers and on ``omnisend``'s
own) masks the spellings of every live provider in log records — httpx logs every request URL at
INFO, and some vendors take the key in the URL, percent-encoded.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

MASK: Final = "***"
_MIN: Final = 4  # shorter values would mask ordinary words
_lock = threading.Lock()
_owners: weakref.WeakKeyDictionary[object, tuple[str, ...]] = weakref.WeakKeyDictionary()
_all: tuple[str, ...] | None = ()  # the union over live owners, rebuilt when one comes or goes
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


def spellings(secrets: Iterable[str], pairs: Iterable[tuple[str, str]] = ()) -> tuple[str, ...]:
    """Every form in which ``secrets`` can appear in a URL, a form, a JSON text or a header, longest first.

    ``pairs`` are ``(user, password)`` credentials sent as HTTP Basic: their base64 is a secret too.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < _MIN:
            continue
        escaped = json.dumps(secret)[1:-1]
        forms.update(
            {
                secret,
                quote(secret, safe=""),
                quote(secret),
                quote_plus(secret),
                quote(secret, safe="").lower(),  # %2b: some encoders write lower-case hex
                escaped,
                json.dumps(secret, ensure_ascii=False)[1:-1],
                escaped.replace("/", "\\/"),  # JSON writers that escape the slash
            }
        )
    for user, password in pairs:
        if password and len(password) >= _MIN:
            forms.add(base64.b64encode(f"{user}:{password}".encode()).decode("ascii"))
    return tuple(sorted((f for f in forms if len(f) >= _MIN), key=lambda f: (-len(f), f)))


def register(owner: object, forms: tuple[str, ...]) -> None:
    """Remember ``owner``'s credential spellings (from :func:`spellings`) while ``owner`` lives."""
    global _all
    if not forms:
        return
    with _lock:
        _owners[owner] = forms
        _all = None
    weakref.finalize(owner, _forget)
    install()


def _forget() -> None:
    global _all
    _all = None  # rebuilt on next use, without the collected owner


def registered() -> tuple[str, ...]:
    """The spellings of every live provider's credentials."""
    global _all
    current = _all
    if current is None:
        with _lock:
            current = tuple(sorted({f for forms in list(_owners.values()) for f in forms}, key=lambda f: (-len(f), f)))
            _all = current
    return current


def scrub(value: object, secrets: tuple[str, ...] | None = None) -> object:
    """``value`` with every known secret replaced by ``***`` (strings, lists and dicts, deeply).

    Returns ``value`` itself when no secret occurs in it.
    """
    found = tuple(s for s in (secrets if secrets is not None else registered()) if s)
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
    result = _scrub(text, registered())
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
        secrets = registered()
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
