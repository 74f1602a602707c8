"""The HTTP clients omnisend makes for itself, and the short way it sends through them.

When the caller passes no ``http_client``, omnisend owns the client and knows everything about
it: no auth, no event hooks, no cookies it should keep, redirects never followed. Then a send
can skip what ``httpx.Client.send`` does for the general case and a vendor call never needs —
the auth and redirect generators, copying every ``Set-Cookie`` into a cookie jar (about a
quarter of a sync send's CPU) — and hand the request straight to the transport the client
would have picked for its URL (proxies from the environment included). The answer is the same
``httpx.Response``, its body read by the client's bounded loop exactly as on the general path.

``AsyncClient`` gets an aiohttp-backed client (``omnisend.transports.aiohttp_client``'s, with a
pool of :data:`POOL` connections) instead of ``httpx.AsyncClient``: httpx's own async pool is an
order of magnitude slower under concurrency. When the environment configures a proxy
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``), the default stays ``httpx.AsyncClient``, which
applies them per URL exactly as before; ``aiohttp_client(proxy=...)`` is the fast way there.

aiohttp is imported only when an ``AsyncClient`` makes its client: ``Client`` never loads it.

The request-building shortcuts live here too (the end of the module): parsed URLs, query URLs and
form headers cached (bounded), forms encoded in one pass, each byte for byte what httpx builds.
Every shortcut of this module has its equivalence test beside it: ``tests/test_wire.py`` for the
sending side, ``tests/test_hot_path.py`` for request building.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote_plus

import httpcore
import httpx

__all__ = ["POOL", "direct", "forget", "log_request", "make_async_http", "make_sync_http", "send_direct"]

_HTTPX_LOG = logging.getLogger("httpx")

#: Connections the default ``AsyncClient`` keeps open at most (httpx's own default limit).
POOL = 100


def direct(http: httpx.Client) -> bool:
    """Whether :func:`send_direct` may stand in for ``http.send``: nothing was added to the client
    omnisend made that ``send`` would apply (event hooks, such as ``omnisend.celery``'s rate
    slots, or auth)."""
    hooks = http.event_hooks
    return not hooks["request"] and not hooks["response"] and http.auth is None


def send_direct(http: httpx.Client, request: httpx.Request) -> httpx.Response:
    """``http.send(request, stream=True, follow_redirects=False)`` for a client omnisend made.

    The transport ``http`` would use for this URL (a proxy mount from the environment, or the
    connection pool) sends the request; the answer comes back unread, as with ``stream=True``.
    What is skipped: auth and redirect flows (omnisend's client has no auth and never follows),
    cookie extraction (nothing ever reads that jar: omnisend builds its requests itself) and
    ``response.elapsed``. httpx's ``HTTP Request:`` INFO log line is kept.
    """
    if "timeout" not in request.extensions:
        request.extensions["timeout"] = http.timeout.as_dict()
    response = http._transport_for_url(request.url).handle_request(request)
    response.request = request
    if _HTTPX_LOG.isEnabledFor(logging.INFO):
        log_request(request, response)
    return response


def log_request(request: httpx.Request, response: httpx.Response) -> None:
    """httpx's own ``HTTP Request:`` INFO line (the caller checks the level first)."""
    _HTTPX_LOG.info(
        'HTTP Request: %s %s "%s %d %s"',
        request.method,
        request.url,
        response.http_version,
        response.status_code,
        response.reason_phrase,
    )


def make_sync_http(timeout: httpx.Timeout | None) -> httpx.Client:
    """The ``httpx.Client`` a default ``Client`` sends through: httpx's, with every socket read
    bounded by the call's deadline (``omnisend._deadline``) and each request written at once.

    httpcore writes a request's head and body with one socket send each; on loopback or a fast
    link each send wakes the peer and costs a system call, a tenth of a small request's CPU.
    The connections of this client hold what httpcore writes until it turns to read the answer
    (:class:`_Coalescing`), so a request leaves in one send. The bytes on the wire are the same.
    """
    from ._deadline import deadline_transport  # every socket read ends by the call's deadline

    http = httpx.Client(timeout=timeout, transport=deadline_transport())
    for transport in (http._transport, *http._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.ConnectionPool):  # HTTPProxy too; SOCKS and others are left alone
            pool._network_backend = _CoalescingBackend(pool._network_backend)
    return http


class _Coalescing(httpcore.NetworkStream):
    """A network stream that sends what was written in one piece, when the answer is read."""

    __slots__ = ("_inner", "_pending", "_timeout")

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._pending: list[bytes] = []
        self._timeout: float | None = None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._pending.append(buffer)
            self._timeout = timeout  # the last write's limit (the call's deadline shortens each)

    def _flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self._inner.write(data, self._timeout)  # httpcore's WriteError/WriteTimeout, as before

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._flush()
        return self._inner.read(max_bytes, timeout)

    def close(self) -> None:
        self._pending.clear()
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self._flush()  # a proxy's CONNECT is answered before the handshake
        return _Coalescing(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _CoalescingBackend(httpcore.NetworkBackend):
    """httpcore's network backend, its streams wrapped in :class:`_Coalescing`."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Coalescing(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Coalescing(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _environment_proxies() -> bool:
    from httpx._utils import get_environment_proxies

    return any(proxy for proxy in get_environment_proxies().values())


def make_async_http(timeout: httpx.Timeout | None) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` a default ``AsyncClient`` sends through (see the module text)."""
    if _environment_proxies():
        return httpx.AsyncClient(timeout=timeout)
    from ._aiowire import DefaultAsyncHttp, OmnisendAiohttpTransport

    # trust_env=False: httpx would otherwise mount its own transports for proxies (none here).
    return DefaultAsyncHttp(transport=OmnisendAiohttpTransport(concurrency=POOL), timeout=timeout, trust_env=False)


def forget(http: httpx.AsyncClient) -> None:
    """Drop the sockets of an async client whose event loop is gone (they cannot be closed through it).

    Works for both clients :func:`make_async_http` makes; no warning about unclosed sessions,
    connectors or transports is left for the garbage collector.
    """
    mocked = getattr(http, "mocked_http", None)
    if mocked is not None:
        forget(mocked)
    transport: Any = getattr(http, "_transport", None)
    session = getattr(transport, "session", None)
    if session is not None:  # aiohttp: the connector's idle connections, then mark it closed
        connector = session.connector
        for conns in list(getattr(connector, "_conns", {}).values()):
            for protocol, _ in conns:
                _drop(getattr(protocol, "transport", None))
        if connector is not None:
            connector._closed = True
        return
    pool = getattr(transport, "_pool", None)  # httpcore
    for connection in list(getattr(pool, "connections", ())):
        stream = getattr(getattr(connection, "_connection", None), "_network_stream", None)
        _drop(getattr(getattr(stream, "_stream", None), "_transport", None))


def _drop(transport: Any) -> None:
    """Close an asyncio transport's socket without its (closed) event loop."""
    import socket

    sock = getattr(transport, "_sock", None)
    if isinstance(sock, socket.socket):
        transport._sock = None  # asyncio's transport would warn about, then close, a socket closed here
        sock.close()


# -- request building: what httpx builds, byte for byte, without its per-request work -------

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
