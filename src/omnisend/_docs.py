"""Generate ``docs/providers/<name>.md`` from each adapter's docstring and tables.

Run ``python -m omnisend._docs docs/providers`` (``make docs``); a test fails when a checked-in
page differs from what this renders, so the docs cannot drift from the code.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from .providers import PROVIDERS, get_provider
from .providers._accepts import describe
from .providers.base import ErrorTable, Provider, StatusTable

HEADER = "<!-- Generated from the code by `make docs` (python -m omnisend._docs). Do not edit by hand. -->"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def error_rows(table: ErrorTable) -> list[str]:
    rows = ["| Code | Exception | Retried | Vendor meaning |", "|---|---|---|---|"]
    for code, entry in table.items():
        retried = "yes" if entry.is_retryable else "no"
        if entry.ambiguous:
            retried += " (ambiguous: only where the vendor de-duplicates)"
        if entry.retry_after is not None:
            retried += f", after {entry.retry_after:g}s"
        rows.append(f"| `{_cell(code)}` | `{entry.exc.__name__}` | {retried} | {_cell(entry.meaning)} |")
    return rows


def status_rows(table: StatusTable) -> list[str]:
    rows = ["| Vendor status | DeliveryStatus | Final | Failure reason | Vendor meaning |", "|---|---|---|---|---|"]
    for code, entry in table.items():
        reason = f"`{entry.error.__name__}`" if entry.error else ""
        final = "yes" if entry.status.is_final else "no"
        rows.append(f"| `{_cell(code)}` | `{entry.status.value}` | {final} | {reason} | {_cell(entry.meaning)} |")
    return rows


def extra_tables(cls: type[Provider]) -> list[tuple[str, ErrorTable | StatusTable]]:
    """Further tables a module declares (``DOC_TABLES = [("Title", table), ...]``)."""
    module = sys.modules[cls.__module__]
    return list(getattr(module, "DOC_TABLES", []))


def accepts_rows(cls: type[Provider]) -> list[str]:
    """What a message may carry (``accepts``; a module whose API varies by a setting lists each
    declaration in ``DOC_ACCEPTS = [("Heading", accepts), ...]``)."""
    module = sys.modules[cls.__module__]
    declared = list(getattr(module, "DOC_ACCEPTS", [])) or [("", cls.accepts)]
    lines = [
        "## What a message may carry",
        "",
        "Checked before any request (the adapter's `accepts`, see `omnisend.providers._accepts`); a field",
        "not listed is sent as the message gives it.",
        "",
    ]
    for heading, accepts in declared:
        lines += [f"### {heading}", ""] if heading else []
        lines += [*describe(accepts), ""]
    return lines


def render(cls: type[Provider]) -> str:
    module = sys.modules[cls.__module__]
    doc = inspect.cleandoc(module.__doc__ or cls.display_name)
    title, _, rest = doc.partition("\n")
    lines = [HEADER, "", f"# {cls.display_name} (`{cls.name}`)", "", title.strip(), "", rest.strip(), ""]
    lines += [
        "## Settings",
        "",
        f"- Class: `omnisend.providers.{cls.__name__}`",
        f"- Default host: `{cls.default_base_url}`",
        f"- Credential environment variable: `{cls.credential_env or '(none)'}`",
        f"- Channels: {', '.join(sorted(cls.channels))}",
        f"- Recipients per request: up to {cls.max_recipients}",
        f"- Vendor de-duplicates on the idempotency key: {'yes' if cls.deduplicates else 'no'}",
        "",
        "Retries: "
        + (
            "ambiguous failures (timeouts after the request went out, 5xx without a vendor code) are "
            "retried with the same idempotency key, because the vendor recognises the repeat."
            if cls.deduplicates
            else "ambiguous failures are **not** retried: the vendor cannot recognise a repeat, so "
            "`send()` raises `DeliveryUnknown` with the idempotency key and you reconcile before re-sending."
        ),
        "",
        *accepts_rows(cls),
        f"## Error codes ({len(cls.errors)})",
        "",
        *error_rows(cls.errors),
        "",
        f"## Delivery statuses ({len(cls.statuses)})",
        "",
        *status_rows(cls.statuses),
        "",
    ]
    for heading, table in extra_tables(cls):
        lines += [f"## {heading} ({len(table)})", ""]
        lines += error_rows(table) if isinstance(table, ErrorTable) else status_rows(table)
        lines.append("")
    return "\n".join(lines)


def index(classes: list[type[Provider]]) -> str:
    """The feature matrix: one row per provider."""
    lines = [
        HEADER,
        "",
        "# Providers",
        "",
        "| Provider | Channels | Recipients per request | De-duplicates (ambiguous failures retried) "
        "| Status lookup | Webhook authentication | Error codes | Statuses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cls in classes:
        lookup = "yes" if cls.status_lookup else "no (webhooks only)"
        dedup = "yes" if cls.deduplicates else "no: `DeliveryUnknown`"
        lines.append(
            f"| [{cls.display_name}]({cls.name}.md) (`{cls.__name__}`) | {', '.join(sorted(cls.channels))} "
            f"| {cls.max_recipients} | {dedup} | {lookup} | {cls.webhook_auth} | {len(cls.errors)} | {len(cls.statuses)} |"
        )
    lines += [
        "",
        "Sends above the per-request maximum are split by omnisend (`send_flow`); `send_many` merges",
        "consecutive messages with the same content up to it. Every page lists every vendor code with",
        "its exception class and every delivery status with its `DeliveryStatus`.",
        "",
    ]
    return "\n".join(lines)


def available() -> list[type[Provider]]:
    """Provider classes whose module exists (all of them, once every adapter is written)."""
    found = []
    for name in PROVIDERS:
        try:
            found.append(get_provider(name))
        except ModuleNotFoundError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "docs/providers")
    out.mkdir(parents=True, exist_ok=True)
    classes = available()
    for cls in classes:
        path = out / f"{cls.name}.md"
        path.write_text(render(cls), encoding="utf-8")
        print(f"wrote {path}")
    (out / "index.md").write_text(index(classes), encoding="utf-8")
    print(f"wrote {out / 'index.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
