"""`omnisend send/status/explain/providers/emulator` and `python -m omnisend`, run as subprocesses."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnisend.testing import EmulatorServer, Fault, SmsapiEmulator

pytestmark = pytest.mark.tcp

SECRET = "cli-s3cret-token"


def omnisend(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    merged = {k: v for k, v in os.environ.items() if k != "OMNISEND_URL"}
    merged.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "omnisend", *args], capture_output=True, text=True, timeout=60, env=merged, **kwargs  # type: ignore[call-overload]
    )


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.fixture
def emulator() -> Iterator[tuple[SmsapiEmulator, EmulatorServer]]:
    emu = SmsapiEmulator(credentials=(SECRET,))
    with emu.serve() as server:
        yield emu, server


def test_send_prints_the_message_id(emulator: tuple[SmsapiEmulator, EmulatorServer]) -> None:
    emu, server = emulator
    done = omnisend("send", "--url", emu.url(server.base_url), "--to", "+48500100200", "--text", "hi", "--sender", "Shop")
    assert done.returncode == 0, done.stderr
    (record,) = emu.messages.values()
    assert done.stdout.strip() == record.id
    assert (record.to, record.text, record.sender) == ("+48500100200", "hi", "Shop")


def test_send_reads_omnisend_url_and_prints_json(emulator: tuple[SmsapiEmulator, EmulatorServer]) -> None:
    emu, server = emulator
    done = omnisend("send", "--to", "+48500100200", "--text", "hi", "--json", "--key", "order-7", env={"OMNISEND_URL": emu.url(server.base_url)})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["provider"] == "smsapi" and result["status"] == "queued" and result["idempotency_key"] == "order-7"
    assert result["recipients"][0]["message_id"] == next(iter(emu.messages))


def test_a_typed_error_exits_1_with_one_line(emulator: tuple[SmsapiEmulator, EmulatorServer]) -> None:
    emu, server = emulator
    emu.balance = 0
    done = omnisend("send", "--url", emu.url(server.base_url), "--to", "+48500100200", "--text", "hi")
    assert done.returncode == 1
    assert done.stderr.startswith("InsufficientBalance: smsapi: Insufficient credits")
    no_traceback(done)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("send", "--to", "+48500100200", "--text", "x"), "no provider URL: pass --url URL or set OMNISEND_URL"),
        (("send", "--url", f"smsapi://{SECRET}@default?nope=1", "--to", "+48500100200", "--text", "x"), "ConfigurationError: bad omnisend URL smsapi://***@default?nope=1"),
        (("send", "--url", "smsapi://t@default", "--to", "+48500100200"), "--text TEXT is required"),
        (("send", "--url", "smsapi://t@default", "--csv", "/nonexistent/file.csv"), "cannot read /nonexistent/file.csv"),
        (("send", "--bogus"), "unrecognized arguments: --bogus"),
        (("nosuchcommand",), "invalid choice: 'nosuchcommand'"),
        (("explain", "nosuchvendor", "1"), "unknown provider 'nosuchvendor'"),
        (("emulator", "nosuchvendor"), "no emulator 'nosuchvendor'"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    done = omnisend(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert SECRET not in done.stderr
    no_traceback(done)


def test_status_reads_the_delivery_status(emulator: tuple[SmsapiEmulator, EmulatorServer]) -> None:
    emu, server = emulator
    sent = omnisend("send", "--url", emu.url(server.base_url), "--to", "+48500100200", "--text", "hi")
    message_id = sent.stdout.strip()
    emu.set_status("DELIVERED", message_id=message_id)
    done = omnisend("status", "--url", emu.url(server.base_url), message_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{message_id}: delivered (vendor status 'DELIVERED'), final"
    missing = omnisend("status", "--url", emu.url(server.base_url), "NOPE123")
    assert missing.returncode == 1 and missing.stderr.startswith("NotFound: smsapi:")


def test_status_through_a_router_names_the_route(emulator: tuple[SmsapiEmulator, EmulatorServer]) -> None:
    emu, server = emulator
    url = f"failover({emu.url(server.base_url)}&name=main)"
    sent = omnisend("send", "--url", url, "--to", "+48500100200", "--text", "hi", "--json")
    result = json.loads(sent.stdout)
    assert result["provider"] == "main"
    done = omnisend("status", "--url", url, "--provider", "main", result["message_id"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{result['message_id']}: queued")


def test_status_where_the_vendor_has_no_lookup_says_so() -> None:
    done = omnisend("status", "--url", "webex-connect://key@default", "some-id")
    assert done.returncode == 1
    assert done.stderr.strip() == "Unsupported: webex_connect: Webex Connect offers no status lookup; delivery reports arrive by webhook"


def test_explain_a_code_and_a_status() -> None:
    done = omnisend("explain", "smsapi", "103")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "smsapi code 103: InsufficientBalance (not retried; the vendor did not take the message)"
    assert "vendor: Insufficient credits" in done.stdout
    assert "retried;" in omnisend("explain", "webex-connect", "7020").stdout.splitlines()[0]
    status = omnisend("explain", "smsapi", "DELIVERED")
    assert status.stdout.startswith("smsapi delivery status DELIVERED: delivered (final)")
    unknown = omnisend("explain", "Clickatell", "999999")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "clickatell: unknown code '999999' (not in the vendor's tables; omnisend raises ProviderError for it)"


def test_providers_lists_every_vendor_with_its_url() -> None:
    from omnisend.providers import PROVIDERS

    done = omnisend("providers", "--json")
    rows = json.loads(done.stdout)
    assert [row["id"] for row in rows] == list(PROVIDERS)
    smsapi = rows[0]
    assert smsapi["url"] == "smsapi://TOKEN@default" and smsapi["deduplicates"] is True and smsapi["status_lookup"] is True
    text = omnisend("providers").stdout
    assert "webex-connect://SERVICE_KEY@default" in text and "status lookup: no (webhooks only)" in text


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "campaign.csv"
    path.write_text("to,text\n+48500100200,hello\n+48500100201,\nnot-a-number,x\n+48500100203,bye\n", encoding="utf-8")
    return path


def test_csv_sends_in_bulk_with_a_summary(emulator: tuple[SmsapiEmulator, EmulatorServer], tmp_path: Path) -> None:
    emu, server = emulator
    done = omnisend("send", "--url", emu.url(server.base_url), "--csv", str(_csv(tmp_path)), "--text", "default text")
    assert done.returncode == 1  # one row failed
    assert done.stdout.strip().startswith("sent 3, failed 1 (InvalidRecipient 1), duplicates 0 — 4 rows in ")
    assert "row 4 (not-a-number): InvalidRecipient:" in done.stderr
    assert "\r[" not in done.stderr  # no progress bar when stderr is not a terminal
    assert sorted(r.text or "" for r in emu.messages.values()) == ["bye", "default text", "hello"]
    assert emu.duplicates() == 0


def test_csv_rerun_with_keys_sends_nothing_twice(emulator: tuple[SmsapiEmulator, EmulatorServer], tmp_path: Path) -> None:
    emu, server = emulator
    path = tmp_path / "keys.csv"
    path.write_text("to,text,key\n+48500100200,a,k-1\n+48500100201,b,k-2\n", encoding="utf-8")
    first = omnisend("send", "--url", emu.url(server.base_url), "--csv", str(path), "--json")
    again = omnisend("send", "--url", emu.url(server.base_url), "--csv", str(path), "--json")
    assert json.loads(first.stdout)["sent"] == 2
    summary = json.loads(again.stdout)
    assert (summary["sent"], summary["failed"], summary["duplicates"]) == (2, 0, 2)
    assert emu.accepted_count == 2 and emu.duplicates() == 0


def test_csv_shows_a_progress_bar_on_a_terminal(emulator: tuple[SmsapiEmulator, EmulatorServer], tmp_path: Path) -> None:
    emu, server = emulator
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "omnisend", "send", "--url", emu.url(server.base_url), "--csv", str(_csv(tmp_path)), "--text", "t"],
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            timeout=60,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    terminal = b"".join(chunks).decode()
    assert done.returncode == 1
    assert "[" + "#" * 30 + "] 4/4 failed 1" in terminal


def test_emulator_on_a_busy_port_is_one_line_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = omnisend("emulator", "smsapi", "--port", str(port))
    assert done.returncode == 2
    assert done.stderr.strip() == f"omnisend emulator: error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_emulator_with_balance_and_log() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnisend", "emulator", "smsapi", "--port", "0", "--balance", "0.1", "--log"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url_line = proc.stdout.readline()
        assert first.startswith("smsapi emulator listening on http://127.0.0.1:")
        url = url_line.strip().removeprefix("OMNISEND_URL=")
        assert url.startswith("smsapi://test-token@127.0.0.1:") and url.endswith("?tls=0")
        assert "balance 0.1" in proc.stdout.readline()
        ok = omnisend("send", "--url", url, "--to", "+48500100200", "--text", "hi")
        broke = omnisend("send", "--url", url, "--to", "+48500100200", "--text", "hi")
        assert ok.returncode == 0 and broke.returncode == 1 and broke.stderr.startswith("InsufficientBalance")
        log = [proc.stdout.readline() for _ in range(2)]
        assert all(" POST /sms.do -> 200 (" in line for line in log), log
        assert all("test-token" not in line for line in log)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM stops it cleanly
        if proc.stdout is not None:
            proc.stdout.close()


def test_verbose_shows_omnisends_log(emulator: tuple[SmsapiEmulator, EmulatorServer]) -> None:
    emu, server = emulator
    emu.script(Fault.vendor_error(203))
    done = omnisend("-v", "send", "--url", emu.url(server.base_url), "--to", "+48500100200", "--text", "hi")
    assert done.returncode == 0
    assert "smsapi: attempt 1 failed with smsapi: Too many requests" in done.stderr
