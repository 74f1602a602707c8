"""The ``omnisend`` command (also ``python -m omnisend``).

``omnisend demo`` is the main job (see :mod:`omnisend._demo`); ``omnisend emulator NAME`` serves
a vendor emulator over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from . import __version__
from ._demo import run_demo
from .providers import PROVIDERS
from .testing import EMULATORS, get_emulator

__all__ = ["main", "run_demo", "run_emulator"]


def run_emulator(name: str, host: str, port: int, out: TextIO = sys.stdout) -> int:
    emulator = get_emulator(name)()
    with emulator.serve(host, port) as server:
        print(f"{name} emulator listening on {server.base_url} (credential: {emulator.credentials[0]!r})", file=out)
        print("Ctrl-C to stop.", file=out, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omnisend", description="Send messages through many vendors.")
    parser.add_argument("--version", action="version", version=f"omnisend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="send through every provider against the embedded emulators")
    demo.add_argument("providers", nargs="*", metavar="PROVIDER", help=f"only these ({', '.join(PROVIDERS)})")
    emu = sub.add_parser("emulator", help="serve a vendor emulator over HTTP")
    emu.add_argument("provider", choices=list(EMULATORS))
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if args.command == "demo":
        unknown = sorted(set(args.providers) - set(PROVIDERS))
        if unknown:
            parser.error(f"unknown provider(s): {', '.join(unknown)}; choose from {', '.join(PROVIDERS)}")
        return run_demo(args.providers)
    return run_emulator(args.provider, args.host, args.port)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
