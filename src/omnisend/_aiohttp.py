"""The aiohttp-backed httpx transport behind :func:`omnisend.transports.aiohttp_client`.

Imported only when that helper is called, so ``aiohttp`` and ``httpx-aiohttp`` stay optional.

``httpx_aiohttp.AiohttpTransport`` does the work; this subclass fixes two things omnisend's
no-double-send rule depends on:

* **Error classes.** omnisend decides whether a failed attempt may have reached the vendor from
  the ``httpx`` exception class: ``ConnectError``/``ConnectTimeout``/``PoolTimeout`` mean "nothing
  was sent" (retried), anything else means "may have been sent" (ambiguous). The upstream map
  turns every ``aiohttp.ClientConnectionError`` — a server that drops the connection after
  taking the request included — into ``ConnectTimeout``. Here only failures to *connect* become
  connect errors; a drop, reset or timeout after the request went out becomes
  ``RemoteProtocolError``/``ReadError``/``ReadTimeout``, as with the default httpx transport.
* **The pool.** The ``aiohttp.TCPConnector`` is sized to the concurrency (``limit=``), and the
  session keeps no cookies and reads no environment per request.

:class:`AiohttpAsyncClient` is the ``httpx.AsyncClient`` around it. Its ``send()`` takes a short
path for the plain requests omnisend makes (no auth, hooks or redirects): one aiohttp call
whose body is handed over as it arrives (:meth:`OmnisendAiohttpTransport.fetch`; omnisend reads
it with its size cap), then the ``httpx`` log line. httpx's general machinery around each
request (auth and redirect flows, cookie extraction) otherwise costs about as much CPU as the
aiohttp request itself. Anything else goes through ``httpx.AsyncClient.send`` unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Final

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from ._wire import log_request

__all__ = ["AiohttpAsyncClient", "OmnisendAiohttpTransport", "translate"]

_HTTPX_LOG = logging.getLogger("httpx")

# Raised by aiohttp >= 3.10 when connecting (or waiting for a pooled connection) times out;
# older versions raise a plain ServerTimeoutError, which is then treated as ambiguous (safe).
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    cls for cls in (getattr(aiohttp, "ConnectionTimeoutError", None),) if isinstance(cls, type)
)
_BAD_URL: tuple[type[BaseException], ...] = tuple(
    cls for cls in (aiohttp.InvalidURL, getattr(aiohttp, "NonHttpUrlClientError", None)) if isinstance(cls, type)
)


#: aiohttp failures that happen before the request goes out (connecting) → the httpx error for each.
_CONNECTING: Final[tuple[tuple[tuple[type[BaseException], ...], type[httpx.HTTPError]], ...]] = (
    ((aiohttp.ClientConnectorError,), httpx.ConnectError),  # refused, DNS, TLS handshake, proxy unreachable
    (_CONNECT_TIMEOUT, httpx.ConnectTimeout),
    (_BAD_URL, httpx.UnsupportedProtocol),
)
#: aiohttp failures at any time → the httpx error for each, most specific first.
_ANY_TIME: Final[tuple[tuple[tuple[type[BaseException], ...], type[httpx.HTTPError]], ...]] = (
    ((aiohttp.ClientHttpProxyError,), httpx.ProxyError),
    ((aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError), httpx.ReadTimeout),
    ((aiohttp.ServerDisconnectedError,), httpx.RemoteProtocolError),
    ((aiohttp.ClientOSError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError), httpx.ReadError),
    ((aiohttp.ClientError,), httpx.TransportError),
)


def translate(exc: BaseException, request: httpx.Request, *, reading_body: bool = False) -> httpx.HTTPError | None:
    """The ``httpx`` exception omnisend should see for an aiohttp failure (``None``: not ours).

    ``exc`` may be the aiohttp exception itself or the ``httpx`` one the upstream transport
    raised from it. While ``reading_body``, the request has certainly gone out: no failure then
    reads as one to connect.
    """
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    table = _ANY_TIME if reading_body else _CONNECTING + _ANY_TIME
    kind = next((error for causes, error in table if isinstance(cause, causes)), None)
    if kind is None:
        return exc if isinstance(exc, httpx.HTTPError) else None
    error = kind(str(cause) or type(cause).__name__)
    error.request = request
    return error


@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    """httpx's timeouts as aiohttp's (as ``httpx_aiohttp`` maps them), one object per distinct value."""
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


_URL_TEXTS: dict[int, tuple[httpx.URL, str]] = {}


def _url_text(url: httpx.URL) -> str:
    """``str(url)``, remembered per URL object: omnisend reuses one parsed URL per endpoint."""
    known = _URL_TEXTS.get(id(url))
    if known is not None and known[0] is url:
        return known[1]
    text = str(url)
    if len(_URL_TEXTS) < 256:
        _URL_TEXTS[id(url)] = (url, text)  # holds ``url``: its id cannot be reused while listed
    return text


def _translated(exc: Exception, request: httpx.Request, *, reading_body: bool = False) -> httpx.HTTPError:
    """:func:`translate`, and an ``httpx.TransportError`` (ambiguous) for anything unexpected:
    the transport never lets a raw exception through (an odd reason phrase once did)."""
    error = translate(exc, request, reading_body=reading_body)
    if error is None:
        error = httpx.TransportError(f"{type(exc).__name__}: {exc}")
        error.request = request
    return error


class _Body(httpx.AsyncByteStream):
    """The response body, with read failures translated (the request went out: ambiguous)."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:  # every failure becomes an httpx error
            error = _translated(exc, self._request, reading_body=True)
            if error is exc:
                raise
            raise error from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Answer(httpx.AsyncByteStream):
    """An aiohttp answer's body as it arrives, still compressed (the reader decodes it, bounded)."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._answer.content
        try:
            while chunk := await content.readany():
                yield chunk
        except Exception as exc:  # every failure becomes an httpx error
            raise _translated(exc, self._request, reading_body=True) from exc

    async def aclose(self) -> None:
        # A body read to its end leaves the connection reusable; one abandoned midway closes it.
        if self._answer.content.is_eof():
            self._answer.release()
        else:
            self._answer.close()


class OmnisendAiohttpTransport(AiohttpTransport):
    """``httpx_aiohttp.AiohttpTransport`` with omnisend's error classes and a pool of ``concurrency``."""

    def __init__(
        self, *, concurrency: int, verify: bool | str = True, trust_env: bool = True, proxy: str | None = None
    ) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        super().__init__(verify=verify, trust_env=trust_env, limits=limits, proxy=httpx.Proxy(proxy) if proxy else None)
        self.concurrency = concurrency

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, ssl=self.ssl_context)
        # trust_env=False: with it, aiohttp looks up ~/.netrc and the proxy variables in a worker
        # thread for *every* request, which costs more than the request itself under load.
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session, once the first request has created it (inside the event loop)."""
        return self.client if isinstance(self.client, aiohttp.ClientSession) else None

    async def fetch(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send ``request``: the short path of :class:`AiohttpAsyncClient`.

        The same aiohttp call as ``handle_async_request`` (same session, headers, body, timeouts
        and proxy), with one wrapper around the body instead of two. With ``stream`` the body is
        left to the caller (``response.stream`` yields it still compressed, as ``iter_raw``);
        otherwise it is read and decoded, as ``httpx`` would. Any failure is an ``httpx`` error.
        """
        try:
            data: bytes | None = request.content or None
        except httpx.RequestNotRead:
            response = await self.handle_async_request(request)
            if not stream:
                await response.aread()
            return response
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout") or {}
        try:
            answer = await self.client.request(
                request.method,
                _url_text(request.url),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_client_timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=str(self.proxy.url) if self.proxy else None,
                proxy_auth=aiohttp.BasicAuth(*self.proxy.auth) if self.proxy and self.proxy.auth else None,
                proxy_headers=self.proxy.headers if self.proxy else None,
            )
        except Exception as exc:  # every failure becomes an httpx error
            raise _translated(exc, request) from exc
        try:
            extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
            if answer.reason:
                # aiohttp keeps undecodable bytes as surrogates: never let them raise here.
                extensions["reason_phrase"] = answer.reason.encode("ascii", "replace")
            response = httpx.Response(
                answer.status,
                headers=answer.raw_headers,
                stream=_Answer(answer, request),
                request=request,
                extensions=extensions,
            )
        except Exception as exc:  # an answer httpx cannot represent: the request went out
            answer.close()
            raise _translated(exc, request, reading_body=True) from exc
        if not stream:
            await response.aread()
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:  # every failure becomes an httpx error
            error = _translated(exc, request)
            if error is exc:
                raise
            raise error from exc
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _Body(response.stream, request)
        return response


class AiohttpAsyncClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` on :class:`OmnisendAiohttpTransport`, with a short ``send()`` path.

    The short path applies to a request sent without ``auth`` and without following redirects
    (``follow_redirects=False``, or the client's default when it does not follow them), on a
    client without auth or event hooks (as omnisend sends), streamed or not; it keeps no
    cookies. Everything else is ``httpx.AsyncClient.send``.
    """

    def __init__(self, *, transport: OmnisendAiohttpTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._aiohttp_transport = transport

    @property
    def transport(self) -> OmnisendAiohttpTransport:
        """The aiohttp-backed transport (its ``session`` exists once a request was made)."""
        return self._aiohttp_transport

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        hooks = self.event_hooks
        redirects = self.follow_redirects if follow_redirects is httpx.USE_CLIENT_DEFAULT else follow_redirects
        if (
            redirects
            or auth is not httpx.USE_CLIENT_DEFAULT
            or self.auth is not None
            or hooks["request"]
            or hooks["response"]
            or self.is_closed
        ):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        if "timeout" not in request.extensions:
            request.extensions["timeout"] = self.timeout.as_dict()
        start = time.perf_counter()
        response = await self._aiohttp_transport.fetch(request, stream=stream)
        response.elapsed = timedelta(seconds=time.perf_counter() - start)
        if _HTTPX_LOG.isEnabledFor(logging.INFO):
            log_request(request, response)
        return response
