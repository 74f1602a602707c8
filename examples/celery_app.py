"""Send a campaign from two Celery workers: one idempotency key per message, nothing sent twice.

Run it as it is — ``python examples/celery_app.py`` — and it starts everything on 127.0.0.1 (a
redis-server, the SMSAPI emulator, two Celery workers), runs a small campaign twice (the second
run sends nothing), prints the outcomes and stops it all. It needs ``pip install 'omnisend[celery]'``
and ``redis-server`` on PATH (``apt-get install -y --no-install-recommends redis-server``).

With your own Redis and SMSAPI account, this module is the worker:

    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes
    export OMNISEND_REDIS_URL=redis://127.0.0.1:6379/0 OMNISEND_SMSAPI_TOKEN=your-token
    cd examples
    celery -A celery_app worker -P threads -c 8 -n worker1@%h
    celery -A celery_app worker -P threads -c 8 -n worker2@%h

and any process enqueues and reads outcomes:

    python celery_app.py --campaign spring-sale +48500100200 +48500100201
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

from omnisend import Client, Message
from omnisend.celery import CelerySender
from omnisend.providers import Smsapi
from omnisend.stores import connect

HERE = Path(__file__).resolve().parent


def make_client() -> Client:
    """The Client each worker process sends with (built once per process)."""
    provider = Smsapi(token=os.environ["OMNISEND_SMSAPI_TOKEN"], base_url=os.environ.get("OMNISEND_SMSAPI_URL"))
    # a whole send (retries included) ends within 10 s: far below half the visibility timeout
    return Client(provider, timeout=10.0)


def make_app(redis_url: str) -> tuple[Celery, CelerySender]:
    app = Celery("campaigns", broker=redis_url)
    # A task whose worker died comes back after the visibility timeout. Keep it well above the longest
    # send and every countdown: omnisend caps its own countdowns at half of it.
    app.conf.broker_transport_options = {"visibility_timeout": 600}
    app.conf.worker_prefetch_multiplier = 1
    app.conf.broker_connection_retry_on_startup = True
    sender = CelerySender(app, client=make_client, redis_url=redis_url, rate_limits={"smsapi": "50/second"})
    return app, sender


app, sender = make_app(os.environ.get("OMNISEND_REDIS_URL", "redis://127.0.0.1:6379/0"))


def run_campaign(sender: CelerySender, name: str, numbers: Sequence[str], text: str) -> list[str]:
    """Enqueue one message per number. Keys derive from the campaign and the number, so running the
    same campaign again (after a crash, by mistake) sends nothing twice."""
    messages = [Message(to=n, text=text, sender="Shop", idempotency_key=f"{name}:{n}") for n in numbers]
    return sender.enqueue_many(messages)


def summary(sender: CelerySender, keys: Sequence[str], timeout: float = 120.0) -> Counter[str]:
    """Wait for every key's outcome; how many were sent and how many failed, by error class."""
    counts: Counter[str] = Counter()
    for outcome in sender.wait(keys, timeout=timeout):
        counts["sent" if outcome.ok else type(outcome.error).__name__] += 1
    return counts


# -- the self-contained demo ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_redis() -> Iterator[str]:
    port, workdir = free_port(), tempfile.mkdtemp(prefix="omnisend-example-")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*command, "--dir", workdir], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def two_workers(demo_app: Celery, env: dict[str, str]) -> Iterator[None]:
    command = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-P", "threads", "-c", "8", "-l", "WARNING"]
    procs = [
        subprocess.Popen([*command, "-n", f"worker{n}@%h"], cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(demo_app.control.ping(timeout=0.5)) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the workers did not start")
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)


def demo() -> int:
    if shutil.which("redis-server") is None:
        print("redis-server is not installed: apt-get install -y --no-install-recommends redis-server")
        return 0
    from omnisend.testing import SmsapiEmulator

    emulator = SmsapiEmulator()
    with local_redis() as redis_url, emulator.serve() as server:
        env = {**os.environ, "OMNISEND_REDIS_URL": redis_url, "OMNISEND_SMSAPI_TOKEN": emulator.credentials[0]}
        env["OMNISEND_SMSAPI_URL"] = server.base_url
        demo_app, demo_sender = make_app(redis_url)
        print(f"redis-server at {redis_url}, SMSAPI emulator at {server.base_url}; starting two workers")
        with two_workers(demo_app, env):
            numbers = [f"+4850010{n:04d}" for n in range(40)]
            keys = run_campaign(demo_sender, "spring-sale", numbers, "Spring sale: -20% today")
            print(f"campaign enqueued: {len(keys)} messages; outcomes: {dict(summary(demo_sender, keys))}")
            again = run_campaign(demo_sender, "spring-sale", numbers[:10], "Spring sale: -20% today")
            print(f"the first 10 enqueued again: {dict(summary(demo_sender, again))} (the outcomes already there)")
            outcome = demo_sender.outcome(keys[0])
            assert outcome is not None and outcome.result is not None
            print(f"{keys[0]}: ok={outcome.ok}, message id {outcome.result.message_id}, by worker {outcome.worker}")
            broker = connect(redis_url)
            deadline = time.monotonic() + 30
            while (broker.llen("celery") or broker.hlen("unacked")) and time.monotonic() < deadline:
                time.sleep(0.05)  # the repeated tasks run, find the outcome and send nothing
        duplicates = emulator.duplicates()
        print(f"the emulator received {emulator.accepted_count} messages for {len(numbers)} numbers, {duplicates} duplicates")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Enqueue a campaign on the workers of this module.")
    parser.add_argument("--campaign", help="campaign name (the keys derive from it)")
    parser.add_argument("numbers", nargs="*")
    parser.add_argument("--text", default="Hello from omnisend")
    args = parser.parse_args(argv)
    if not args.campaign:
        return demo()
    keys = run_campaign(sender, args.campaign, args.numbers, args.text)
    print(dict(summary(sender, keys)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
