"""Where a send's CPU goes: ``python benchmarks/profile_send.py [sync|async|mobizon|import] [N]``.

Runs N sends against the benchmark server (after a warm-up) under ``cProfile`` and prints the
CPU time of the functions of each layer (their own time, summed by where their code lives):
omnisend itself, httpx, httpcore + h11, aiohttp (+ multidict, yarl), pydantic, asyncio, the
standard library and socket calls, then the top functions. ``import`` profiles a fresh
interpreter's import + first send instead. The profiler slows Python-level calls more than C
calls, so shares are indicative; ``docs/performance.md`` quotes them next to the benchmark
figures, which are measured without it.
"""

from __future__ import annotations

import asyncio
import cProfile
import itertools
import pstats
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator

from _harness import TOKEN, child_env, emulator_server, number, text

from omnisend import AsyncClient, Client, Message
from omnisend.providers import Mobizon, Smsapi
from omnisend.testing.mobizon import MobizonEmulator

LAYERS = (
    ("omnisend", ("/omnisend/",)),
    ("httpx", ("/httpx/",)),
    ("httpcore + h11", ("/httpcore/", "/h11/")),
    ("aiohttp + multidict + yarl", ("/aiohttp/", "/multidict/", "/yarl/", "/httpx_aiohttp/")),
    ("pydantic", ("/pydantic", "pydantic_core")),
    ("asyncio", ("/asyncio/",)),
    ("socket calls", ("_socket.socket", "select.", "epoll")),
)


def layer(path: str) -> str:
    for name, marks in LAYERS:
        if any(mark in path for mark in marks):
            return name
    return "other (stdlib, builtins)"


def report(profile: cProfile.Profile, count: int, top: int = 15) -> None:
    stats = pstats.Stats(profile)
    totals: dict[str, float] = defaultdict(float)
    rows = []
    for (path, line, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{path}:{name}" if path != "~" else name
        totals[layer(where)] += tottime
        rows.append((tottime, f"{path.split('site-packages/')[-1].split('/src/')[-1]}:{line}({name})"))
    whole = sum(totals.values())
    print(f"CPU under the profiler: {whole / count * 1e6:.0f} us per send ({count} sends)")
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {name:<28} {100 * seconds / whole:5.1f} %   {seconds / count * 1e6:6.0f} us")
    print("top functions (own time):")
    for seconds, where in sorted(rows, reverse=True)[:top]:
        print(f"  {seconds / count * 1e6:6.1f} us  {where}")


def sync(count: int, provider: str = "smsapi") -> None:
    with emulator_server(provider) as url:
        counter = itertools.count()
        if provider == "mobizon":
            adapter: Smsapi | Mobizon = Mobizon(api_key=MobizonEmulator.default_credential, base_url=url)
        else:
            adapter = Smsapi(token=TOKEN, base_url=url)
        with Client(adapter) as client:

            def send(n: int) -> None:
                for _ in range(n):
                    i = next(counter)
                    to = number(i) if provider == "smsapi" else f"+7701{i % 10_000_000:07d}"
                    client.send(Message(to=to, text=text(i), sender="Shop"))

            send(200)
            profile = cProfile.Profile()
            profile.runcall(send, count)
    report(profile, count)


def asynchronous(count: int) -> None:
    with emulator_server("smsapi") as url:
        counter = itertools.count()

        def messages(n: int) -> Iterator[Message]:
            for _ in range(n):
                i = next(counter)
                yield Message(to=number(i), text=text(i), sender="Shop")

        async def main() -> cProfile.Profile:
            async with AsyncClient(Smsapi(token=TOKEN, base_url=url)) as client:
                async for _ in client.send_many(messages(300), concurrency=50):
                    pass
                profile = cProfile.Profile()
                profile.enable()
                async for outcome in client.send_many(messages(count), concurrency=50):
                    assert outcome.ok, outcome.error
                profile.disable()
                return profile

        report(asyncio.run(main()), count)


def first_send() -> None:
    with emulator_server("smsapi") as url:
        program = f"""
import cProfile, sys
sys.modules['phonenumbers'] = None
profile = cProfile.Profile()
profile.enable()
from omnisend import Client, Message
from omnisend.providers import Smsapi
with Client(Smsapi(token={TOKEN!r}, base_url={url!r})) as client:
    client.send(Message(to="+48500100200", text="Your code is 123456", sender="Shop"))
profile.disable()
sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r})
import profile_send
profile_send.report(profile, 1, top=20)
"""
        subprocess.run([sys.executable, "-c", program], env=child_env(), check=True)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "sync"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    if what == "async":
        asynchronous(n)
    elif what == "mobizon":
        sync(n, "mobizon")
    elif what == "import":
        first_send()
    else:
        sync(n)
