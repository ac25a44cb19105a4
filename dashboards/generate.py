"""Regenerate this folder from code: `python dashboards/generate.py [--check]`.

A thin wrapper around `genai-meter dashboards --out <this folder>`; the generator itself lives in
`genai_meter.monitoring` so that an installed package can produce the same files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genai_meter.cli import _dashboards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dashboards/generate.py")
    _dashboards.register(parser.add_subparsers())
    args = parser.parse_args(["dashboards", "--out", str(Path(__file__).resolve().parent), *(argv or [])])
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
