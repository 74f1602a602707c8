"""Delivery-report webhooks: authenticating them and dropping replays.

Every provider's ``parse_webhook`` checks callbacks by the strategy its adapter declares
(``omnisend.providers._webhook``): Webex Connect ``x-hub-signature`` (an HMAC of the body, see
:func:`hmac_hex`), Mobizon ``sign``, edna's webhook key, Twilio ``X-Twilio-Signature`` over the
callback URL and its form fields (see :func:`url_signature`). For vendors that do not sign (SMSAPI,
Clickatell) configure a shared secret: put it in the callback URL you register
(``https://you.example/dlr?token=<secret>``) or in the URL's user info (Basic auth), and pass the
same ``webhook_secret=`` to the provider; a callback without it raises :class:`WebhookAuthError`.
Every comparison is constant-time.

Vendors retry callbacks until they get a 2xx, so the same event can arrive twice:
:class:`ReplayGuard` drops events already seen within a time window. It remembers them in a
:class:`ReplayStore`: in memory by default (:class:`MemoryReplayStore`), or in Redis
(``omnisend.stores.RedisReplayStore``) when several web processes take the callbacks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sized
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from .errors import ConfigurationError, WebhookAuthError
from .models import DeliveryReport

__all__ = [
    "MemoryReplayStore",
    "ReplayGuard",
    "ReplayStore",
    "WebhookAuthError",
    "hmac_hex",
    "url_signature",
    "verify_shared_secret",
    "verify_url_signature",
]


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _basic_password(headers: Mapping[str, str] | None) -> str | None:
    value = _header(headers, "authorization")
    if not value or not value.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def verify_shared_secret(
    secret: str,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    param: str = "token",
    provider: str | None = None,
) -> None:
    """Check a callback carries ``secret`` as the ``param`` query value or the Basic-auth password.

    Raises:
        WebhookAuthError: neither place holds the secret.
        ConfigurationError: ``secret`` is empty or blank (that would check nothing).
    """
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigurationError(
            "the webhook shared secret is empty: refusing to check callbacks with it", provider=provider
        )
    expected = secret.encode()
    candidates = [(query or {}).get(param), _basic_password(headers)]
    matched = False
    for candidate in candidates:
        # Compare every candidate so timing does not tell which place was checked.
        given = (candidate or "").encode()
        matched |= bool(candidate) and hmac.compare_digest(given, expected)
    if not matched:
        missing = all(not c for c in candidates)
        raise WebhookAuthError(
            f"webhook {'has no shared secret' if missing else 'shared secret does not match'} "
            f"(expected in the ?{param}= query parameter or the Basic-auth password)",
            provider=provider,
        )


def hmac_hex(secret: str | bytes, body: bytes, algorithm: str = "sha256") -> str:
    """Hex HMAC of ``body`` with ``secret`` (for vendors that sign, and for your tests)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, getattr(hashlib, algorithm)).hexdigest()


def url_signature(secret: str, url: str, fields: Iterable[tuple[str, str]], algorithm: str = "sha1") -> str:
    """Base64 HMAC of ``url`` followed by each form field's name and value, sorted by name then value.

    The "signed URL and fields" scheme of Twilio's ``X-Twilio-Signature`` (key: the Auth Token): a
    name given several times contributes each distinct value, in sorted order.
    """
    grouped: dict[str, set[str]] = {}
    for name, value in fields:
        grouped.setdefault(name, set()).add(value)
    text = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    digest = hmac.new(secret.encode(), text.encode(), getattr(hashlib, algorithm)).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_url_signature(
    secret: str,
    url: str,
    fields: Iterable[tuple[str, str]],
    signature: str | None,
    *,
    header: str = "signature",
    provider: str | None = None,
) -> None:
    """Check ``signature`` is :func:`url_signature` of ``url`` and ``fields``, constant-time.

    The URL is tried as given, without its port and with the scheme's default port (vendors sign
    the URL as they addressed it, and proxies add or drop the port).

    Raises:
        WebhookAuthError: the signature is missing or matches none of those URLs.
    """
    pairs = list(fields)
    given = (signature or "").encode()
    parts = urlsplit(url)
    bare = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    ported = f"{bare}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    matched = False
    for candidate in dict.fromkeys([url, parts._replace(netloc=bare).geturl(), parts._replace(netloc=ported).geturl()]):
        matched |= hmac.compare_digest(url_signature(secret, candidate, pairs).encode(), given)
    if not matched:
        shown = parts._replace(query="", fragment="").geturl()
        problem = "does not match" if signature else "is missing"
        raise WebhookAuthError(f"{header} {problem} (checked against {shown})", provider=provider)


def _default_key(report: DeliveryReport) -> str:
    if report.event_id:
        return f"{report.provider}:{report.event_id}"
    stamp = report.timestamp.isoformat() if report.timestamp else ""
    return f"{report.provider}:{report.message_id}:{report.recipient}:{report.vendor_status}:{stamp}"


@runtime_checkable
class ReplayStore(Protocol):
    """Where a :class:`ReplayGuard` remembers the events it has seen."""

    def add(self, key: str, window: float) -> bool:
        """Remember ``key`` for ``window`` seconds; True if it was new, False if it was remembered already.

        Must be atomic: of two processes adding the same key at once, exactly one gets True.
        """
        ...


class MemoryReplayStore:
    """A :class:`ReplayStore` in this process's memory (thread-safe, at most ``max_entries`` keys).

    Args:
        max_entries: the most keys kept; the oldest are forgotten first.
        clock: time source (tests pass a fake one).
    """

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> when it expires
        self._lock = threading.Lock()

    def add(self, key: str, window: float) -> bool:
        now = self.clock()
        with self._lock:
            while self._seen:
                oldest, expires = next(iter(self._seen.items()))
                if now < expires and len(self._seen) < self.max_entries:
                    break
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now + window
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


class ReplayGuard:
    """Drops delivery reports seen before within ``window`` seconds (thread-safe, bounded memory).

    Example:
        >>> guard = ReplayGuard(window=3600)
        >>> fresh = guard.filter(provider.parse_webhook(body=body, headers=headers))  # doctest: +SKIP

    Several web processes share what they have seen through a shared store:
    ``ReplayGuard(window=3600, store=RedisReplayStore("redis://..."))`` (``omnisend.stores``).

    Args:
        window: how long an event id is remembered, in seconds.
        max_entries: the most ids kept in memory; the oldest are forgotten first (default store only).
        key: how to identify an event; by default the vendor's event id, else
            (provider, message id, recipient, vendor status, timestamp).
        clock: time source of the default store (tests pass a fake one).
        store: where events are remembered (a :class:`ReplayStore`); by default in this process.
    """

    def __init__(
        self,
        *,
        window: float = 3600.0,
        max_entries: int = 100_000,
        key: Callable[[DeliveryReport], str] = _default_key,
        clock: Callable[[], float] = time.monotonic,
        store: ReplayStore | None = None,
    ) -> None:
        self.window = window
        self.max_entries = max_entries
        self.key = key
        """How an event is identified (public, so a shared store can use the same key)."""
        self.clock = clock
        self.store: ReplayStore = (
            store if store is not None else MemoryReplayStore(max_entries=max_entries, clock=clock)
        )

    def seen(self, report: DeliveryReport) -> bool:
        """True if ``report`` was seen within the window; otherwise remember it and return False."""
        return not self.store.add(self.key(report), self.window)

    def filter(self, reports: Iterable[DeliveryReport]) -> list[DeliveryReport]:
        """The reports not seen before (each is remembered)."""
        return [r for r in reports if not self.seen(r)]

    def __len__(self) -> int:
        if not isinstance(self.store, Sized):
            raise TypeError(f"{type(self.store).__name__} cannot count what it holds")
        return len(self.store)
