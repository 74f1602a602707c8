"""Every Python code block of README.md and docs/**/*.md runs, against the emulators.

The blocks of one page run in order in one namespace (a page's later blocks use its earlier ones).
Requests to a vendor's production host are answered in-process by that vendor's emulator, which
accepts the placeholder credentials (``"..."``, ``TOKEN``, ``KEY``...) as well as its own, so a snippet written for real
use (``Smsapi(token="...")``) runs as written. A block that cannot run here says so on the line
before its fence, ``<!-- docs-test: skip REASON -->``, or on its first line, ``# needs: WHAT``,
and is listed by name (page:line) in the skip reason of its page's test.

Fragments may use the names a reader has at hand in any app: ``provider`` (an ``Smsapi``),
``message`` and ``messages`` (a list of them), and ``body``/``headers``/``query``, a delivery
callback as SMSAPI sends it to a web app; see :func:`preset`.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnisend.testing import EMULATORS, Emulator, get_emulator

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s+(.+?)\s*-->\s*$")
NEEDS = re.compile(r"^#\s*(needs\b:?.*?)\s*$")

#: Credentials the docs write for "your key here"; the emulators standing in for vendors accept them.
PLACEHOLDERS = ("...", "TOKEN", "KEY", "API_KEY", "SERVICE_KEY")

#: host fragment → emulator of the vendor whose production host it is.
HOSTS = {
    "smsapi.": "smsapi",
    "clickatell.com": "clickatell",
    "edna.": "edna",
    "mobizon.": "mobizon",
    "webexconnect.io": "webex_connect",
    "twilio.com": "twilio",
}


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    skip: str | None

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        needs = NEEDS.match(match.group(2).split("\n", 1)[0])
        reason = skip.group(1) if skip else needs.group(1) if needs else None
        found.append(Block(str(page.relative_to(ROOT)), line, match.group(2), reason))
    return found


class _Vendors:
    """The emulators standing in for every vendor's production host during one page."""

    def __init__(self) -> None:
        self.emulators: dict[str, Emulator] = {}

    def emulator(self, host: str) -> Emulator | None:
        for fragment, name in HOSTS.items():
            if fragment in host and name in EMULATORS:
                if name not in self.emulators:
                    cls = get_emulator(name)
                    self.emulators[name] = cls(credentials=(cls.default_credential, *PLACEHOLDERS))
                return self.emulators[name]
        return None


@contextlib.contextmanager
def vendors_emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Vendors]:
    vendors = _Vendors()
    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        emulator = vendors.emulator(request.url.host)
        if emulator is not None:
            return emulator.transport().handle_request(request)
        return sync_send(self, request)

    async def handle_async_request(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        emulator = vendors.emulator(request.url.host)
        if emulator is not None:
            return await emulator.transport().handle_async_request(request)
        return await async_send(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle_request)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request)
    yield vendors


def preset() -> dict[str, Any]:
    """What a page's fragments may take as given."""
    from omnisend import Message
    from omnisend.providers import Smsapi
    from omnisend.testing import SmsapiEmulator

    vendor = SmsapiEmulator()
    record = vendor.accept(to="+48500100200", text="Your code is 1234", key="order-7")
    callback = vendor.deliver(record.id)
    return {
        "body": b"",
        "headers": {},
        "query": callback["query"],
        "__name__": "__docs__",
        "provider": Smsapi(token="..."),
        "message": Message(to="+48500100200", text="Your code is 1234"),
        "messages": [Message(to=f"+4850010020{i}", text="Sale starts now") for i in range(3)],
    }


def run(block: Block, namespace: dict[str, Any]) -> None:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code = compile(block.code, block.name, "exec", flags=flags)
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


ALL = {str(page.relative_to(ROOT)): blocks(page) for page in PAGES}


@pytest.mark.parametrize("page", [p for p, found in ALL.items() if found])
def test_code_blocks_run(page: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("OMNISEND_URL", "OMNISEND_SMSAPI_TOKEN", "OMNISEND_DEMO_TO"):
        monkeypatch.delenv(variable, raising=False)
    namespace = preset()
    skipped = []
    with vendors_emulated(monkeypatch), contextlib.redirect_stdout(io.StringIO()):
        for block in ALL[page]:
            if block.skip is not None:
                skipped.append(f"{block.name} ({block.skip})")
                continue
            try:
                run(block, namespace)
            except BaseException as exc:
                raise AssertionError(f"the code block at {block.name} failed: {type(exc).__name__}: {exc}") from exc
    if skipped:
        pytest.skip("ran the others; not run here: " + "; ".join(skipped))


def test_every_skip_says_why() -> None:
    for found in ALL.values():
        for block in found:
            assert block.skip is None or len(block.skip) > 10, block.name


def test_the_collector_finds_blocks_and_skips() -> None:
    readme = ALL["README.md"]
    assert readme and all(b.code.strip() for b in readme)
    sample = "text\n<!-- docs-test: skip needs a real Redis -->\n```python\nx = 1\n```\n"
    page = ROOT / "tests" / "__sample__.md"
    try:
        page.write_text(sample, encoding="utf-8")
        (block,) = blocks(page)
    finally:
        page.unlink()
    assert block.skip == "needs a real Redis" and block.code == "x = 1\n" and block.line == 3
    page.write_text("```python\n# needs: a redis-server\nx = 1\n```\n", encoding="utf-8")
    try:
        (block,) = blocks(page)
    finally:
        page.unlink()
    assert block.skip == "needs: a redis-server"
