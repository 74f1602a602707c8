"""Reading an answer safely, shared by ``Client`` and ``AsyncClient`` (no I/O here).

* :class:`Body` reads a streamed body chunk by chunk, decompressing ``gzip``/``deflate`` itself
  with a bounded output, and stops as soon as the decoded size passes the cap or the call's
  deadline has passed: a gzip bomb or an endless chunked body costs at most the cap in memory
  and the deadline in time.
* :class:`Timeouts` is the ``timeout`` request extension for a call with a deadline: each phase
  of a request (pool, connect, write, read) waits at most what is left of the call.
* :func:`clean_cause` is the exception chained on omnisend's errors: the transport's exception
  class and words, without the request (its headers and URL carry credentials).
"""

from __future__ import annotations

import threading
import time
import zlib
from typing import Any

import httpx

from . import _redact

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Body", "Timeouts", "clean_cause", "current", "deadline_of", "loaded"]

#: The largest decoded answer omnisend reads (1 MiB): vendors answer in a few kilobytes.
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20


#: ``current.deadline``: the ``time.monotonic()`` by which this thread's attempt must end (sync
#: client), read by ``omnisend._deadline`` inside every socket read; ``None`` when unset.
current = threading.local()


def deadline_of(timeout: httpx.Timeout | None) -> float | None:
    """How long a whole call may take: the longest of the four limits; ``None`` if any is ``None``."""
    if timeout is None:
        return None
    values = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    if None in values:
        return None
    return max(values)  # type: ignore[type-var]


class Timeouts(dict[str, Any]):
    """The ``timeout`` extension of one request of a call that must end by ``deadline``.

    httpcore and the aiohttp transport look each limit up with ``.get()`` when a phase starts;
    this answers with the configured limit or the time left, whichever is shorter, so a phase
    that starts late in the call cannot outlive it.
    """

    __slots__ = ("deadline",)

    def __init__(self, limits: dict[str, float | None], deadline: float) -> None:
        super().__init__(limits)
        self.deadline = deadline

    def get(self, key: str, default: Any = None) -> Any:
        limit = super().get(key, default)
        left = self.deadline - time.monotonic()
        if limit is None or left < limit:
            return max(left, 0.001)
        return limit


class _Inflate:
    """One ``gzip`` or ``deflate`` layer whose output never exceeds what it is asked for."""

    __slots__ = ("_raw_fallback", "_zlib")

    def __init__(self, encoding: str) -> None:
        gzip = encoding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._raw_fallback = not gzip  # "deflate" is zlib-wrapped by the RFC, raw by some servers

    def decode(self, data: bytes, limit: int) -> bytes | None:
        """Up to ``limit`` bytes of output for ``data``; ``None`` if it would be more."""
        try:
            out = self._zlib.decompress(data, limit + 1)
        except zlib.error as exc:
            if not self._raw_fallback:
                raise httpx.DecodingError(f"the answer is not valid compressed data ({exc})") from None
            self._raw_fallback = False
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.decode(data, limit)
        self._raw_fallback = False
        if len(out) > limit or self._zlib.unconsumed_tail:
            return None
        return out

    def flush(self, limit: int) -> bytes | None:
        try:
            out = self._zlib.flush()
        except zlib.error as exc:  # pragma: no cover - flush only returns what decompress kept
            raise httpx.DecodingError(f"the answer is not valid compressed data ({exc})") from None
        return None if len(out) > limit else out


def _layers(header: str) -> list[_Inflate]:
    """The decoders for a ``Content-Encoding`` value, outermost first; unknown codings pass through."""
    names = [part.strip().lower() for part in header.split(",")]
    return [_Inflate(name) for name in reversed(names) if name in ("gzip", "x-gzip", "deflate")]


class Body:
    """A body read chunk by chunk up to ``limit`` decoded bytes and until ``deadline``.

    :meth:`feed` returns a reason to stop (``"too large"``, ``"late"``) or ``None``;
    :meth:`load` puts the whole body on the response, as ``Response.read()`` would.
    """

    __slots__ = ("deadline", "limit", "parts", "raw_size", "size", "_layers")

    def __init__(self, response: httpx.Response, limit: int, deadline: float | None) -> None:
        self.limit = limit
        self.deadline = deadline
        self.parts: list[bytes] = []
        self.size = 0
        self.raw_size = 0
        encoding = response.headers.get("content-encoding")
        self._layers = _layers(encoding) if encoding else None

    def too_large_already(self, response: httpx.Response) -> bool:
        """An identity body announced larger than the cap: refused before reading it."""
        if self._layers:
            return False
        length = response.headers.get("content-length")
        return length is not None and length.isdigit() and int(length) > self.limit

    def feed(self, chunk: bytes) -> str | None:
        self.raw_size += len(chunk)
        if self._layers:
            decoded = self._decode(chunk)
            if decoded is None:
                return "too large"
            chunk = decoded
        self.size += len(chunk)
        if self.size > self.limit:
            return "too large"
        if chunk:
            self.parts.append(chunk)
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "late"
        return None

    def _decode(self, data: bytes) -> bytes | None:
        assert self._layers is not None
        room = self.limit - self.size
        out: bytes | None = data
        for layer in self._layers:
            out = layer.decode(data, room)
            if out is None:
                return None
            data = out
        return data

    def finish(self) -> str | None:
        """Flush the decoders at the end of the body; a reason to refuse it, or ``None``."""
        if not self._layers:
            return None
        room = self.limit - self.size
        carry = b""
        for layer in self._layers:
            out = layer.decode(carry, room) if carry else b""
            tail = None if out is None else layer.flush(room - len(out))
            if out is None or tail is None:
                return "too large"
            carry = out + tail if tail else out
        if carry:
            self.size += len(carry)
            self.parts.append(carry)
        return None

    def load(self, response: httpx.Response) -> None:
        parts = self.parts
        loaded(response, parts[0] if len(parts) == 1 else b"".join(parts), self.raw_size)


def loaded(response: httpx.Response, body: bytes, raw_size: int) -> None:
    """Mark ``response`` as read with the decoded ``body``: what ``Response.read()`` ends in,
    without its generator layers."""
    response._content = body
    response._num_bytes_downloaded = raw_size
    response.is_stream_consumed = True


def clean_cause(exc: BaseException) -> BaseException:
    """The exception to chain on an omnisend error for ``exc``, holding no request.

    httpx exceptions keep the request (headers with the key, URLs with the key) and aiohttp's
    keep request info and proxy credentials; the copy keeps the class (an ``httpx`` one for any
    other exception) and the words, with known secrets masked. Not the traceback: its frames'
    locals hold the request (and its credentials).
    """
    text = _redact.scrub_text(str(exc))
    copy: BaseException
    if isinstance(exc, httpx.RequestError):
        try:
            copy = type(exc)(text)
        except Exception:  # noqa: BLE001 - a subclass with another signature
            copy = httpx.TransportError(text)
    else:
        copy = httpx.TransportError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    copy.__suppress_context__ = True
    return copy
