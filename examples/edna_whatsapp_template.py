"""Send a WhatsApp template through edna Pulse, against the embedded edna emulator (no credentials).

edna matches WhatsApp templates by their text, so the approved text is registered on the provider
and ``Template.params`` fill its ``{{1}}``/``{{2}}`` placeholders. The script then reads the
delivery report (a signed callback), shows typed errors, and a timeout after edna took the message
being retried with the same requestId: still exactly one message.

Run: ``.venv/bin/python examples/edna_whatsapp_template.py``. Against the real edna Pulse, build
``Edna(api_key=..., cascade_id={"whatsapp": <your cascade>}, templates=...)`` instead of
``emulator.make_provider(...)``.
"""

from __future__ import annotations

from omnisend import Client, DeliveryStatus, Message, RetryPolicy, Template, TemplateError, ValidationError
from omnisend.testing import EdnaEmulator, Fault

APPROVED = {"order_ready": "Your order {{1}} is ready for pickup at {{2}}."}


def main() -> int:
    emulator = EdnaEmulator(templates=tuple(APPROVED.values()), webhook_key="hook-secret-42")
    with emulator.serve() as server:
        provider = emulator.make_provider(server.base_url, templates=APPROVED)
        with Client(provider, retry=RetryPolicy(initial_wait=0.1), timeout=2.0) as client:
            message = Message(
                to="+48500100200",
                channel="whatsapp",
                template=Template(name="order_ready", params=["A-1042", "Main St 5"]),
            )
            result = client.send(message)
            print(f"sent: message_id={result.message_id} status={result.status} attempts={result.attempts}")
            print(f"  edna got: {emulator.messages[result.message_id].text!r}")

            (report,) = provider.parse_webhook(**emulator.deliver(result.message_id))
            print(f"callback (webhook key checked): status={report.status} vendor_status={report.vendor_status!r}")
            print(f"status lookup: {client.get_status(result.message_id).status}")

            try:
                client.send(message.model_copy(update={"template": Template(name="order_ready", params=["A-1043"])}))
            except TemplateError as exc:
                print(f"caught before any request: {type(exc).__name__}: {exc}")
            try:
                client.send(
                    Message(to="+48500100200", channel="whatsapp", text="x", options={"location": {"latitude": 52.2}})
                )
            except ValidationError as exc:
                print(f"caught before any request: {type(exc).__name__}: {exc} [field={exc.field}]")

            emulator.script(Fault.drop_after_accept())
            retried = client.send(
                Message(
                    to="+48500100201",
                    channel="whatsapp",
                    template=Template(name="order_ready", params=["B-7", "Dock 2"]),
                )
            )
            print(
                f"connection dropped after edna took it: attempts={retried.attempts} deduplicated={retried.deduplicated}"
            )
    print(f"emulator holds {emulator.accepted_count} messages, duplicates: {emulator.duplicates()}")
    ok = report.status is DeliveryStatus.DELIVERED and retried.deduplicated and emulator.duplicates() == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
