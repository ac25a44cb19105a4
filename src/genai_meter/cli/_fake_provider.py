"""`genai-meter fake-provider`: run the fake LLM provider in the foreground for demos and manual tests.

It prints exactly one line with its URL (flushed) so scripts can start it with `--port 0` and read
the port they got, then serves until SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from genai_meter.fake_provider import FakeProvider


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fake-provider",
        help="run a local fake OpenAI/Anthropic/Gemini API (for demos and tests)",
        description="Serve a fake LLM provider on HOST:PORT until interrupted (port 0 picks a free port).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_type("--port"), default=0, help="port to bind; 0 picks a free one (default: 0)"
    )
    parser.set_defaults(func=_run)


def port_type(option: str) -> Callable[[str], int]:
    """An argparse `type` for a TCP port option (0: a free one), whose errors name `option`."""

    def port(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option}: expected an integer, got {value!r}") from None
        if not 0 <= number <= 65535:
            raise argparse.ArgumentTypeError(f"{option}: {number} is outside 0..65535")
        return number

    return port


def _run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            provider = FakeProvider(host=args.host, port=args.port).start()
        except OSError as err:
            print(
                f"fake-provider: cannot listen on {args.host}:{args.port}: {err.strerror or err}",
                file=sys.stderr,
            )
            return 2
        try:
            print(f"fake provider listening on {provider.base_url}", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            provider.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
