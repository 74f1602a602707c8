"""`omnisend demo` and `omnisend emulator`, and the runnable examples."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from omnisend.cli import main, run_demo

ROOT = Path(__file__).parent.parent


def test_demo_shows_every_scenario_for_smsapi() -> None:
    out = io.StringIO()
    assert run_demo(["smsapi"], out=out) == 0
    text = out.getvalue()
    assert "== SMSAPI (smsapi) — emulator at http://127.0.0.1:" in text
    assert "1. sent to +48500100200: message_id=" in text
    assert "log: smsapi: attempt 1 failed with smsapi: Too many requests" in text
    assert "2. vendor answered rate limit (code 203), omnisend waited and retried: status=queued attempts=2" in text
    assert "3. caught InvalidRecipient: smsapi:" in text and "(code 13, HTTP 200)  [retryable=False]" in text
    assert "4. caught InsufficientBalance: smsapi: Insufficient credits" in text
    assert "5. delivery report (webhook): " in text
    assert "status=delivered final=True (SMSAPI status 404: DELIVERED: Message is delivered to recipient)" in text
    assert "status lookup: delivered (SMSAPI status 'DELIVERED': Message is delivered to recipient)" in text
    assert text.rstrip().endswith("(README.md, docs/testing.md).") and "Next step: " in text
    assert "duplicates: 0" in text


def test_demo_says_an_unsupported_lookup_is_unsupported() -> None:
    out = io.StringIO()
    assert run_demo(["webex_connect"], out=out) == 0
    assert "status lookup: not offered by Webex Connect; delivery reports come by webhook only" in out.getvalue()
    assert "ValidationError" not in out.getvalue()


def test_demo_goes_live_with_a_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    import respx

    monkeypatch.setenv("OMNISEND_SMSAPI_TOKEN", "live-token-value")
    monkeypatch.setenv("OMNISEND_DEMO_TO", "+48500100200")
    out = io.StringIO()
    with respx.mock() as router:
        route = router.post("https://api.smsapi.pl/sms.do").mock(
            return_value=httpx.Response(200, json={"count": 1, "list": [{"id": "L1", "number": "48500100200", "status": "QUEUE"}]})
        )
        run_demo(["smsapi"], out=out)
    assert route.call_count == 1
    assert "LIVE" in out.getvalue() and "host: https://api.smsapi.pl" in out.getvalue()
    assert "message_id=L1" in out.getvalue()
    assert "live-token-value" not in out.getvalue()


def test_unknown_provider_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="2"):
        main(["demo", "nosuchvendor"])
    assert "unknown provider(s): nosuchvendor" in capsys.readouterr().err


def test_emulator_command_serves_http() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnisend.cli", "emulator", "smsapi", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("smsapi emulator listening on http://127.0.0.1:")
        base = line.split(" on ")[1].split(" ")[0]
        answer = httpx.post(f"{base}/sms.do", data={"to": "48500100200", "message": "hi", "format": "json"}, headers={"Authorization": "Bearer test-token"})
        assert answer.json()["list"][0]["number"] == "48500100200"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_run(script: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "an example must print what happens"


def test_live_demo_reports_a_configuration_error_instead_of_crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISEND_SMSAPI_TOKEN", "live-token-value")
    monkeypatch.setenv("OMNISEND_DEMO_TO", "not-a-number")
    out = io.StringIO()
    assert run_demo(["smsapi"], out=out) == 0
    assert "InvalidRecipient: Message.to: recipient" in out.getvalue()
