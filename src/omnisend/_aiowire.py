"""The client a default ``AsyncClient`` sends through (imported only when one is made: aiohttp is heavy).

It is ``transports.aiohttp_client``'s client with one difference: while an httpx mock such as
``respx.mock`` is active (it patches httpcore's connection pools, which aiohttp never uses),
requests go through a plain ``httpx.AsyncClient`` instead, so tests that mock httpx keep working
with a default ``AsyncClient``. The check is one attribute lookup per request.
"""

from __future__ import annotations

import inspect
from typing import Any

import httpcore
import httpx

from ._aiohttp import AiohttpAsyncClient, OmnisendAiohttpTransport

__all__ = ["DefaultAsyncHttp", "OmnisendAiohttpTransport", "httpx_is_mocked"]


def httpx_is_mocked() -> bool:
    """Whether httpcore's async pool is patched (``respx.mock`` and the like replace its method)."""
    method = httpcore.AsyncConnectionPool.__dict__.get("handle_async_request")
    return not (inspect.isfunction(method) and method.__module__.startswith("httpcore."))


class DefaultAsyncHttp(AiohttpAsyncClient):
    """:class:`AiohttpAsyncClient` that hands requests to plain httpx while httpx is mocked."""

    def __init__(self, *, transport: OmnisendAiohttpTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._timeout_given = kwargs.get("timeout")
        self.mocked_http: httpx.AsyncClient | None = None

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if httpx_is_mocked():
            if self.mocked_http is None:
                self.mocked_http = httpx.AsyncClient(timeout=self._timeout_given)
            return await self.mocked_http.send(request, **kwargs)
        return await super().send(request, **kwargs)

    async def aclose(self) -> None:
        if self.mocked_http is not None:
            await self.mocked_http.aclose()
        await super().aclose()
