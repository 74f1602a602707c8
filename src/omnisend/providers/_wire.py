"""The hot-path shortcuts of request building, each byte for byte what httpx builds itself.

Parsed URLs, query URLs and form headers are cached (bounded), forms are encoded in one pass.
Each shortcut has an equivalence test beside it in ``tests/test_hot_path.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar
from urllib.parse import quote_plus

import httpx

R = TypeVar("R")


_URLS: dict[str, httpx.URL] = {}
_URLS_MAX: Final = 256


def _url(text: str) -> httpx.URL:
    """``httpx.URL(text)``, parsed once per distinct URL (parsing is a good part of building a request)."""
    url = _URLS.get(text)
    if url is None:
        url = httpx.URL(text)
        if len(_URLS) < _URLS_MAX:  # bounded: URLs that carry ids are parsed each time
            _URLS[text] = url
    return url


def _query_url(url: str, params: dict[str, str]) -> str:
    """``str(httpx.URL(url, params=params))`` for a URL without a query: what httpx sends for ``params=``."""
    key = (url, *params.items())
    text = _QUERY_URLS.get(key)
    if text is None:
        text = str(httpx.URL(url, params=params))
        if len(_QUERY_URLS) < _URLS_MAX:
            _QUERY_URLS[key] = text
    return text


_QUERY_URLS: dict[tuple[object, ...], str] = {}


_FORM: Final = "application/x-www-form-urlencoded"
_SET_BY_HTTPX: Final = frozenset({"host", "content-type", "content-length", "transfer-encoding"})


def _plain_form(data: dict[Any, Any], headers: Mapping[str, str]) -> bool:
    """Whether ``data`` is a flat str → str form, and ``headers`` leave the framing to us."""
    return {*map(type, data), *map(type, data.values())} <= _STR_ONLY and _SET_BY_HTTPX.isdisjoint(
        k.lower() for k in headers
    )


_STR_ONLY: Final = frozenset({str})
_FORM_ARGS: Final = frozenset({"data", "params"})


def _form_request(method: str, url: str, headers: dict[str, str], body: bytes) -> httpx.Request:
    """``httpx.Request(method, url, headers=headers, content=body)`` for a form, headers normalised once.

    The same request httpx builds (``Host`` first, the caller's headers, then the form's
    ``Content-Length`` and ``Content-Type``; ``.content`` readable). httpx normalises every
    header of every request, twice; here the framed headers are normalised once per distinct
    (URL, body length, headers) and copied for each request.
    """
    key = (url, len(body), *headers.items())
    frame = _FRAMES.get(key)
    parsed = _url(url)
    if frame is None:
        frame = httpx.Headers(
            [
                ("Host", parsed.netloc.decode("ascii")),
                *headers.items(),
                ("Content-Length", str(len(body))),
                ("Content-Type", _FORM),
            ]
        )
        if len(_FRAMES) < _FRAMES_MAX:  # bounded: a few hundred body lengths per endpoint
            _FRAMES[key] = frame
    request = httpx.Request(method, parsed, headers=frame, stream=httpx.ByteStream(body))  # copies ``frame``
    request.headers.encoding = frame.encoding  # worked out once per frame, not per request
    request.read()  # sets .content, as httpx does for a body given as bytes
    return request


_FRAMES: dict[tuple[object, ...], httpx.Headers] = {}
_FRAMES_MAX: Final = 2048


# ``quote_plus`` for ASCII text as one ``str.translate``: a space becomes ``+``, every character
# other than the unreserved ones (letters, digits, ``_.-~``) its ``%XX``.
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_TABLE: Final = tuple(
    "+" if code == 32 else chr(code) if chr(code) in _UNRESERVED else f"%{code:02X}" for code in range(128)
)  # a sequence indexed by code point: str.translate reads it faster than a dict


def _form_quote(text: str) -> str:
    """``quote_plus(text)``, byte for byte."""
    if text.isascii():
        return text if text.isalnum() else text.translate(_FORM_TABLE)
    return quote_plus(text)


def _encode_form(data: dict[str, str]) -> bytes:
    """``urlencode(data).encode()``, byte for byte (field names, a handful per vendor, encoded once)."""
    last = _FORM_LAST
    parts = []
    for key, value in data.items():
        seen = last.get(key)
        if seen is not None and seen[0] == value:
            parts.append(seen[1])  # a constant field (format=json): encoded once
            continue
        pair = f"{_form_quote(key)}={value if value.isalnum() and value.isascii() else _form_quote(value)}"
        if seen is not None or len(last) < _FORM_LAST_MAX:
            last[key] = (value, pair)
        parts.append(pair)
    return "&".join(parts).encode()


# Per field name, the last value encoded and its ``name=value`` text (field names are a handful
# per vendor; a value that repeats, as most do, is then encoded once).
_FORM_LAST: dict[str, tuple[str, str]] = {}
_FORM_LAST_MAX: Final = 1024
