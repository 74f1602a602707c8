"""The pytest plugin, run as a user runs it: pytest in a subprocess, in an empty directory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_TESTS = '''
import socket

import httpx
import pytest

from omnisend import Client, InsufficientBalance, InvalidRecipient, Message, RetryPolicy
from omnisend.testing import INVALID_NUMBER, Fault

SERVED = []


def test_send_through_the_fixture(omnisend_emulator):
    emu = omnisend_emulator("smsapi", balance=0.15)
    SERVED.append(emu.base_url)
    with Client(emu.provider(), retry=None) as client:
        result = client.send(Message(to="+48500100200", text="Your code is 1234"))
        assert emu.messages[result.message_id].text == "Your code is 1234"
        with pytest.raises(InvalidRecipient):
            client.send(Message(to=INVALID_NUMBER, text="x"))
        with pytest.raises(InsufficientBalance):
            client.send(Message(to="+48500100201", text="x"))
    emu.balance = 10                      # set on the emulator itself
    assert emu.emulator.balance == 10


def test_the_server_of_the_previous_test_is_stopped():
    host, port = SERVED[0].removeprefix("http://").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass


def test_webhook_secret_and_retry_after(omnisend_emulator):
    emu = omnisend_emulator("webex-connect")
    sleeps = []
    provider = emu.provider(webhook_secret="hub-secret")
    with Client(provider, retry=RetryPolicy(sleep=sleeps.append)) as client:
        emu.script(Fault.rate_limited(retry_after=7))
        result = client.send(Message(to="+48500100200", text="hi"))
    assert sleeps == [7.0] and result.attempts == 2
    (report,) = provider.parse_webhook(**emu.deliver(result.message_id))
    assert report.status == "delivered"


def test_two_emulators_at_once(omnisend_emulator):
    a, b = omnisend_emulator("clickatell"), omnisend_emulator("mobizon")
    assert a.base_url != b.base_url
    assert httpx.get(a.base_url + "/nowhere").status_code == 404
    assert a.url().startswith("clickatell://")


def test_unknown_emulator(omnisend_emulator):
    omnisend_emulator("nosuchvendor")
'''


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.tcp
def test_the_fixture_in_a_users_project(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS, encoding="utf-8")
    done = run_pytest(tmp_path, "-rA")
    assert "1 failed, 4 passed" in done.stdout, done.stdout + done.stderr
    assert "omnisend_emulator: no emulator 'nosuchvendor'; known: smsapi, clickatell" in done.stdout
    assert "During handling" not in done.stdout


def test_the_plugin_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            def test_uses_it(omnisend_emulator):
                pass
            """
        ),
        encoding="utf-8",
    )
    off = run_pytest(tmp_path, "-p", "no:omnisend")
    assert "fixture 'omnisend_emulator' not found" in off.stdout
    plugins = run_pytest(tmp_path, "--trace-config")
    assert "omnisend.testing.pytest_plugin" in plugins.stdout or "omnisend-" in plugins.stdout


def test_loading_the_plugin_imports_no_emulator_http_or_models() -> None:
    code = (
        "import sys, omnisend.testing.pytest_plugin\n"
        "heavy = [m for m in ('httpx', 'pydantic', 'omnisend.client', 'omnisend.testing._emulator') if m in sys.modules]\n"
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
