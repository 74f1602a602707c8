"""Declared settings: an adapter's constructor written as a declaration (as dataclasses and pydantic do).

An adapter lists its keyword-only settings as annotated class attributes whose value is a
:func:`setting`; :class:`~omnisend.providers.Provider` generates ``__init__`` from them, runs the
declared checks before anything else (each refusal a :class:`~omnisend.ConfigurationError` naming
the argument), stores the values, then calls the adapter's ``__post_init__`` (derived values) and
picks the base URL (``base_url``, else the declared :class:`Hosts`, else ``default_base_url``)::

    class Acme(Provider):
        _token: Credential = setting(default=None, alias="token", credential=True)
        region: Literal["eu", "us"] = setting(default="eu", choices=("eu", "us"), repr=True)
        base_url: BaseURL = setting(default=None)
        webhook_secret: str | None = setting(default=None, callback_secret=True)
        hosts = Hosts("https://{region}.acme.example", "region")

    Acme(token="t", region="us").base_url == "https://us.acme.example"

Type checkers see the generated signature (``dataclass_transform`` on ``Provider``). The attribute
is the class attribute's name; ``alias=`` names the argument when they differ (a credential kept in
``_token`` is passed as ``token=``). Where the stored type is not the argument's, the annotation
says both: :data:`Credential` (``str | None`` in, ``str`` stored), :data:`BaseURL`, or
``Converted[In, Stored]`` with a ``convert=`` function.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, overload
from urllib.parse import urlsplit

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .base import Provider

__all__ = ["BaseURL", "Converted", "Credential", "Hosts", "Setting", "setting"]

In = TypeVar("In")
Out = TypeVar("Out")


class _Missing:
    """The default of a setting that has none (the argument is then required)."""

    def __repr__(self) -> str:
        return "<required>"


MISSING: Final = _Missing()


class Converted(Generic[In, Out]):
    """The annotation of a setting taken as ``In`` and stored as ``Out`` (by a check or ``convert=``).

    Only type checkers read it (as a descriptor: the constructor takes ``In``, the attribute is
    ``Out``); at run time the instance attribute holds the stored value.
    """

    if TYPE_CHECKING:

        @overload
        def __get__(self, instance: None, owner: Any) -> Converted[In, Out]: ...
        @overload
        def __get__(self, instance: object, owner: Any) -> Out: ...
        def __get__(self, instance: object, owner: Any) -> Any: ...
        def __set__(self, instance: object, value: In) -> None: ...


#: A required credential: ``None`` (read from the environment) or text in; checked text stored.
Credential = Converted[str | None, str]
#: ``base_url``: ``None`` (the vendor's host) or a URL in; the URL requests go to stored.
BaseURL = Converted[str | None, str]


@dataclass(frozen=True)
class Setting:
    """One declared constructor setting (made by :func:`setting`; see its arguments)."""

    default: Any = MISSING
    alias: str | None = None
    env: str | None = None
    credential: bool = False
    required: bool = True
    instead_of: str | None = None
    pattern: str | None = None
    rule: str = ""
    callback_secret: bool = False
    secret: bool | None = None
    choices: Collection[Any] | None = None
    schemes: tuple[str, ...] | None = None
    positive: bool = False
    between: tuple[int, int] | None = None
    convert: Callable[[Any], Any] | None = None
    repr: bool = False
    name: str = ""
    """The attribute (set when the class is made)."""
    annotation: Any = Any
    """What the constructor takes (resolved from the declaration when the class is made)."""

    @property
    def argument(self) -> str:
        return self.alias or self.name

    @property
    def is_secret(self) -> bool:
        return (self.credential or self.callback_secret) if self.secret is None else self.secret

    def value(self, cls: type[Provider], value: Any) -> Any:
        """``value`` checked as declared (``ConfigurationError`` naming the argument), then converted."""
        env = self.env or (cls.credential_env if self.credential and self.instead_of is None else None)
        if value is None and env:
            value = os.environ.get(env)
        if self.credential:
            value = self._credential(cls, value, env)
        elif value is not None:
            value = self._checked(cls, value)
        return value if self.convert is None else self.convert(value)

    def _credential(self, cls: type[Provider], value: Any, env: str | None) -> str | None:
        """A credential: printable ASCII text, stripped; ``None`` only when not required."""
        required = self.required and not (self.instead_of and value is None)
        if not required and value is None:
            return None
        if value is None or (required and (not isinstance(value, str) or not value.strip())):
            hint = f" or set {env}" if env else ""
            _refuse(cls, f"no {self.argument}. Pass {cls.__name__}({self.argument}=...){hint}.")
        return self._credential_text(cls, value, required)

    def _credential_text(self, cls: type[Provider], value: Any, required: bool) -> str:
        text = value.strip() if isinstance(value, str) else ""
        if not (text and text.isascii() and text.isprintable()):
            what = "contains" if required else "is empty or contains"
            _refuse(
                cls, f"{self.argument} {what} a non-ASCII or control character; copy it again from the vendor's panel"
            )
        if self.pattern is not None and not re.fullmatch(self.pattern, text):
            _refuse(cls, f"{self.argument} must be {self.rule or repr(self.pattern)}")
        return text

    def _checked(self, cls: type[Provider], value: Any) -> Any:
        """The declared checks of a setting that is not ``None``."""
        argument = self.argument
        if self.callback_secret and (not isinstance(value, str) or not value.strip()):
            _refuse(
                cls,
                f"{argument} is empty; pass the secret, or leave it out (None) to accept unauthenticated callbacks",
            )
        if self.choices is not None and value not in self.choices:
            names = [str(option) for option in self.choices]
            listed = ", ".join(names if isinstance(self.choices, Sequence) else sorted(names))
            _refuse(cls, f"{argument} must be one of {listed}, got {value!r}")
        if self.schemes is not None:
            checked_url(cls, value, argument=argument, schemes=self.schemes)
        return self._number(cls, value)

    def _number(self, cls: type[Provider], value: Any) -> Any:
        """The checks of ``positive`` and ``between``."""
        if self.positive:
            kind = type(self.default)
            if isinstance(value, bool) or not isinstance(value, kind) or not value > kind():
                _refuse(cls, f"{self.argument} must be a positive {kind.__name__}, got {value!r}")
        if self.between is not None:
            low, high = self.between
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                _refuse(cls, f"{self.argument} must be an int from {low} to {high}, got {value!r}")
        return value


def setting(
    *,
    default: Any = MISSING,
    alias: str | None = None,
    env: str | None = None,
    credential: bool = False,
    required: bool = True,
    instead_of: str | None = None,
    pattern: str | None = None,
    rule: str = "",
    callback_secret: bool = False,
    secret: bool | None = None,
    choices: Collection[Any] | None = None,
    schemes: tuple[str, ...] | None = None,
    positive: bool = False,
    between: tuple[int, int] | None = None,
    convert: Callable[[Any], Any] | None = None,
    repr: bool = False,
) -> Any:
    """Declare a constructor setting of a provider (the class attribute's value; see the module docs).

    Args:
        default: the value when the argument is not given (none: the argument is required).
        alias: the argument's name when it differs from the attribute's (``_token`` ← ``token=``).
        env: the environment variable read when the argument is ``None``.
        credential: a credential: printable ASCII text, stripped; read from ``env`` (else the
            class's ``credential_env``) when not given; "no <argument>. Pass ..." when missing.
            A secret unless ``secret=False``.
        required: (credentials) ``False``: may stay ``None``.
        instead_of: (credentials) the argument this one replaces when given (that one is then
            neither read nor required); not given, this one is ``None``.
        pattern: (credentials) a regular expression the whole value must match; ``rule`` says it
            in words ("must be <rule>").
        callback_secret: a webhook secret: ``None`` (callbacks not checked) or non-blank text; an
            empty one is refused rather than taken for "no secret". A secret.
        secret: whether the value is kept out of every error, repr and log (``secret_attributes``).
        choices: the allowed values.
        schemes: the value is an absolute URL of one of these schemes.
        positive: the value is of the default's type and above its zero (``timedelta``, ``int``).
        between: ``(low, high)``: the value is an int in that range.
        convert: applied to the value after the checks (``None`` included), its result stored.
        repr: shown in the provider's ``repr`` (never a secret).

    Every check but ``credential``'s lets ``None`` through: it is the "not set" of an optional setting.
    """
    if repr and ((credential or callback_secret) if secret is None else secret):
        raise TypeError("a secret setting cannot be shown in repr")
    return Setting(
        default=default,
        alias=alias,
        env=env,
        credential=credential,
        required=required,
        instead_of=instead_of,
        pattern=pattern,
        rule=rule,
        callback_secret=callback_secret,
        secret=secret,
        choices=choices,
        schemes=schemes,
        positive=positive,
        between=between,
        convert=convert,
        repr=repr,
    )


@dataclass(frozen=True)
class Hosts:
    """The vendor's host chosen by settings (the class attribute ``hosts``), when ``base_url`` is not given.

    ``Hosts(TABLE, "region")``: ``TABLE[provider.region]``; ``Hosts(TABLE, "api", "region")``:
    ``TABLE[provider.api, provider.region]`` (a pair the table lacks is a ``ConfigurationError``
    naming each setting's values); ``Hosts("https://api.{region}.example", "region")``: the text
    formatted with those settings.
    """

    table: str | Mapping[Any, str]
    keys: tuple[str, ...]

    def __init__(self, table: str | Mapping[Any, str], *keys: str) -> None:
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "keys", keys)

    def url(self, cls: type[Provider], values: Mapping[str, Any]) -> str:
        """The URL for the settings ``values`` (attribute → value) of a provider of class ``cls``."""
        if isinstance(self.table, str):
            return self.table.format(**values)
        key = tuple(values[k] for k in self.keys) if len(self.keys) > 1 else values[self.keys[0]]
        if key not in self.table:
            _refuse(cls, self._refusal(key))
        return self.table[key]

    def _refusal(self, key: Any) -> str:
        keys = [k if isinstance(k, tuple) else (k,) for k in self.table]
        allowed = [" or ".join(repr(v) for v in dict.fromkeys(k[i] for k in keys)) for i in range(len(self.keys))]
        parts = [f"{name} {values}" for name, values in zip(self.keys, allowed, strict=True)]
        got = ", ".join(map(repr, key if isinstance(key, tuple) else (key,)))
        return f"{self.keys[0]} must be {allowed[0]}" + "".join(f" and {p}" for p in parts[1:]) + f", got {got}"


def _refuse(cls: type[Provider], message: str) -> typing.NoReturn:
    raise ConfigurationError(message, provider=cls.name)


def checked_url(cls: type[Provider], value: Any, *, argument: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``value`` when it is an absolute URL of one of ``schemes``; ``ConfigurationError`` otherwise."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in schemes or not parts.netloc:
        kind = "an https" if schemes == ("https",) else "an http(s)"
        _refuse(cls, f"{argument} must be {kind} URL, got {value!r}")
    return typing.cast(str, value)


# -- the class side: collecting declarations, the generated __init__ ---------------------------------

#: ``base_url`` of a class that does not declare it: taken last, ``None`` by default.
IMPLICIT_BASE_URL: Final = Setting(default=None, name="base_url", annotation=str | None)


def declare(cls: type[Provider]) -> None:
    """Collect ``cls``'s own :func:`setting` declarations (called when the class is made): its
    ``__settings__`` (argument → :class:`Setting`, the inherited ones first), ``secret_attributes``,
    ``default_base_url`` from ``hosts``, and a generated ``__init__`` with the signature they make."""
    parent: dict[str, Setting] = getattr(cls, "__settings__", {"base_url": IMPLICIT_BASE_URL})
    own = _own_settings(cls)
    settings = {k: s for k, s in parent.items() if s is not IMPLICIT_BASE_URL}
    settings.update((s.argument, s) for s in own)
    settings.setdefault("base_url", IMPLICIT_BASE_URL)
    cls.__settings__ = settings
    for item in own:
        if item.default is MISSING:
            delattr(cls, item.name)
        else:
            setattr(cls, item.name, item.default)
    secret = [s.name for s in own if s.is_secret]
    if secret:
        cls.secret_attributes = tuple(dict.fromkeys([*cls.secret_attributes, *secret]))
    hosts = cls.__dict__.get("hosts")
    if isinstance(hosts, Hosts) and "default_base_url" not in cls.__dict__:
        cls.default_base_url = hosts.url(cls, {s.name: s.default for s in settings.values()})
    if own and "__init__" not in cls.__dict__:
        cls.__init__ = _generated_init(cls, settings)  # type: ignore[method-assign]


def _own_settings(cls: type) -> list[Setting]:
    annotations = inspect.get_annotations(cls)
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    found = []
    for name, value in list(cls.__dict__.items()):
        if not isinstance(value, Setting):
            continue
        if name not in annotations:
            raise TypeError(f"{cls.__name__}.{name} = setting(...) needs an annotation (the argument's type)")
        found.append(replace(value, name=name, annotation=_argument_type(annotations[name], namespace, cls)))
    return found


def _argument_type(annotation: Any, namespace: dict[str, Any], cls: type) -> Any:
    """The type the constructor takes for a declared annotation (``Converted[In, ...]`` → ``In``);
    the annotation's text when it cannot be resolved here."""
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, namespace, dict(vars(cls)))
        except Exception:  # noqa: BLE001 - a name only a type checker knows: keep the text
            return annotation
    if typing.get_origin(annotation) is Converted:
        return typing.get_args(annotation)[0]
    return annotation


def _generated_init(cls: type[Provider], settings: Mapping[str, Setting]) -> Callable[..., None]:
    from .base import Provider

    def init(self: Provider, **values: Any) -> None:
        Provider.__init__(self, **values)

    init.__name__, init.__qualname__ = "__init__", f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = f"Generated from {cls.__name__}'s declared settings (see the class docstring)."
    return describe(init, settings)


def describe(init: Callable[..., None], settings: Mapping[str, Setting]) -> Callable[..., None]:
    """``init`` with the signature and annotations of ``settings`` (what ``inspect`` and ``get_type_hints`` read)."""
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for argument, item in settings.items():
        default = inspect.Parameter.empty if item.default is MISSING else item.default
        parameters.append(
            inspect.Parameter(argument, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=item.annotation)
        )
    init.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    init.__annotations__ = {**{a: s.annotation for a, s in settings.items()}, "return": None}
    return init


def apply(provider: Provider, values: Mapping[str, Any]) -> None:
    """Check and store the declared settings of ``provider`` from the constructor's ``values``."""
    cls = type(provider)
    settings: Mapping[str, Setting] = getattr(cls, "__settings__", {"base_url": IMPLICIT_BASE_URL})
    for argument in values:
        if argument not in settings:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {argument!r}")
    replaced = {s.instead_of for s in settings.values() if s.instead_of and values.get(s.argument) is not None}
    for argument, item in settings.items():
        if argument in replaced:
            setattr(provider, item.name, None)
            continue
        value = values.get(argument, item.default)
        if value is MISSING:
            raise TypeError(f"{cls.__name__}() missing a required keyword argument: {argument!r}")
        setattr(provider, item.name, item.value(cls, value))


def shown(provider: Provider) -> str:
    """``Name(setting=value, ..., base_url=...)``: the settings declared ``repr=True`` and the base URL."""
    settings: Mapping[str, Setting] = getattr(type(provider), "__settings__", {})
    items = [f"{a}={getattr(provider, s.name)!r}" for a, s in settings.items() if s.repr and a != "base_url"]
    items.append(f"base_url={getattr(provider, 'base_url', None)!r}")
    return f"{type(provider).__name__}({', '.join(items)})"
