"""Configuration by URL: one string (or ``OMNISEND_URL``) names a provider, its credential and options.

::

    smsapi://TOKEN@default?sender=Shop         the vendor's production host
    clickatell://KEY@default
    edna://KEY@default?cascade_id=101          other query items are provider options
    mobizon://KEY@api.mobizon.kz               a host instead of ``default`` sets base_url (https)
    webex-connect://KEY@default                a URL scheme cannot hold ``_``: ``-`` instead
    twilio://SID:TOKEN@default
    smsapi://TOKEN@127.0.0.1:8080?tls=0        http://127.0.0.1:8080 (an emulator)
    failover(smsapi://T@default clickatell://K@default)
    roundrobin(smsapi://T@default?weight=3 mobizon://K@default?weight=1)

The credential is percent-decoded (write ``@`` as ``%40``, ``:`` as ``%3A``, ``/`` as ``%2F``);
left out (``smsapi://default``), it comes from the provider's environment variable. Query
values are typed from the provider's signature: ``1``/``0``/``true``/``false`` for a flag,
``sms:101,whatsapp:102`` for a mapping, an IANA name for a time zone. ``weight``, ``name`` and
``sender`` are route settings (:class:`omnisend.routing.Route`) inside a router; on a single URL
``sender`` makes a one-route router that sends every message with that sender.

A bad URL is a :class:`~omnisend.ConfigurationError` whose text never shows the credential (nor
any query value whose name says it is a secret).
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final, Literal, Union
from urllib.parse import parse_qsl, unquote

from .errors import ConfigurationError
from .providers import PROVIDERS, Provider, get_provider

__all__ = ["ENV_VAR", "ROUTERS", "URL_CREDENTIALS", "from_env", "from_url", "redact_url", "scheme_of"]

ENV_VAR: Final = "OMNISEND_URL"

#: provider id → the constructor arguments the URL's user part fills, in order (``USER:PASSWORD``).
URL_CREDENTIALS: Final[dict[str, tuple[str, ...]]] = {
    "smsapi": ("token",),
    "clickatell": ("api_key",),
    "edna": ("api_key",),
    "mobizon": ("api_key",),
    "webex_connect": ("service_key",),
    "twilio": ("account_sid", "auth_token"),
}

#: URL function name → router class name in :mod:`omnisend.routing`.
ROUTERS: Final = {"failover": "Failover", "roundrobin": "RoundRobin"}

#: Route settings a URL inside a router may carry (``Route(provider, weight=, name=, sender=)``).
_ROUTE_ITEMS: Final = ("weight", "name", "sender")
_SECRET_WORDS: Final = ("secret", "key", "token", "password", "sid", "auth")
_HOST: Final = re.compile(r"(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def scheme_of(provider_id: str) -> str:
    """The URL scheme of a provider id (``webex_connect`` → ``webex-connect``)."""
    return provider_id.replace("_", "-")


def _provider_id(scheme: str) -> str | None:
    name = scheme.lower().replace("-", "_")
    return name if name in PROVIDERS else None


def redact_url(url: str) -> str:
    """``url`` with its credential (and secret-looking query values) replaced by ``***``."""
    text = url.strip()
    if "(" in text:
        return text.split("(", 1)[0] + "(...)"
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "***" if text else "''"
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    path, qsep, query = tail.partition("?")
    if qsep:
        items = []
        for item in query.split("&"):
            key, eq, _ = item.partition("=")
            items.append(f"{key}=***" if eq and _is_secret(key) else item)
        tail = path + "?" + "&".join(items)
    return f"{scheme}://{netloc}{tail}"


def _is_secret(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in _SECRET_WORDS)


class _Bad(Exception):
    """A parse failure: the message only (the URL is added, redacted, by :func:`from_url`)."""


def from_url(url: str) -> Provider:
    """The provider (or router) a URL describes; see the module docstring for the forms.

    Raises:
        ConfigurationError: the URL is malformed, names an unknown vendor or option, or the
            provider refuses its settings. The message never contains the credential.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"an omnisend URL must be a str, got {type(url).__name__}")
    text = url.strip()
    try:
        return _parse(text)
    except _Bad as exc:
        raise ConfigurationError(f"bad omnisend URL {redact_url(text)}: {exc}") from None


def from_env(variable: str = ENV_VAR) -> Provider:
    """The provider described by the URL in the environment variable ``variable`` (``OMNISEND_URL``)."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ConfigurationError(
            f"{variable} is not set: set it to a provider URL such as smsapi://TOKEN@default "
            "(see omnisend providers for every scheme)"
        )
    return from_url(value)


def _parse(text: str) -> Provider:
    head, paren, _ = text.partition("(")
    if paren and "://" not in head:
        provider, rest = _router(text)
        if rest.strip():
            raise _Bad(f"unexpected text after the closing parenthesis: {rest.strip()[:20]!r}")
        return provider
    provider, route = _single(text)
    if route:
        if set(route) - {"sender"}:
            raise _Bad(
                f"{', '.join(sorted(set(route) - {'sender'}))} only make sense inside failover(...) or roundrobin(...)"
            )
        return _with_route(provider, route)
    return provider


def _routing() -> Any:
    try:
        import importlib

        return importlib.import_module("omnisend.routing")
    except ModuleNotFoundError as exc:  # pragma: no cover - routing ships with omnisend
        raise _Bad("routers need omnisend.routing, which this installation lacks") from exc


def _with_route(provider: Provider, route: Mapping[str, Any]) -> Provider:
    """A single URL with ``sender``: a one-route router that fills in the sender."""
    routing = _routing()
    try:
        router: Provider = routing.Failover(routing.Route(provider, **route))
    except ConfigurationError as exc:
        raise _Bad(exc.message) from None
    return router


def _router(text: str) -> tuple[Provider, str]:
    """Parse ``name(item item ...)`` at the start of ``text``; returns the router and what follows."""
    name, _, rest = text.partition("(")
    kind = name.strip().lower()
    if kind not in ROUTERS:
        raise _Bad(f"unknown router {name.strip()!r}; use {' or '.join(f'{r}(...)' for r in ROUTERS)}")
    routing = _routing()
    routes: list[Any] = []
    rest = rest.lstrip()
    while True:
        if not rest:
            raise _Bad(f"{kind}( is not closed with )")
        if rest.startswith(")"):
            rest = rest[1:]
            break
        token_end = len(rest)
        for stop in (" ", "\t", "\n", ")"):
            index = rest.find(stop)
            if index >= 0:
                token_end = min(token_end, index)
        paren = rest.find("(")
        if 0 <= paren < token_end and "://" not in rest[:paren]:
            inner, rest = _router(rest)
            routes.append(inner)
        else:
            provider, route = _single(rest[:token_end])
            try:
                routes.append(routing.Route(provider, **route) if route else provider)
            except ConfigurationError as exc:
                raise _Bad(exc.message) from None
            rest = rest[token_end:]
        rest = rest.lstrip()
    if not routes:
        raise _Bad(f"{kind}() needs at least one provider URL")
    try:
        router: Provider = getattr(routing, ROUTERS[kind])(*routes)
    except ConfigurationError as exc:
        raise _Bad(exc.message) from None
    return router, rest


def _single(text: str) -> tuple[Provider, dict[str, Any]]:
    """One provider URL → (provider, route settings found in its query)."""
    parts = _split(text)
    cls = get_provider(parts.provider_id)
    credentials = URL_CREDENTIALS.get(parts.provider_id, ())
    kwargs = _credentials(parts, credentials)
    options, route, tls = _query(cls, parts.query, credentials)
    base_url = _base_url(parts, tls)
    if base_url is not None:
        kwargs["base_url"] = base_url
    kwargs.update(options)
    return _construct(cls, parts.provider_id, kwargs), route


@dataclass(frozen=True)
class _Parts:
    """The pieces of ``SCHEME://[USERINFO@]HOST[/PATH][?QUERY][#FRAGMENT]`` (the fragment is dropped)."""

    scheme: str
    provider_id: str
    userinfo: str
    host: str
    path: str
    query: str


def _split(text: str) -> _Parts:
    """``text`` in pieces, checked: a provider's scheme and a well-formed host."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise _Bad("expected SCHEME://CREDENTIAL@HOST, for example smsapi://TOKEN@default")
    provider_id = _provider_id(scheme)
    if provider_id is None:
        known = ", ".join(scheme_of(p) for p in PROVIDERS)
        raise _Bad(f"unknown provider scheme {scheme!r}; known: {known}")
    rest, _, _fragment = rest.partition("#")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    path, _, query = tail.partition("?")
    userinfo, _, host = netloc.rpartition("@")
    if not host:
        raise _Bad("no host: write @default for the vendor's production host")
    if not _HOST.fullmatch(host):
        raise _Bad(f"bad host {host!r}: expected default, a host name or an address, with an optional :port")
    return _Parts(scheme, provider_id, userinfo, host, path, query)


def _credentials(parts: _Parts, credentials: tuple[str, ...]) -> dict[str, Any]:
    """The constructor arguments the user part fills (``USER:PASSWORD``, percent-decoded); one left
    empty, or the whole user part left out, comes from the provider's environment variable."""
    if not parts.userinfo:
        return {}
    given = parts.userinfo.split(":", len(credentials) - 1) if len(credentials) > 1 else [parts.userinfo]
    if len(given) != len(credentials):
        raise _Bad(f"{parts.scheme} wants {':'.join(c.upper() for c in credentials)} before the @")
    return {argument: unquote(value) for argument, value in zip(credentials, given, strict=True) if value}


def _base_url(parts: _Parts, tls: bool | None) -> str | None:
    """The ``base_url`` a host other than ``default`` sets (https unless ``tls=0``)."""
    if parts.host.lower() != "default":
        return f"{'https' if tls in (None, True) else 'http'}://{parts.host}{parts.path.rstrip('/')}"
    if parts.path.strip("/"):
        raise _Bad("a path needs a host, not default")
    if tls is not None:
        raise _Bad("tls= needs a host, not default")
    return None


def _construct(cls: type[Provider], provider_id: str, kwargs: dict[str, Any]) -> Provider:
    """``cls(**kwargs)``, its refusal as a parse failure (the provider's own message, no credential)."""
    try:
        return cls(**kwargs)
    except ConfigurationError as exc:
        raise _Bad(exc.message if exc.message.startswith(f"{provider_id}:") else str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise _Bad(f"{provider_id}: {type(exc).__name__}: {exc}") from None


def _query(
    cls: type[Provider], query: str, credentials: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any], bool | None]:
    """Query items → (provider options, route settings, tls)."""
    try:
        items = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _Bad("the query is not NAME=VALUE&NAME=VALUE") from None
    hints = _hints(cls)
    options: dict[str, Any] = {}
    route: dict[str, Any] = {}
    tls: bool | None = None
    seen: set[str] = set()
    for name, value in items:
        if name in seen:
            raise _Bad(f"{name} is given twice")
        seen.add(name)
        if name == "tls":
            tls = _flag(name, value)
        elif name in _ROUTE_ITEMS:
            route[name] = _route_value(name, value)
        else:
            options[name] = _option(cls, hints, credentials, name, value)
    return options, route, tls


def _option(cls: type[Provider], hints: dict[str, Any], credentials: tuple[str, ...], name: str, value: str) -> Any:
    """A provider option of the query, typed from the constructor's signature."""
    if name in credentials or name == "base_url":
        raise _Bad(f"{name} goes in the URL itself, not in the query")
    if name not in hints:
        known = ", ".join(sorted(n for n in hints if n not in credentials and n != "base_url"))
        raise _Bad(
            f"unknown option {name!r} for {cls.name} (options: {known or 'none'}; and tls, {', '.join(_ROUTE_ITEMS)})"
        )
    return _coerce(name, value, hints[name])


def _route_value(name: str, value: str) -> Any:
    if name == "weight":
        try:
            weight = float(value)
        except ValueError:
            raise _Bad(f"weight must be a number, got {value!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise _Bad(f"weight must be a finite number >= 0 (0: a fallback only), got {value!r}")
        return int(weight) if weight.is_integer() else weight
    if not value:
        raise _Bad(f"{name} is empty")
    return value


def _hints(cls: type[Provider]) -> dict[str, Any]:
    """Keyword parameters of the provider's constructor → their resolved type hints."""
    signature = inspect.signature(cls.__init__)
    try:
        resolved = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an unresolvable hint falls back to text
        resolved = {}
    return {
        name: resolved.get(name, str)
        for name, parameter in signature.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _shown(name: str, value: str) -> str:
    return "***" if _is_secret(name) else repr(value)


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _Bad(f"{name} must be 1 or 0 (true or false), got {_shown(name, value)}")


def _coerce(name: str, value: str, hint: Any) -> Any:
    """``value`` read as the type ``hint`` of the constructor parameter ``name``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return _one_of(name, value, hint)
    if origin is Literal:
        return _literal(name, value, hint)
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return _mapping(name, value, hint)
    read = _READERS.get(hint)
    if read is None:
        raise _Bad(f"{name} cannot be set in a URL; pass it to the provider's constructor")
    return read(name, value)


def _one_of(name: str, value: str, hint: Any) -> Any:
    """A union (``None`` aside): the first arm that reads ``value``."""
    arms = [arm for arm in typing.get_args(hint) if arm is not type(None)]
    failures = []
    for arm in arms:
        try:
            return _coerce(name, value, arm)
        except _Bad as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    forms = ", ".join(getattr(typing.get_origin(arm) or arm, "__name__", str(arm)) for arm in arms)
    raise _Bad(f"{name} must be one of: {forms}; got {_shown(name, value)}")


def _literal(name: str, value: str, hint: Any) -> str:
    allowed = typing.get_args(hint)
    if value in allowed:
        return value
    raise _Bad(f"{name} must be one of {', '.join(map(str, allowed))}, got {_shown(name, value)}")


def _mapping(name: str, value: str, hint: Any) -> dict[str, Any]:
    """``KEY:VALUE,KEY:VALUE``, each value read as the mapping's value type."""
    _, value_hint = typing.get_args(hint) or (str, str)
    result = {}
    for pair in filter(None, value.split(",")):
        key, colon, item = pair.partition(":")
        if not colon or not key:
            raise _Bad(f"{name} must read KEY:VALUE,KEY:VALUE, got {_shown(name, value)}")
        result[key] = _coerce(name, item, value_hint)
    return result


def _number(kind: type[int] | type[float], name: str, value: str) -> int | float:
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise _Bad(f"{name} must be {what}, got {_shown(name, value)}") from None


def _verbatim(name: str, value: str) -> str:
    return value


def _zone(name: str, value: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Bad(f"{name} must be an IANA time zone such as Asia/Almaty, got {_shown(name, value)}") from None


#: The plain types a query value can be read as: hint → reader.
_READERS: Final[dict[Any, Callable[[str, str], Any]]] = {
    bool: _flag,
    int: functools.partial(_number, int),
    float: functools.partial(_number, float),
    str: _verbatim,
    Any: _verbatim,
    tzinfo: _zone,
}
