"""A delivery-report receiver: authenticate the callback, drop replays, read typed reports.

It serves on 127.0.0.1 with the standard library, then plays SMSAPI's part (using the emulator's
callbacks) to show a genuine callback, a replay and a forged one. In production, put the same
``handle`` behind your web framework's route.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import httpx

from omnisend import Client, Message, OmnisendError, WebhookAuthError
from omnisend.providers import Smsapi
from omnisend.testing import SmsapiEmulator
from omnisend.webhooks import ReplayGuard

SECRET = "dlr-secret-2b7e"  # register the callback URL as https://you.example/dlr?token=<SECRET>
guard = ReplayGuard(window=24 * 3600)


def handle(provider: Smsapi, body: bytes, headers: dict[str, str], query: dict[str, str]) -> tuple[int, str]:
    """Return (HTTP status, text) for one callback request."""
    try:
        reports = provider.parse_webhook(body=body, headers=headers, query=query)
    except WebhookAuthError as exc:
        return 401, f"refused: {exc}"
    except OmnisendError as exc:  # malformed payload: tell the vendor, it will not help to retry
        return 400, f"bad payload: {exc}"
    fresh = guard.filter(reports)
    for report in fresh:
        print(f"  report: {report.message_id} {report.status} (final={report.status.is_final}) key={report.idempotency_key}")
    return 200, f"OK ({len(fresh)} new, {len(reports) - len(fresh)} replayed)"


def serve(provider: Smsapi) -> ThreadingHTTPServer:
    class Receiver(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, text = handle(provider, body, dict(self.headers), dict(parse_qsl(parts.query)))
            payload = text.encode()
            self.send_response(status)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


emulator = SmsapiEmulator()
with emulator.serve() as vendor:
    provider = Smsapi(token=emulator.credentials[0], base_url=vendor.base_url, webhook_secret=SECRET)
    receiver = serve(provider)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/dlr"
    with Client(provider) as client:
        sent = [client.send(Message(to=f"+4850010020{n}", text="hello")) for n in range(2)]
    ids = [r.message_id for r in sent if r.message_id]
    for message_id in ids:
        emulator.set_status("DELIVERED", message_id=message_id)
    callback = emulator.callback_query(ids)  # what SMSAPI sends: comma-batched GET parameters

    for label, params in [
        ("genuine callback", {**callback, "token": SECRET}),
        ("the same callback again (vendor retry)", {**callback, "token": SECRET}),
        ("forged callback (no secret)", callback),
        ("forged callback (wrong secret)", {**callback, "token": "guess"}),
    ]:
        answer = httpx.get(url, params=params)
        print(f"{label}: HTTP {answer.status_code} {answer.text}")
    receiver.shutdown()
    receiver.server_close()
