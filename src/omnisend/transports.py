"""HTTP clients for :class:`~omnisend.AsyncClient` beyond the default.

A default ``AsyncClient`` already sends through aiohttp (see ``docs/performance.md``).
:func:`aiohttp_client` gives the same aiohttp-backed ``httpx.AsyncClient`` to pass in yourself,
for a pool sized to your concurrency, an explicit ``proxy=``, TLS settings or extra headers::

    from omnisend.transports import aiohttp_client

    async with aiohttp_client(concurrency=50) as http:
        async with AsyncClient(Smsapi(token="..."), http_client=http) as client:
            async for outcome in client.send_many(messages, concurrency=50):
                ...

Errors keep their meaning: a refused or timed-out *connection* is a retryable
``TransportError`` (nothing was sent); a read timeout or a connection dropped after the request
went out is ambiguous, exactly as with httpx's own transport (``DeliveryUnknown`` unless the
vendor de-duplicates).
"""

from __future__ import annotations

import httpx

from .client import DEFAULT_TIMEOUT
from .errors import ConfigurationError

__all__ = ["aiohttp_client"]

_INSTALL_HINT = "pip install --force-reinstall omnisend  (aiohttp and httpx-aiohttp are dependencies)"


def aiohttp_client(
    *,
    concurrency: int = 50,
    timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
    verify: bool | str = True,
    trust_env: bool = True,
    proxy: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` backed by aiohttp, its connection pool sized to ``concurrency``.

    Pass it to :class:`~omnisend.AsyncClient` as ``http_client=`` (omnisend does not close a
    client you pass in: use ``async with``), and use the same ``concurrency`` for ``send_many``.
    Create and close it inside one running event loop.

    Args:
        concurrency: the most connections open at once (``aiohttp.TCPConnector(limit=...)``).
        timeout: the default timeout; omnisend's ``AsyncClient(timeout=)`` applies per request.
        verify: TLS verification, as in ``httpx`` (``True``, ``False`` or a CA bundle path).
        trust_env: read TLS settings (``SSL_CERT_FILE``, ``SSL_CERT_DIR``) from the environment.
            Proxy variables are *not* read (aiohttp would look them up in a thread for every
            request): pass ``proxy=`` instead.
        proxy: an HTTP(S) proxy URL for every request (``"http://user:pass@proxy:3128"``).
        headers: extra headers for every request.

    Raises:
        ConfigurationError: aiohttp or httpx-aiohttp cannot be imported, or ``concurrency`` is not
            a positive int.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"aiohttp_client: concurrency must be a positive int, got {concurrency!r}")
    try:
        from ._aiohttp import AiohttpAsyncClient, OmnisendAiohttpTransport
    except ImportError as exc:
        raise ConfigurationError(
            f"the aiohttp transport cannot be imported ({exc.name or exc}): {_INSTALL_HINT}"
        ) from exc
    transport = OmnisendAiohttpTransport(concurrency=concurrency, verify=verify, trust_env=trust_env, proxy=proxy)
    # trust_env=False: httpx would otherwise mount its own transport for proxied URLs.
    return AiohttpAsyncClient(transport=transport, timeout=timeout, headers=headers, trust_env=False)
