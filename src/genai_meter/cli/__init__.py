"""The `genai-meter` command: one sub-command module per job, each adding its own parsers.

A user's mistake (bad argument, unreadable file, unreachable database) is one clear line on stderr
and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._version import __version__

# Each module defines `register(subparsers)`; handlers are set with `set_defaults(func=...)`.
_COMMAND_MODULES = (
    "genai_meter.cli._demo",
    "genai_meter.cli._fake_provider",
    "genai_meter.cli._prices",
    "genai_meter.cli._ledger",
    "genai_meter.cli._budgets",
    "genai_meter.cli._dashboards",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genai-meter", description="Meter, attribute and budget the cost of LLM calls."
    )
    parser.add_argument("--version", action="version", version=f"genai-meter {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
