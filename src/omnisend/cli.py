"""The ``omnisend`` command (also ``python -m omnisend``).

::

    omnisend demo [PROVIDER ...]                   every provider against its embedded emulator
    omnisend send --url URL --to N --text T        one message (--json for the whole result)
    omnisend send --url URL --csv FILE [--text T]  one message per row, a progress bar, a summary
    omnisend status --url URL MESSAGE_ID           the delivery status of a message
    omnisend explain PROVIDER CODE                 what a vendor code means to omnisend
    omnisend providers                             vendors, URL schemes and capabilities
    omnisend emulator NAME [--port P] [--balance X] [--log]

``--url`` defaults to ``$OMNISEND_URL`` (see :func:`omnisend.from_url`). Exit codes: 0 done;
1 the vendor (or omnisend on its behalf) refused, or a code is unknown to ``explain``; 2 bad
usage (a missing option, a bad URL, an unreadable file, a busy port); 130 interrupted. Every
error is one line on stderr, ``ClassName: message``; a traceback means a bug in omnisend.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import enum
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from . import __version__
from .errors import ConfigurationError, OmnisendError
from .providers import PROVIDERS

if TYPE_CHECKING:
    from .client import Client
    from .models import Message
    from .providers import Provider

__all__ = ["main", "run_demo", "run_emulator"]

#: Exit codes.
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A mistake in how the command was called: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and ``--help`` still shows everything)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def run_demo(names: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """``omnisend demo`` (see :mod:`omnisend._demo`)."""
    from ._demo import run_demo as demo

    return demo(names, out)


# -- send -----------------------------------------------------------------------------------


def _url(args: argparse.Namespace) -> str:
    url: str | None = args.url or os.environ.get("OMNISEND_URL")
    if not url:
        raise UsageError("no provider URL: pass --url URL or set OMNISEND_URL (e.g. smsapi://TOKEN@default)")
    return url


def _client(args: argparse.Namespace) -> Client:
    from ._url import from_url
    from .client import Client

    options: dict[str, Any] = {}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.no_retry:
        options["retry"] = None
    return Client(from_url(_url(args)), **options)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, OmnisendError):
        return {"error": type(value).__name__, "message": str(value), "code": value.code, "retryable": value.retryable}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _message(args: argparse.Namespace, to: str, text: str | None, sender: str | None, key: str | None) -> Message:
    from .models import Message

    return Message(to=to, text=text, sender=sender, channel=args.channel, idempotency_key=key or None)


def cmd_send(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.csv is not None:
        if args.to:
            raise UsageError("--to and --csv exclude each other")
        return _send_csv(args, out, err)
    if not args.to:
        raise UsageError("--to NUMBER (or --csv FILE) is required")
    if args.text is None:
        raise UsageError("--text TEXT is required")
    message = _message(args, args.to, args.text, args.sender, args.key)
    with _client(args) as client:
        result = client.send(message)
    if args.json:
        print(json.dumps(_jsonable(result), ensure_ascii=False), file=out)
    else:
        print(result.message_id if result.message_id is not None else f"(no id) key={result.idempotency_key}", file=out)
    for failed in result.failed:
        print(f"{failed.to}: {failed.error}", file=err)
    return FAILED if result.failed else OK


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    WIDTH = 30

    def __init__(self, total: int, err: TextIO) -> None:
        self.total, self.err = total, err
        self.enabled = total > 0 and err.isatty()
        self.last = 0.0

    def update(self, done: int, failed: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.1):
            return
        self.last = now
        filled = self.WIDTH * done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        print(f"\r[{bar}] {done}/{self.total} failed {failed}", end="", file=self.err, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=self.err, flush=True)


def _read_csv(path: str) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            if "to" not in columns:
                raise UsageError(f"{path}: no 'to' column (columns: {', '.join(columns) or 'none'})")
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a UTF-8 CSV file: {exc}") from None


def _send_csv(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rows = _read_csv(args.csv)
    if args.text is None and any(not row.get("text") for row in rows):
        raise UsageError(f"{args.csv}: a row has no text; add a 'text' column or pass --text")
    failures: Counter[str] = Counter()
    shown = 0
    progress = _Progress(len(rows), err)

    def fail(line: int, to: str, error: OmnisendError) -> None:
        nonlocal shown
        failures[type(error).__name__] += 1
        if shown < args.show_failures:
            shown += 1
            print(f"{chr(10) if progress.enabled else ''}row {line} ({to}): {type(error).__name__}: {error}", file=err)

    lines: list[int] = []

    def messages() -> Iterator[Message]:
        for line, row in enumerate(rows, start=2):
            try:
                message = _message(
                    args, row["to"], row.get("text") or args.text, row.get("sender") or args.sender, row.get("key")
                )
            except OmnisendError as exc:
                fail(line, row["to"], exc)
                continue
            lines.append(line)
            yield message

    sent = duplicates = 0
    started = time.monotonic()
    with _client(args) as client:
        for outcome in client.send_many(messages(), concurrency=args.concurrency):
            if outcome.result is not None:
                sent += 1
                duplicates += outcome.result.deduplicated
                for rejected in outcome.result.failed:
                    failures[type(rejected.error).__name__] += 1
            elif outcome.error is not None:
                fail(lines[outcome.index], outcome.message.recipients[0], outcome.error)
            progress.update(sent + sum(failures.values()), sum(failures.values()))
    progress.update(sent + sum(failures.values()), sum(failures.values()), force=True)
    progress.close()
    failed = sum(failures.values())
    by_class = ", ".join(f"{name} {count}" for name, count in failures.most_common())
    summary = {
        "rows": len(rows),
        "sent": sent,
        "failed": failed,
        "failed_by_class": dict(failures),
        "duplicates": duplicates,
        "seconds": round(time.monotonic() - started, 2),
    }
    if args.json:
        print(json.dumps(summary), file=out)
    else:
        print(
            f"sent {sent}, failed {failed}{f' ({by_class})' if by_class else ''}, duplicates {duplicates}"
            f" — {len(rows)} rows in {summary['seconds']}s",
            file=out,
        )
    return FAILED if failed else OK


# -- status, explain, providers ---------------------------------------------------------------


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _client(args) as client:
        if not client.provider.status_lookup:
            from .errors import Unsupported

            raise Unsupported(
                f"{client.provider.display_name} offers no status lookup; delivery reports arrive by webhook",
                provider=client.provider.name,
            )
        report = (
            client.get_status(args.message_id, provider=args.provider)
            if args.provider
            else client.get_status(args.message_id)
        )
    if args.json:
        print(json.dumps(_jsonable(report), ensure_ascii=False), file=out)
        return OK
    vendor = f" (vendor status {report.vendor_status!r})" if report.vendor_status is not None else ""
    final = "final" if report.status.is_final else "not final"
    print(f"{report.message_id}: {report.status.value}{vendor}, {final}", file=out)
    if report.error is not None:
        print(
            f"  error: {report.error.error_class} (code {report.error.code}) {report.error.message or ''}".rstrip(),
            file=out,
        )
    return OK


def _provider_class(name: str) -> type[Provider]:
    from .providers import get_provider

    wanted = name.strip().lower().replace("-", "_")
    for provider_id, spec in PROVIDERS.items():
        if wanted in (provider_id, spec.split(":")[1].lower()):
            return get_provider(provider_id)
    raise UsageError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")


def cmd_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cls = _provider_class(args.provider)
    row = cls.errors.lookup(args.code)
    if row is not None:
        exc = row.exc
        retried = "retried" if row.is_retryable else "not retried"
        accepted = (
            "the vendor may have taken the message"
            if row.ambiguous or exc.default_accepted is None
            else "the vendor did not take the message"
            if exc.default_accepted is False
            else "the vendor took the message"
        )
        print(f"{cls.name} code {args.code}: {exc.__name__} ({retried}; {accepted})", file=out)
        print(f"  vendor: {row.meaning}", file=out)
        print(
            f"  class:  {' < '.join(c.__name__ for c in exc.__mro__[: exc.__mro__.index(OmnisendError) + 1])}", file=out
        )
        if row.retry_after is not None:
            print(f"  wait:   {row.retry_after:g}s before a retry (the vendor's documented hint)", file=out)
        return OK
    status = cls.statuses.lookup(args.code)
    if status is not None:
        final = "final" if status.status.is_final else "not final"
        reason = f"; failure class {status.error.__name__}" if status.error is not None else ""
        print(f"{cls.name} delivery status {args.code}: {status.status.value} ({final}{reason})", file=out)
        print(f"  vendor: {status.meaning}", file=out)
        return OK
    print(
        f"{cls.name}: unknown code {args.code!r} (not in the vendor's tables; omnisend raises "
        f"{cls.errors.fallback.__name__} for it)",
        file=err,
    )
    return FAILED


def cmd_providers(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._url import URL_CREDENTIALS, scheme_of
    from .providers import get_provider

    rows: list[dict[str, Any]] = []
    for provider_id in PROVIDERS:
        cls = get_provider(provider_id)
        rows.append(
            {
                "id": provider_id,
                "name": cls.display_name,
                "url": f"{scheme_of(provider_id)}://{':'.join(a.upper() for a in URL_CREDENTIALS.get(provider_id, ('KEY',)))}@default",
                "channels": sorted(cls.channels),
                "max_recipients": cls.max_recipients,
                "deduplicates": cls.deduplicates,
                "status_lookup": cls.status_lookup,
                "webhook_auth": cls.webhook_auth,
                "credential_env": cls.credential_env,
            }
        )
    if args.json:
        print(json.dumps(rows), file=out)
        return OK
    for row in rows:
        print(f"{row['id']:<14} {row['name']}", file=out)
        print(
            f"  url:         {row['url']}   (or ${row['credential_env']} and {row['url'].split('://')[0]}://default)",
            file=out,
        )
        print(
            f"  channels:    {', '.join(row['channels'])}; up to {row['max_recipients']} recipients per request",
            file=out,
        )
        dedup = (
            "yes (a retry after a timeout is safe)" if row["deduplicates"] else "no (a timeout raises DeliveryUnknown)"
        )
        print(f"  de-duplicates by key: {dedup}", file=out)
        print(f"  status lookup: {'yes' if row['status_lookup'] else 'no (webhooks only)'}", file=out)
        print(f"  webhook auth:  {row['webhook_auth']}", file=out)
    return OK


# -- emulator -------------------------------------------------------------------------------


def run_emulator(
    name: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    out: TextIO = sys.stdout,
    *,
    balance: float | None = None,
    log: bool = False,
) -> int:
    """Serve an emulator until interrupted (Ctrl-C or SIGTERM)."""
    import signal

    from .testing import EMULATORS, get_emulator

    provider_id = name.strip().lower().replace("-", "_")
    if provider_id not in EMULATORS:
        raise UsageError(f"no emulator {name!r}; known: {', '.join(EMULATORS)}")
    emulator = get_emulator(provider_id)()
    if balance is not None:
        emulator.balance = balance
    if log:
        _log_requests(emulator, out)
    try:
        server = emulator.serve(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    with server:
        print(
            f"{provider_id} emulator listening on {server.base_url} (credential: {emulator.credentials[0]!r})", file=out
        )
        print(f"  OMNISEND_URL={emulator.url(server.base_url)}", file=out)
        print(f"  balance {emulator.balance:g}; Ctrl-C to stop.", file=out, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return OK
        finally:
            signal.signal(signal.SIGTERM, previous)


def _log_requests(emulator: Any, out: TextIO) -> None:
    """Print one line per request the emulator answers: method, path, status, duration (no query, no body)."""
    handle = emulator.handle

    def logged(request: Any) -> Any:
        started = time.perf_counter()
        reply = handle(request)
        outcome = "dropped" if reply.drop else "refused" if reply.refuse else str(reply.status)
        took = (time.perf_counter() - started) * 1000
        print(
            f"{time.strftime('%H:%M:%S')} {request.method} {request.path} -> {outcome} ({took:.1f} ms)",
            file=out,
            flush=True,
        )
        return reply

    emulator.handle = logged


# -- main -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="omnisend", description="Send messages through many vendors.")
    parser.add_argument("--version", action="version", version=f"omnisend {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show omnisend's log (retries, each finished send)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="send through every provider against the embedded emulators")
    demo.add_argument("providers", nargs="*", metavar="PROVIDER", help=f"only these ({', '.join(PROVIDERS)})")

    def connection(command: argparse.ArgumentParser) -> None:
        command.add_argument("--url", help="provider URL (default: $OMNISEND_URL), e.g. smsapi://TOKEN@default")
        command.add_argument("--timeout", type=float, help="seconds per request (default 10)")
        command.add_argument("--no-retry", action="store_true", help="one attempt only")
        command.add_argument("--json", action="store_true", help="print JSON")

    send = sub.add_parser("send", help="send one message, or one per row of a CSV file")
    connection(send)
    send.add_argument("--to", help="recipient, E.164 (+48500100200)")
    send.add_argument("--text", help="message text (for --csv: rows without a 'text' column)")
    send.add_argument("--sender", help="sender name or number")
    send.add_argument("--channel", default="sms", choices=("sms", "whatsapp", "viber"))
    send.add_argument("--key", help="idempotency key: re-run with the same key to never send twice")
    send.add_argument("--csv", metavar="FILE", help="a CSV with a 'to' column (optional 'text', 'sender', 'key')")
    send.add_argument("--concurrency", type=int, default=8, help="sends in flight for --csv (default 8)")
    send.add_argument("--show-failures", type=int, default=20, metavar="N", help="failed rows printed (default 20)")

    status = sub.add_parser("status", help="look up the delivery status of a message")
    connection(status)
    status.add_argument("message_id", metavar="MESSAGE_ID")
    status.add_argument("--provider", help="through a router: the route that took the message (the result's provider)")

    explain = sub.add_parser("explain", help="what a vendor code means: class, retried or not, vendor meaning")
    explain.add_argument("provider", metavar="PROVIDER")
    explain.add_argument("code", metavar="CODE")

    providers = sub.add_parser("providers", help="vendors, their URL schemes and capabilities")
    providers.add_argument("--json", action="store_true", help="print JSON")

    emu = sub.add_parser("emulator", help="serve a vendor emulator over HTTP")
    emu.add_argument("provider", metavar="NAME", help=f"one of {', '.join(PROVIDERS)}")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8080, help="0 picks a free port (default 8080)")
    emu.add_argument("--balance", type=float, help="starting credit (default 1000; each SMS part costs 0.1)")
    emu.add_argument("--log", action="store_true", help="print one line per request")
    return parser


def _logging(verbose: bool, err: TextIO) -> None:
    """omnisend logs a WARNING per failed send; the command prints the error itself, once."""
    logger = logging.getLogger("omnisend")
    if logger.handlers or logging.getLogger().handlers:
        return  # configured by the embedding program
    if verbose:
        handler: logging.Handler = logging.StreamHandler(err)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    logger.addHandler(handler)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    _logging(args.verbose, err)
    try:
        if args.command == "demo":
            unknown = sorted(set(args.providers) - set(PROVIDERS))
            if unknown:
                parser.error(f"unknown provider(s): {', '.join(unknown)}; choose from {', '.join(PROVIDERS)}")
            return run_demo(args.providers, out)
        if args.command == "emulator":
            return run_emulator(args.provider, args.host, args.port, out, balance=args.balance, log=args.log)
        if args.command == "send" and args.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        command = {"send": cmd_send, "status": cmd_status, "explain": cmd_explain, "providers": cmd_providers}
        return command[args.command](args, out, err)
    except UsageError as exc:
        print(f"omnisend {args.command}: error: {exc}", file=err)
        return USAGE
    except ConfigurationError as exc:
        print(f"{type(exc).__name__}: {exc}", file=err)
        return USAGE
    except OmnisendError as exc:
        print(f"{type(exc).__name__}: {exc}", file=err)
        return FAILED
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
