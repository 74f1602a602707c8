"""The emulator engine every vendor emulator builds on.

An :class:`Emulator` is a stateful fake of one vendor API: it answers requests from its
routes (``route``) and keeps what it accepted in :attr:`Emulator.messages`. Faults are scripted
(:meth:`Emulator.script`, consumed one per request) or drawn at random
(:meth:`Emulator.fail_randomly`). The same emulator serves:

* in-process, as an httpx transport (:meth:`Emulator.transport`, sync and async), and
* over real TCP on 127.0.0.1 (:meth:`Emulator.serve`), where "drop the connection" and
  "answer too slowly" really happen on the socket.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final, Literal
from urllib.parse import parse_qs, urlsplit

import httpx

from ..models import Message
from ..providers.base import Provider

__all__ = [
    "Emulator",
    "EmulatorServer",
    "EmulatorTransport",
    "Fault",
    "Record",
    "Reply",
    "BLOCKED_NUMBER",
    "INVALID_NUMBER",
    "NOT_ON_VIBER",
    "NOT_ON_WHATSAPP",
    "Request",
    "ServedEmulator",
    "closed_port_url",
]

FaultKind = Literal[
    "refuse",
    "reset",
    "drop_after_accept",
    "slow",
    "http_error",
    "truncated",
    "wrong_content_type",
    "huge_body",
    "vendor_error",
    "rate_limited",
]


#: Test numbers every emulator refuses the same way (each with its vendor's own answer); they
#: pass omnisend's own number checks, so the refusal comes from the emulated vendor. The table of
#: codes per emulator is in docs/testing.md.
INVALID_NUMBER: Final = "+10000000000"
"""The vendor's "invalid number" answer (every emulator)."""
BLOCKED_NUMBER: Final = "+15550000001"
"""Blacklisted, opted out or do-not-disturb: the vendor refuses to send to it (every emulator)."""
NOT_ON_WHATSAPP: Final = "+15550000002"
"""Not a WhatsApp user (emulators of vendors that check: Clickatell, edna); SMS to it works."""
NOT_ON_VIBER: Final = "+15550000003"
"""Not a Viber user (edna); SMS to it works."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour. Build them with the class methods."""

    kind: FaultKind
    seconds: float = 0.0
    status: int = 500
    code: object = None
    size: int = 0
    accept: bool = False

    @classmethod
    def refuse(cls) -> Fault:
        """The connection is refused: nothing reaches the vendor.

        In-process (``emu.transport()``) this raises ``httpx.ConnectError``, exactly what a refused
        connection gives. Over TCP a connection the server has accepted cannot be refused any more:
        the emulator closes it without reading the request and without an answer, which a client
        sees as a dropped connection (like :meth:`reset`). For a real refusal over TCP, point the
        provider at :func:`omnisend.testing.closed_port_url`, where nothing listens.
        """
        return cls("refuse")

    @classmethod
    def reset(cls) -> Fault:
        """The connection closes before the request is processed."""
        return cls("reset")

    @classmethod
    def drop_after_accept(cls) -> Fault:
        """The vendor takes the message, then the connection drops before the answer."""
        return cls("drop_after_accept")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """The vendor takes the message and answers after ``seconds`` (past a short read timeout)."""
        return cls("slow", seconds=seconds)

    @classmethod
    def http_error(cls, status: int = 500, *, accept: bool = False) -> Fault:
        """An HTML error page with ``status``; ``accept=True`` processes the request first."""
        return cls("http_error", status=status, accept=accept)

    @classmethod
    def truncated(cls) -> Fault:
        """The vendor takes the message and its JSON answer is cut in half."""
        return cls("truncated")

    @classmethod
    def wrong_content_type(cls) -> Fault:
        """The vendor takes the message and answers with ``text/html`` as content type."""
        return cls("wrong_content_type")

    @classmethod
    def huge_body(cls, size: int = 5 * 1024 * 1024) -> Fault:
        """A 502 with an HTML body of ``size`` bytes (not processed)."""
        return cls("huge_body", size=size)

    @classmethod
    def rate_limited(cls, retry_after: float | None = None) -> Fault:
        """The vendor's own throttling answer (its rate-limit code, not processed), with a
        ``Retry-After: <seconds>`` header when ``retry_after`` is given."""
        if retry_after is not None and (isinstance(retry_after, bool) or retry_after < 0):
            raise ValueError(f"retry_after must be a number of seconds >= 0, got {retry_after!r}")
        return cls("rate_limited", seconds=-1.0 if retry_after is None else float(retry_after))

    @classmethod
    def vendor_error(cls, code: object) -> Fault:
        """The vendor's own error answer for ``code`` (not processed)."""
        return cls("vendor_error", code=code)


#: Faults that may leave a message accepted without the client knowing.
AMBIGUOUS_FAULTS = frozenset({"drop_after_accept", "slow", "truncated"})


@dataclass(slots=True)
class Request:
    """A request as an emulator route sees it (the same for in-process and TCP)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The form-encoded body (last value wins), with ``+`` decoded as a space."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class Reply:
    """What an emulator answers. ``drop`` closes the connection instead; ``delay`` waits first."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    refuse: bool = False

    @classmethod
    def json(cls, data: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        merged = {"content-type": "application/json"}
        merged.update(headers or {})
        return cls(status, json.dumps(data).encode(), merged)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Reply:
        return cls(status, text.encode(), {"content-type": content_type})


@dataclass(slots=True)
class Record:
    """One message the emulator accepted (one recipient)."""

    id: str
    to: str
    text: str | None
    idempotency_key: str | None
    status: str
    created: float
    parts: int = 1
    sender: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_ERROR_PAGE = (
    "<html><head><title>{status}</title></head><body><h1>{status} Error</h1><p>upstream failure</p></body></html>"
)


class Emulator(abc.ABC):
    """Base of the vendor emulators: state, faults, and the two ways to serve them.

    Args:
        credentials: accepted keys/tokens; anything else gets the vendor's auth error.
        balance: credit available; each SMS part costs ``price``.
        rate_limit: ``(count, seconds)`` allowed per recipient number in a sliding window.
        clock: time source (tests pass a fake one).
    """

    provider: ClassVar[str]
    default_credential: ClassVar[str] = "test-key"

    def __init__(
        self,
        *,
        credentials: tuple[str, ...] | None = None,
        balance: float = 1000.0,
        price: float = 0.1,
        rate_limit: tuple[int, float] = (10, 60.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials if credentials is not None else (self.default_credential,)
        self.balance = balance
        self.price = price
        self.rate_limit = rate_limit
        self.clock = clock
        self.lock = threading.RLock()
        self.messages: dict[str, Record] = {}
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self._random: tuple[random.Random, float, list[Fault]] | None = None
        self._ids = itertools.count(1)
        self._sent_times: dict[str, list[float]] = {}
        self.fault_counts: Counter[str] = Counter()
        self.server: EmulatorServer | None = None

    # -- scripting ----------------------------------------------------------------------------

    def script(self, *faults: Fault) -> None:
        """Queue faults; each of the next requests gets one, in order, then service is normal."""
        with self.lock:
            self._faults.extend(faults)

    def fail_randomly(self, rate: float, faults: list[Fault], *, seed: int = 0) -> None:
        """Give each request a fault with probability ``rate``, chosen uniformly from ``faults``."""
        with self.lock:
            self._random = (random.Random(seed), rate, list(faults))

    def _next_fault(self) -> Fault | None:
        with self.lock:
            if self._faults:
                return self._faults.pop(0)
            if self._random is not None:
                rng, rate, faults = self._random
                if faults and rng.random() < rate:
                    return rng.choice(faults)
        return None

    # -- state helpers for routes ---------------------------------------------------------------

    def new_id(self) -> str:
        return f"{self.provider[:3].upper()}{next(self._ids):08d}"

    def rate_limited(self, number: str) -> bool:
        """Record a send to ``number``; True when it is over the per-number limit."""
        count, window = self.rate_limit
        now = self.clock()
        with self.lock:
            times = [t for t in self._sent_times.get(number, []) if now - t < window]
            if len(times) >= count:
                self._sent_times[number] = times
                return True
            times.append(now)
            self._sent_times[number] = times
            return False

    def accept(
        self, *, to: str, text: str | None, key: str | None, parts: int = 1, status: str = "QUEUED", **extra: Any
    ) -> Record:
        """Store an accepted message and charge for it."""
        with self.lock:
            record = Record(self.new_id(), to, text, key, status, self.clock(), parts, extra.pop("sender", None), extra)
            self.messages[record.id] = record
            self.balance -= self.price * parts
            return record

    def by_key(self, key: str) -> list[Record]:
        with self.lock:
            return [r for r in self.messages.values() if r.idempotency_key == key]

    def set_status(self, status: str, *, message_id: str | None = None) -> list[Record]:
        """Move one message (or all) to a vendor status; returns the records changed."""
        with self.lock:
            records = [self.messages[message_id]] if message_id else list(self.messages.values())
            for r in records:
                r.status = status
            return records

    def duplicates(self) -> int:
        """How many accepted messages repeat an (idempotency key, recipient) pair already accepted."""
        with self.lock:
            counts = Counter((r.idempotency_key, r.to) for r in self.messages.values() if r.idempotency_key)
        return sum(n - 1 for n in counts.values() if n > 1)

    def reset_state(self) -> None:
        with self.lock:
            self.messages.clear()
            self.requests.clear()
            self._faults.clear()
            self._random = None
            self._sent_times.clear()
            self.fault_counts.clear()

    # -- what subclasses write ------------------------------------------------------------------

    #: A number this emulator always rejects as an invalid recipient.
    invalid_number: ClassVar[str] = INVALID_NUMBER
    #: Whether ``invalid_number`` is refused in the send answer (``InvalidRecipient`` raised), or
    #: taken and answered by a failed delivery report, as some vendors do (Webex Connect).
    refuses_invalid_number: bool = True
    #: The vendor error code the emulator answers when it throttles (used by the demo).
    rate_limit_code: ClassVar[object] = None

    @abc.abstractmethod
    def route(self, request: Request) -> Reply:
        """Answer ``request`` as the vendor would (state changes included)."""

    @abc.abstractmethod
    def error_reply(self, code: object) -> Reply:
        """The vendor's answer carrying its error ``code``."""

    def rate_limit_reply(self, retry_after: float | None) -> Reply:
        """The vendor's throttling answer (its :attr:`rate_limit_code`), with ``Retry-After`` when given."""
        if self.rate_limit_code is not None:
            reply = self.error_reply(self.rate_limit_code)
        else:
            reply = Reply.json({"error": "rate limited"}, 429)
        if retry_after is not None:
            reply.headers["Retry-After"] = f"{retry_after:g}"
        return reply

    @abc.abstractmethod
    def make_provider(self, base_url: str, **options: Any) -> Provider:
        """A provider configured with this emulator's credential, talking to ``base_url``."""

    def url_options(self) -> dict[str, str]:
        """Query items of :meth:`url` beyond the credential: what :meth:`make_provider` sets besides it."""
        return {}

    def url(self, base_url: str | None = None) -> str:
        """The omnisend URL (``omnisend.from_url``, ``OMNISEND_URL``) of a provider talking to this
        emulator at ``base_url`` (default: where it is served): ``smsapi://test-key@127.0.0.1:8080?tls=0``."""
        from urllib.parse import urlencode, urlsplit

        from .._url import scheme_of

        parts = urlsplit(base_url or self.base_url)
        query = {"tls": "0" if parts.scheme == "http" else "1", **self.url_options()}
        return f"{scheme_of(self.provider)}://{self.url_userinfo()}@{parts.netloc}{parts.path}?{urlencode(query)}"

    def url_userinfo(self) -> str:
        """The user part of :meth:`url`: the credential, percent-encoded."""
        from urllib.parse import quote

        return quote(self.credentials[0], safe="")

    def demo_message(self, to: str, text: str) -> Message:
        """A message this vendor's default channel can send (vendors needing templates override)."""
        return Message(to=to, text=text, sender="omnisend")

    @abc.abstractmethod
    def deliver(self, message_id: str, *, delivered: bool = True) -> dict[str, Any]:
        """Move a message to delivered (or failed) and return the vendor's callback for it,
        as keyword arguments for ``provider.parse_webhook(**kwargs)``."""

    # -- the request pipeline ------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Apply the next fault (if any) around :meth:`route`."""
        with self.lock:
            self.requests.append(request)
        fault = self._next_fault()
        if fault is None:
            return self.route(request)
        self.fault_counts[fault.kind] += 1
        kind = fault.kind
        if kind == "refuse":
            return Reply(refuse=True)
        if kind == "reset":
            return Reply(drop=True)
        if kind == "vendor_error":
            return self.error_reply(fault.code)
        if kind == "rate_limited":
            return self.rate_limit_reply(None if fault.seconds < 0 else fault.seconds)
        if kind == "huge_body":
            page = (_ERROR_PAGE.format(status=502) + "\n").encode()
            return Reply(502, page * (fault.size // len(page) + 1), {"content-type": "text/html"})
        if kind == "http_error" and not fault.accept:
            return Reply.text(_ERROR_PAGE.format(status=fault.status), fault.status, "text/html")
        reply = self.route(request)
        if kind == "drop_after_accept":
            return Reply(drop=True)
        if kind == "slow":
            reply.delay = fault.seconds
        elif kind == "http_error":
            return Reply.text(_ERROR_PAGE.format(status=fault.status), fault.status, "text/html")
        elif kind == "truncated":
            reply.body = reply.body[: max(1, len(reply.body) // 2)]
        elif kind == "wrong_content_type":
            reply.headers["content-type"] = "text/html; charset=iso-8859-1"
        return reply

    def handle_httpx(self, request: httpx.Request) -> Reply:
        url = request.url
        return self.handle(
            Request(
                request.method,
                url.path,
                {k: v for k, v in url.params.multi_items()},
                {k.lower(): v for k, v in request.headers.items()},
                request.read(),
            )
        )

    # -- serving --------------------------------------------------------------------------------

    #: The provider option that carries the webhook secret this emulator signs or authenticates
    #: its callbacks with (and the attribute holding it); ``None`` for a vendor without one.
    webhook_secret_option: ClassVar[str | None] = "webhook_secret"

    @property
    def base_url(self) -> str:
        """Where :meth:`serve` serves this emulator (``http://127.0.0.1:PORT``)."""
        if self.server is None:
            raise RuntimeError(f"the {self.provider} emulator is not being served: call serve() first")
        return self.server.base_url

    def stop(self) -> None:
        """Stop serving (a no-op when not served)."""
        if self.server is not None:
            self.server.close()

    def transport(self) -> EmulatorTransport:
        """An httpx transport (sync and async) answering from this emulator, in-process."""
        return EmulatorTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """Serve this emulator over HTTP on ``host:port`` in a background thread (0 = a free port).

        The server is also kept as :attr:`server` (used by :meth:`provider`, :meth:`url` and
        :attr:`base_url`) until it is closed."""
        server = EmulatorServer(self, host, port)
        self.server = server
        return server

    @property
    def accepted_count(self) -> int:
        with self.lock:
            return len(self.messages)

    def iter_messages(self) -> Iterator[Record]:
        with self.lock:
            return iter(list(self.messages.values()))


def _timeout_read(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Serves an :class:`Emulator` in-process: pass it as ``transport=`` to an httpx client."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def _respond(self, request: httpx.Request, reply: Reply) -> httpx.Response:
        if reply.refuse:
            raise httpx.ConnectError("connection refused (emulated)", request=request)
        if reply.drop:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body, request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        reply = self.emulator.handle_httpx(request)
        if reply.delay:
            limit = _timeout_read(request)
            if limit is not None and reply.delay > limit:
                time.sleep(limit)
                raise httpx.ReadTimeout("timed out waiting for the answer (emulated)", request=request)
            time.sleep(reply.delay)
        return self._respond(request, reply)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        reply = self.emulator.handle_httpx(request)
        if reply.delay:
            limit = _timeout_read(request)
            if limit is not None and reply.delay > limit:
                await asyncio.sleep(limit)
                raise httpx.ReadTimeout("timed out waiting for the answer (emulated)", request=request)
            await asyncio.sleep(reply.delay)
        return self._respond(request, reply)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path,
            {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        try:
            reply = self.server.emulator.handle(request)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must show as a 500, not a hang
            reply = Reply.text(f"emulator error: {type(exc).__name__}: {exc}", 500)
        if reply.drop or reply.refuse:
            self.close_connection = True
            return
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815 - stdlib handler names


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, emulator: Emulator, address: tuple[str, int]) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (timeout, reset) is normal traffic, not a traceback on stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ServedEmulator:
    """An emulator served over HTTP on 127.0.0.1 (what the ``omnisend_emulator`` fixture returns).

    Everything of the emulator is here (``script``, ``balance``, ``messages``, ``deliver``, ...:
    attributes read and set go to :attr:`emulator`), plus :meth:`provider`, :meth:`url` and
    :attr:`base_url`. :meth:`stop` (or the fixture, after the test) stops the server.
    """

    __slots__ = ("emulator", "server")
    emulator: Emulator
    server: EmulatorServer

    def __init__(self, emulator: Emulator, server: EmulatorServer) -> None:
        object.__setattr__(self, "emulator", emulator)
        object.__setattr__(self, "server", server)

    def provider(self, **options: Any) -> Provider:
        """A provider talking to this emulator, its credential and webhook secret filled in;
        ``options`` (the provider's own keyword arguments) override them. A webhook secret given
        here becomes the one ``deliver()`` signs or authenticates callbacks with."""
        option = self.emulator.webhook_secret_option
        if option is not None and options.get(option) is not None:
            setattr(self.emulator, option, options[option])
        return self.emulator.make_provider(self.server.base_url, **options)

    def url(self) -> str:
        """The ``omnisend.from_url`` URL of a provider talking to this emulator (for ``OMNISEND_URL``)."""
        return self.emulator.url(self.server.base_url)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def name(self) -> str:
        """The provider id (``"smsapi"``)."""
        return self.emulator.provider

    def stop(self) -> None:
        self.server.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.emulator, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.emulator, name, value)

    def __repr__(self) -> str:
        return f"<{type(self.emulator).__name__} served at {self.server.base_url}>"


def unlisted(value: object, allowed: Collection[object] | None) -> bool:
    """Whether ``value`` is given and not among ``allowed`` (``None``: every value is allowed)."""
    return value is not None and allowed is not None and value not in allowed


def closed_port_url(host: str = "127.0.0.1") -> str:
    """``http://HOST:PORT`` where nothing listens: a connection there is refused (for tests of a
    refused connection over TCP). The port was free a moment ago; nothing keeps another program
    from taking it, which on loopback in a test run is unlikely."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    return f"http://{host}:{port}"


class EmulatorServer:
    """An emulator served over HTTP on loopback; a context manager that stops it on exit."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self._server = _Server(emulator, (host, port))
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._closed = False
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # close() waits for the loop to notice: 50 ms, not 500
            name=f"omnisend-{emulator.provider}-emulator",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self.emulator.server is self:
            self.emulator.server = None

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
